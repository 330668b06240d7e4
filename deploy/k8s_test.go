package deploy

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// k8sObject is one manifest, with the fields the checks read.
type k8sObject struct {
	file       string
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name        string            `yaml:"name"`
		Namespace   string            `yaml:"namespace"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Spec       yaml.Node         `yaml:"spec"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
}

func (o k8sObject) String() string {
	return fmt.Sprintf("k8s/%s: %s %s", o.file, o.Kind, o.Metadata.Name)
}

type deploymentSpec struct {
	Replicas *int `yaml:"replicas"`
	Selector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
	Template struct {
		Metadata struct {
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"metadata"`
		Spec podSpec `yaml:"spec"`
	} `yaml:"template"`
}

type podSpec struct {
	TerminationGracePeriodSeconds *int64 `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               struct {
		RunAsNonRoot *bool  `yaml:"runAsNonRoot"`
		RunAsUser    *int64 `yaml:"runAsUser"`
	} `yaml:"securityContext"`
	Containers []containerSpec `yaml:"containers"`
	Volumes    []struct {
		Name   string `yaml:"name"`
		Secret *struct {
			SecretName string `yaml:"secretName"`
			Items      []struct {
				Key  string `yaml:"key"`
				Path string `yaml:"path"`
			} `yaml:"items"`
		} `yaml:"secret"`
	} `yaml:"volumes"`
}

type containerSpec struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			ConfigMapKeyRef *keyRef `yaml:"configMapKeyRef"`
			SecretKeyRef    *keyRef `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	EnvFrom []struct {
		ConfigMapRef *struct{ Name string } `yaml:"configMapRef"`
		SecretRef    *struct{ Name string } `yaml:"secretRef"`
	} `yaml:"envFrom"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	ReadinessProbe *probeSpec `yaml:"readinessProbe"`
	LivenessProbe  *probeSpec `yaml:"livenessProbe"`
	StartupProbe   *probeSpec `yaml:"startupProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
	} `yaml:"volumeMounts"`
}

type keyRef struct {
	Name string `yaml:"name"`
	Key  string `yaml:"key"`
}

type probeSpec struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"` // a number or a port's name
	} `yaml:"httpGet"`
	Exec      any `yaml:"exec"`
	TCPSocket any `yaml:"tcpSocket"`
}

type serviceSpec struct {
	Selector map[string]string `yaml:"selector"`
	Ports    []struct {
		Name       string `yaml:"name"`
		Port       int    `yaml:"port"`
		TargetPort string `yaml:"targetPort"`
	} `yaml:"ports"`
}

type pdbSpec struct {
	Selector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
	MinAvailable               any    `yaml:"minAvailable"`
	MaxUnavailable             any    `yaml:"maxUnavailable"`
	UnhealthyPodEvictionPolicy string `yaml:"unhealthyPodEvictionPolicy"`
}

type kustomization struct {
	Namespace string   `yaml:"namespace"`
	Resources []string `yaml:"resources"`
	Images    []struct {
		Name    string `yaml:"name"`
		NewName string `yaml:"newName"`
		NewTag  string `yaml:"newTag"`
	} `yaml:"images"`
}

// k8sManifests reads every manifest in deploy/k8s, each document of each
// file, the kustomization aside.
func k8sManifests(t *testing.T, root string) (objs []k8sObject, kust *kustomization, files []string) {
	t.Helper()
	dir := filepath.Join(root, "deploy", "k8s")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if name == "kustomization.yaml" || name == "kustomization.yml" {
			kust = &kustomization{}
			if err := yaml.Unmarshal(raw, kust); err != nil {
				t.Fatalf("k8s/%s: %v", name, err)
			}
			continue
		}
		files = append(files, name)
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		for {
			var o k8sObject
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("k8s/%s: %v", name, err)
			}
			if o.Kind == "" {
				continue // an empty document
			}
			o.file = name
			objs = append(objs, o)
		}
	}
	if len(objs) == 0 {
		t.Fatal("no manifests in deploy/k8s")
	}
	return objs, kust, files
}

