package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/recallq/recallq/internal/apps"
)

// The several-apps example is what an operator copies: it must be an apps
// file the worker accepts, and read its keys only from the Secret's mount
// its comment tells them to create.
func TestSeveralAppsExampleIsAValidAppsFile(t *testing.T) {
	p := filepath.Join("k8s", "several-apps", "apps.yaml")
	content, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var read []string
	list, err := apps.Parse(content, "/etc/recallq", func(path string) ([]byte, error) {
		read = append(read, path)
		return []byte("a-key-read-from-the-secret"), nil
	})
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	if len(list) < 2 {
		t.Fatalf("%s lists %d apps; the example should show several", p, len(list))
	}
	const mount = "/run/secrets/recallq-apps/"
	if len(read) != len(list) {
		t.Errorf("read %d key files for %d apps: %q", len(read), len(list), read)
	}
	for _, f := range read {
		if !strings.HasPrefix(f, mount) {
			t.Errorf("key file %s is not under %s, where the example's comment mounts the Secret", f, mount)
		}
	}
	if !strings.Contains(string(content), "/run/secrets/recallq-apps") || !strings.Contains(string(content), "TIM_APPS_FILE=/etc/recallq/apps.yaml") {
		t.Errorf("%s: its comment no longer says where to mount the ConfigMap and the Secret", p)
	}
}

// TestSeveralAppsStepsNameEveryPodThatReadsTheRemovedKeys: the steps in
// several-apps/apps.yaml remove TIM_SDKAPPID, TIM_REGION and RECALL_RATE
// from the ConfigMap "recallq". A Deployment that reads one of them and
// that the steps do not tell to edit would stop starting
// (CreateContainerConfigError): the capture did.
func TestSeveralAppsStepsNameEveryPodThatReadsTheRemovedKeys(t *testing.T) {
	p := loadProgram(t)
	steps, err := os.ReadFile(filepath.Join(p.root, "deploy", "k8s", "several-apps", "apps.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs, _, _ := k8sManifests(t, p.root)
	removed := map[string]bool{"TIM_SDKAPPID": true, "TIM_REGION": true, "RECALL_RATE": true}
	for _, o := range objs {
		if o.Kind != "Deployment" || strings.Contains(string(steps), filepath.Base(o.file)) {
			continue
		}
		for _, c := range decodeSpec[deploymentSpec](t, o).Template.Spec.Containers {
			for _, e := range c.Env {
				if ref := e.ValueFrom; ref != nil && ref.ConfigMapKeyRef != nil && removed[ref.ConfigMapKeyRef.Key] {
					t.Errorf("%s reads %s from ConfigMap %s, which several-apps/apps.yaml's steps remove, and the steps do not name it: it would not start",
						o, ref.ConfigMapKeyRef.Key, ref.ConfigMapKeyRef.Name)
				}
			}
		}
	}
}
