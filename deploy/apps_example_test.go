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