func decodeSpec[T any](t *testing.T, o k8sObject) T {
	t.Helper()
	var v T
	if err := o.Spec.Decode(&v); err != nil {
		t.Fatalf("%s: spec: %v", o, err)
	}
	return v
}

// k8sSecretTemplate is the Secret the pods mount: its keys and placeholder
// values, from stringData or data.
func k8sSecrets(t *testing.T, objs []k8sObject) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, o := range objs {
		if o.Kind != "Secret" {
			continue
		}
		m := map[string]string{}
		for k, v := range o.Data {
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				t.Errorf("%s: data.%s is not base64: %v", o, k, err)
			}
			m[k] = string(b)
		}
		for k, v := range o.StringData {
			m[k] = v
		}
		out[o.Metadata.Name] = m
	}
	return out
}

// k8sPod is one Deployment's container, as a container and as written.
type k8sPod struct {
	obj  k8sObject
	dep  deploymentSpec
	spec containerSpec
	c    container
}

// k8sContainers turns every Deployment's containers into containers: the
// ConfigMaps' and Secrets' values resolved, the Secret volumes' files at
// their mount paths with the template's content.
func k8sContainers(t *testing.T, objs []k8sObject) []k8sPod {
	t.Helper()
	configMaps := map[string]map[string]string{}
	for _, o := range objs {
		if o.Kind == "ConfigMap" {
			configMaps[o.Metadata.Name] = o.Data
		}
	}
	secrets := k8sSecrets(t, objs)
	var out []k8sPod
	for _, o := range objs {
		if o.Kind != "Deployment" {
			continue
		}
		dep := decodeSpec[deploymentSpec](t, o)
		pod := dep.Template.Spec
		for _, cs := range pod.Containers {
			c := container{where: fmt.Sprintf("%s container %s", o, cs.Name), args: cs.Args, env: map[string]string{}, files: map[string]string{}}
			c.grace = 30 * time.Second // Kubernetes' default
			if g := pod.TerminationGracePeriodSeconds; g != nil {
				c.grace = time.Duration(*g) * time.Second
			}
			for _, ef := range cs.EnvFrom {
				switch {
				case ef.ConfigMapRef != nil:
					cm, ok := configMaps[ef.ConfigMapRef.Name]
					if !ok {
						t.Errorf("%s: envFrom ConfigMap %q is not in deploy/k8s", c.where, ef.ConfigMapRef.Name)
					}
					for k, v := range cm {
						c.env[k] = v
					}
				case ef.SecretRef != nil:
					t.Errorf("%s: envFrom Secret %q puts secrets in the environment: mount them as files and use *_FILE", c.where, ef.SecretRef.Name)
				}
			}
			for _, e := range cs.Env {
				switch {
				case e.ValueFrom == nil:
					c.env[e.Name] = e.Value
				case e.ValueFrom.ConfigMapKeyRef != nil:
					r := e.ValueFrom.ConfigMapKeyRef
					v, ok := configMaps[r.Name][r.Key]
					if !ok {
						t.Errorf("%s: %s from ConfigMap %s key %s, which deploy/k8s does not have", c.where, e.Name, r.Name, r.Key)
					}
					c.env[e.Name] = v
				case e.ValueFrom.SecretKeyRef != nil:
					r := e.ValueFrom.SecretKeyRef
					v, ok := secrets[r.Name][r.Key]
					if !ok {
						t.Errorf("%s: %s from Secret %s key %s, which the Secret template does not have", c.where, e.Name, r.Name, r.Key)
					}
					c.env[e.Name] = v
				default:
					c.env[e.Name] = ""
				}
			}
			for _, vm := range cs.VolumeMounts {
				for _, v := range pod.Volumes {
					if v.Name != vm.Name || v.Secret == nil {
						continue
					}
					tmpl, ok := secrets[v.Secret.SecretName]
					if !ok {
						t.Errorf("%s: mounts Secret %q, which deploy/k8s has no template of", c.where, v.Secret.SecretName)
					}
					files := map[string]string{} // path in the volume -> key
					if len(v.Secret.Items) == 0 {
						for k := range tmpl {
							files[k] = k
						}
					}
					for _, it := range v.Secret.Items {
						if _, ok := tmpl[it.Key]; !ok {
							t.Errorf("%s: mounts key %s of Secret %s, which the template does not have", c.where, it.Key, v.Secret.SecretName)
						}
						files[it.Path] = it.Key
					}
					for p, key := range files {
						switch {
						case vm.SubPath == "":
							c.files[path.Join(vm.MountPath, p)] = tmpl[key]
						case vm.SubPath == p:
							c.files[vm.MountPath] = tmpl[key]
						}
					}
				}
			}
			named := map[string]int{}
			for _, p := range cs.Ports {
				named[p.Name] = p.ContainerPort
				c.ports = append(c.ports, p.ContainerPort)
			}
			for _, pr := range []struct {
				kind string
				spec *probeSpec
			}{{"readiness", cs.ReadinessProbe}, {"liveness", cs.LivenessProbe}, {"startup", cs.StartupProbe}} {
				if pr.spec == nil {
					continue
				}
				if pr.spec.HTTPGet == nil {
					t.Errorf("%s: %s probe is not httpGet: the image has no shell to exec in", c.where, pr.kind)
					continue
				}
				port, err := strconv.Atoi(pr.spec.HTTPGet.Port)
				if err != nil {
					var ok bool
					if port, ok = named[pr.spec.HTTPGet.Port]; !ok {
						t.Errorf("%s: %s probe port %q names no port of the container", c.where, pr.kind, pr.spec.HTTPGet.Port)
					}
				}
				c.probes = append(c.probes, probe{kind: pr.kind, path: pr.spec.HTTPGet.Path, port: port})
			}
			// Prometheus scrapes like a probe: prometheus.io/port and path.
			if ann := dep.Template.Metadata.Annotations; ann["prometheus.io/scrape"] == "true" {
				port, err := strconv.Atoi(ann["prometheus.io/port"])
				if err != nil {
					t.Errorf("%s: prometheus.io/port %q is not a number", o, ann["prometheus.io/port"])
				}
				mpath := ann["prometheus.io/path"]
				if mpath == "" {
					mpath = "/metrics"
				}
				c.probes = append(c.probes, probe{kind: "prometheus scrape", path: mpath, port: port})
			}
			out = append(out, k8sPod{obj: o, dep: dep, spec: cs, c: c})
		}
	}
	return out
}

func TestK8sNamesExistInProgram(t *testing.T) {
	p := loadProgram(t)
	objs, _, _ := k8sManifests(t, p.root)
	pods := k8sContainers(t, objs)
	commands := map[string]bool{}
	for _, pod := range pods {
		if len(pod.spec.Command) > 0 && !slices.Equal(pod.spec.Command, []string{"/recallq"}) {
			t.Errorf("%s: command %q replaces the image's entrypoint /recallq", pod.c.where, pod.spec.Command)
		}
		checkContainer(t, p, pod.c)
		pc, err := p.parse(t, pod.c)
		if err != nil {
			continue // reported above
		}
		commands[pc.cmd.Path] = true
		checkShutdownGrace(t, pod.c, pc.cmd.Path)
		if pc.cmd.Path == "worker" {
			if r := pod.dep.Replicas; r == nil || *r < 3 {
				t.Errorf("%s: replicas %v, want at least 3 workers", pod.obj, r)
			}
			if pod.spec.ReadinessProbe == nil || pod.spec.LivenessProbe == nil {
				t.Errorf("%s: the worker needs a readiness probe (/readyz) and a liveness probe (/healthz)", pod.c.where)
			}
		}
	}
	for _, want := range []string{"worker", "dashboard", "serve"} {
		if !commands[want] {
			t.Errorf("no Deployment runs `recallq %s`", want)
		}
	}
}

func TestK8sPodsAreLockedDown(t *testing.T) {
	p := loadProgram(t)
	objs, _, _ := k8sManifests(t, p.root)
	for _, o := range objs {
		if o.Metadata.Namespace != "" {
			t.Errorf("%s: namespace %q: the manifests must work in any namespace (kubectl -n)", o, o.Metadata.Namespace)
		}
	}
	for _, pod := range k8sContainers(t, objs) {
		ps, cs := pod.dep.Template.Spec, pod.spec
		nonRoot := ps.SecurityContext.RunAsNonRoot != nil && *ps.SecurityContext.RunAsNonRoot ||
			cs.SecurityContext.RunAsNonRoot != nil && *cs.SecurityContext.RunAsNonRoot
		if !nonRoot {
			t.Errorf("%s: runAsNonRoot is not true", pod.c.where)
		}
		if u := ps.SecurityContext.RunAsUser; u != nil && *u == 0 {
			t.Errorf("%s: runs as root", pod.c.where)
		}
		if r := cs.SecurityContext.ReadOnlyRootFilesystem; r == nil || !*r {
			t.Errorf("%s: readOnlyRootFilesystem is not true", pod.c.where)
		}
		if a := cs.SecurityContext.AllowPrivilegeEscalation; a == nil || *a {
			t.Errorf("%s: allowPrivilegeEscalation is not false", pod.c.where)
		}
		for _, r := range []string{"cpu", "memory"} {
			if cs.Resources.Requests[r] == "" {
				t.Errorf("%s: no %s request", pod.c.where, r)
			}
		}
		if cs.Resources.Limits["memory"] == "" {
			t.Errorf("%s: no memory limit", pod.c.where)
		}
		if !slices.Equal(sortedKeys(pod.dep.Selector.MatchLabels), sortedKeys(intersect(pod.dep.Selector.MatchLabels, pod.dep.Template.Metadata.Labels))) {
			t.Errorf("%s: selector %v does not select the pod's labels %v", pod.obj, pod.dep.Selector.MatchLabels, pod.dep.Template.Metadata.Labels)
		}
	}
}

func intersect(sel, labels map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range sel {
		if labels[k] == v {
			out[k] = v
		}
	}
	return out
}

// selects reports whether a selector picks pods with these labels.
func selects(sel, labels map[string]string) bool {
	return len(sel) > 0 && len(intersect(sel, labels)) == len(sel)
}

func TestK8sServicesAndScrapingReachThePods(t *testing.T) {
	p := loadProgram(t)
	objs, _, _ := k8sManifests(t, p.root)
	pods := k8sContainers(t, objs)
	for _, o := range objs {
		if o.Kind != "Service" {
			continue
		}
		svc := decodeSpec[serviceSpec](t, o)
		var matched []k8sPod
		for _, pod := range pods {
			if selects(svc.Selector, pod.dep.Template.Metadata.Labels) {
				matched = append(matched, pod)
			}
		}
		if len(matched) == 0 {
			t.Errorf("%s: selector %v picks no pod of deploy/k8s", o, svc.Selector)
			continue
		}
		for _, sp := range svc.Ports {
			target := sp.TargetPort
			if target == "" {
				target = strconv.Itoa(sp.Port)
			}
			for _, pod := range matched {
				found := false
				for _, cp := range pod.spec.Ports {
					found = found || cp.Name == target || strconv.Itoa(cp.ContainerPort) == target
				}
				if !found {
					t.Errorf("%s: port %s targets %q, which %s does not declare", o, sp.Name, target, pod.c.where)
				}
			}
		}
	}
	scraped := false
	for _, pod := range pods {
		scraped = scraped || pod.dep.Template.Metadata.Annotations["prometheus.io/scrape"] == "true"
		if pc, err := p.parse(t, pod.c); err == nil && pc.cmd.Path == "worker" && pod.dep.Template.Metadata.Annotations["prometheus.io/scrape"] != "true" {
			t.Errorf("%s: worker pods lack the prometheus.io/scrape annotations", pod.c.where)
		}
	}
	if !scraped {
		t.Errorf("no pod is annotated for Prometheus")
	}
}

func TestK8sWorkersSurviveDisruptions(t *testing.T) {
	p := loadProgram(t)
	objs, _, _ := k8sManifests(t, p.root)
	pods := k8sContainers(t, objs)
	var workerLabels map[string]string
	for _, pod := range pods {
		if pc, err := p.parse(t, pod.c); err == nil && pc.cmd.Path == "worker" {
			workerLabels = pod.dep.Template.Metadata.Labels
		}
	}
	if workerLabels == nil {
		t.Fatal("no worker Deployment")
	}
	covered := false
	for _, o := range objs {
		if o.Kind != "PodDisruptionBudget" {
			continue
		}
		pdb := decodeSpec[pdbSpec](t, o)
		if (pdb.MinAvailable == nil) == (pdb.MaxUnavailable == nil) {
			t.Errorf("%s: set exactly one of minAvailable and maxUnavailable", o)
		}
		// Pods answer /readyz 503 while their circuit is open or Redis is
		// down; under the default IfHealthyBudget policy a budget whose
		// pods are all unready refuses every eviction, and a node drain
		// hangs for as long as the outage it is meant to help with.
		if pdb.UnhealthyPodEvictionPolicy != "AlwaysAllow" {
			t.Errorf("%s: unhealthyPodEvictionPolicy is %q, want AlwaysAllow (unready pods must not block node drains)", o, pdb.UnhealthyPodEvictionPolicy)
		}
		if selects(pdb.Selector.MatchLabels, workerLabels) {
			covered = true
		}
	}
	if !covered {
		t.Errorf("no PodDisruptionBudget selects the worker pods %v", workerLabels)
	}
}

func TestK8sSecretTemplateIsATemplate(t *testing.T) {
	p := loadProgram(t)
	objs, kust, _ := k8sManifests(t, p.root)
	secrets := k8sSecrets(t, objs)
	if len(secrets) == 0 {
		t.Fatal("no Secret template in deploy/k8s")
	}
	for name, keys := range secrets {
		for k, v := range keys {
			if !strings.Contains(v, "REPLACE_ME") {
				t.Errorf("Secret %s key %s holds %d bytes that are not a REPLACE_ME placeholder: a real secret in the repository?", name, k, len(v))
			}
		}
	}
	if kust != nil {
		for _, r := range kust.Resources {
			for _, o := range objs {
				if o.file == r && o.Kind == "Secret" {
					t.Errorf("kustomization.yaml applies %s, the Secret template: its placeholders would become the real secrets", r)
				}
			}
		}
	}
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	p := loadProgram(t)
	objs, kust, files := k8sManifests(t, p.root)
	if kust == nil {
		t.Skip("no kustomization.yaml")
	}
	if kust.Namespace != "" {
		t.Errorf("kustomization.yaml sets namespace %q: leave it to kubectl -n", kust.Namespace)
	}
	secretFiles := map[string]bool{}
	for _, o := range objs {
		if o.Kind == "Secret" {
			secretFiles[o.file] = true
		}
	}
	for _, f := range files {
		if !secretFiles[f] && !slices.Contains(kust.Resources, f) {
			t.Errorf("kustomization.yaml does not list %s: kubectl apply -k would leave it out", f)
		}
	}
	for _, r := range kust.Resources {
		if !slices.Contains(files, r) {
			t.Errorf("kustomization.yaml lists %s, which is not in deploy/k8s", r)
		}
	}
	images := map[string]bool{}
	for _, im := range kust.Images {
		images[im.Name] = true
	}
	for _, pod := range k8sContainers(t, objs) {
		name, _, _ := strings.Cut(pod.spec.Image, ":")
		if !images[name] {
			t.Errorf("%s: image %q has no entry under images: in kustomization.yaml to point it at a registry", pod.c.where, pod.spec.Image)
		}
	}
}
