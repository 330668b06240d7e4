package deploy

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// composeFile is the part of the Compose file format the checks read.
// Everything else is left to Compose.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Secrets  map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
	Volumes map[string]any `yaml:"volumes"`
}

type composeService struct {
	Image           string                  `yaml:"image"`
	Build           composeBuild            `yaml:"build"`
	Entrypoint      stringList              `yaml:"entrypoint"`
	Command         stringList              `yaml:"command"`
	Environment     composeEnv              `yaml:"environment"`
	Secrets         []composeSecret         `yaml:"secrets"`
	Ports           []composePort           `yaml:"ports"`
	Profiles        []string                `yaml:"profiles"`
	Deploy          struct{ Replicas *int } `yaml:"deploy"`
	Scale           *int                    `yaml:"scale"`
	StopGracePeriod string                  `yaml:"stop_grace_period"`
	DependsOn       composeDependsOn        `yaml:"depends_on"`
	Healthcheck     *struct {
		Test    stringList `yaml:"test"`
		Disable bool       `yaml:"disable"`
	} `yaml:"healthcheck"`
	Volumes  []string `yaml:"volumes"`
	ReadOnly bool     `yaml:"read_only"`
}

// composeBuild is "build: DIR" or "build: {context, dockerfile}".
type composeBuild struct{ Context, Dockerfile string }

func (b *composeBuild) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		b.Context = n.Value
		return nil
	}
	var v struct{ Context, Dockerfile string }
	err := n.Decode(&v)
	*b = v
	return err
}

// stringList is a list of strings or one string split as Compose splits it.
type stringList []string

func (s *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		words, err := shellWords(n.Value)
		*s = words
		return err
	}
	var v []string
	err := n.Decode(&v)
	*s = v
	return err
}

// composeEnv is "environment:" as a map or a list of NAME=VALUE. A name
// with no value (taken from the shell running Compose) maps to nil.
type composeEnv map[string]*string

func (e *composeEnv) UnmarshalYAML(n *yaml.Node) error {
	*e = composeEnv{}
	if n.Kind == yaml.SequenceNode {
		var list []string
		if err := n.Decode(&list); err != nil {
			return err
		}
		for _, kv := range list {
			if k, v, ok := strings.Cut(kv, "="); ok {
				(*e)[k] = &v
			} else {
				(*e)[k] = nil
			}
		}
		return nil
	}
	var m map[string]any
	if err := n.Decode(&m); err != nil {
		return err
	}
	for k, v := range m {
		if v == nil {
			(*e)[k] = nil
			continue
		}
		s := fmt.Sprint(v)
		(*e)[k] = &s
	}
	return nil
}

// composeSecret is a service's "- name" or "- {source, target}".
type composeSecret struct{ Source, Target string }

func (s *composeSecret) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		s.Source = n.Value
		return nil
	}
	var v struct{ Source, Target string }
	err := n.Decode(&v)
	*s = v
	return err
}

// path is where the secret is in the container.
func (s composeSecret) path() string {
	switch {
	case s.Target == "":
		return "/run/secrets/" + s.Source
	case strings.HasPrefix(s.Target, "/"):
		return s.Target
	}
	return "/run/secrets/" + s.Target
}

// composePort is "[HOST_IP:][HOST:]CONTAINER[/proto]" or {target, published}.
type composePort struct{ Target int }

func (p *composePort) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		s, _, _ := strings.Cut(n.Value, "/")
		target := s[strings.LastIndex(s, ":")+1:]
		v, err := strconv.Atoi(target)
		if err != nil {
			return fmt.Errorf("port %q: container port %q is not a number (a range?)", n.Value, target)
		}
		p.Target = v
		return nil
	}
	var v struct{ Target int }
	err := n.Decode(&v)
	p.Target = v.Target
	return err
}

type composeDependency struct {
	Condition string `yaml:"condition"`
	Required  *bool  `yaml:"required"`
}

// composeDependsOn is "depends_on:" as a list or a map.
type composeDependsOn map[string]composeDependency

func (d *composeDependsOn) UnmarshalYAML(n *yaml.Node) error {
	*d = composeDependsOn{}
	if n.Kind == yaml.SequenceNode {
		var list []string
		if err := n.Decode(&list); err != nil {
			return err
		}
		for _, s := range list {
			(*d)[s] = composeDependency{Condition: "service_started"}
		}
		return nil
	}
	m := map[string]composeDependency{}
	err := n.Decode(&m)
	*d = m
	return err
}

// interpolate replaces ${NAME}, ${NAME:-default}, ${NAME-default},
// ${NAME:?error}, ${NAME?error}, ${NAME:+alt}, ${NAME+alt}, $NAME and $$ as
// Compose does, with the variables in env.
var interpolation = regexp.MustCompile(`\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])((?:[^{}]|\{[^{}]*\})*))?\}|([A-Za-z_][A-Za-z0-9_]*))`)

func interpolate(s string, env map[string]string) (string, error) {
	var err error
	out := interpolation.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		g := interpolation.FindStringSubmatch(m)
		name, op, arg := g[1], g[2], g[3]
		if name == "" {
			name = g[4]
		}
		v, set := env[name]
		empty := !set || (strings.HasPrefix(op, ":") && v == "")
		switch strings.TrimPrefix(op, ":") {
		case "-":
			if empty {
				return arg
			}
		case "?":
			if empty {
				err = fmt.Errorf("%s: %s", name, arg)
			}
		case "+":
			if !empty {
				return arg
			}
			return ""
		}
		return v
	})
	return out, err
}

// loadCompose reads docker-compose.yml with the variables in env, the way
// Compose would: interpolated after parsing, anchors and merge keys
// resolved.
func loadCompose(t *testing.T, root string, env map[string]string) composeFile {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	var walk func(n *yaml.Node) error
	walk = func(n *yaml.Node) error {
		if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "$") {
			v, err := interpolate(n.Value, env)
			if err != nil {
				return fmt.Errorf("line %d: %w", n.Line, err)
			}
			n.Value = v
		}
		for _, c := range n.Content {
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(&doc); err != nil {
		t.Fatalf("docker-compose.yml with %v: %v", env, err)
	}
	var f composeFile
	if err := doc.Decode(&f); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return f
}

// composeEnvFor are the variables the compose file is read with: the one
// it requires (Compose refuses to start without it) and, for the trial,
// the simulator as endpoint, as the file's header says.
var (
	composeEnvProduction = map[string]string{"TIM_SDKAPPID": "1400000000"}
	composeEnvTrial      = map[string]string{"TIM_SDKAPPID": "1400000000", "TIM_ENDPOINT": "http://imsim:8089"}
)

// isRecallq tells the services that run the recallq image from the others.
func (s composeService) isRecallq() bool {
	return s.Build.Dockerfile == "deploy/Dockerfile" || strings.Contains(s.Image, "recallq")
}

// composeContainer is the service as a container, secrets given content.
func composeContainer(name string, s composeService, content func(path string) string) container {
	c := container{where: "docker-compose.yml service " + name, args: s.Command, env: map[string]string{}, files: map[string]string{}}
	for k, v := range s.Environment {
		if v != nil {
			c.env[k] = *v
		} else {
			c.env[k] = ""
		}
	}
	for _, sec := range s.Secrets {
		c.files[sec.path()] = content(sec.path())
	}
	for _, p := range s.Ports {
		c.ports = append(c.ports, p.Target)
	}
	c.grace = 10 * time.Second // Compose's default
	if s.StopGracePeriod != "" {
		if d, err := time.ParseDuration(s.StopGracePeriod); err == nil {
			c.grace = d
		} else {
			c.grace = -1
		}
	}
	return c
}

func TestComposeNamesExistInProgram(t *testing.T) {
	p := loadProgram(t)
	for _, env := range []map[string]string{composeEnvProduction, composeEnvTrial} {
		f := loadCompose(t, p.root, env)
		for _, name := range sortedKeys(f.Services) {
			s := f.Services[name]
			if !s.isRecallq() {
				continue
			}
			if len(s.Entrypoint) > 0 && !slices.Equal(s.Entrypoint, []string{"/recallq"}) {
				t.Errorf("service %s: entrypoint %q replaces /recallq", name, s.Entrypoint)
			}
			if h := s.Healthcheck; h != nil && !h.Disable && len(h.Test) > 0 && h.Test[0] != "NONE" &&
				(h.Test[0] != "CMD" || len(h.Test) < 2 || h.Test[1] != "/recallq") {
				t.Errorf("service %s: healthcheck %q: the image is distroless, with no shell, curl or wget; only [\"CMD\", \"/recallq\", ...] can run", name, h.Test)
			}
			c := composeContainer(name, s, func(string) string { return "" })
			checkContainer(t, p, c)
			if pc, err := p.parse(t, c); err == nil {
				checkShutdownGrace(t, c, pc.cmd.Path)
			}
		}
	}
}

func TestComposeServicesFindEachOther(t *testing.T) {
	// Every URL a service is given that names another service must use
	// the port that service listens on: REDIS_URL the Redis service's,
	// TIM_ENDPOINT (in the trial) the simulator's.
	p := loadProgram(t)
	f := loadCompose(t, p.root, composeEnvTrial)
	found := 0
	for _, name := range sortedKeys(f.Services) {
		for _, k := range sortedKeys(f.Services[name].Environment) {
			v := f.Services[name].Environment[k]
			if v == nil {
				continue
			}
			u, err := url.Parse(*v)
			if err != nil || u.Host == "" {
				continue
			}
			other, ok := f.Services[u.Hostname()]
			if !ok {
				continue
			}
			found++
			want, err := composeListenPort(t, p, u.Hostname(), other)
			if err != nil {
				t.Errorf("service %s: %s=%s: %v", name, k, *v, err)
				continue
			}
			if u.Port() != strconv.Itoa(want) {
				t.Errorf("service %s: %s=%s, but service %s listens on port %d", name, k, *v, u.Hostname(), want)
			}
			if _, ok := f.Services[name].DependsOn[u.Hostname()]; !ok {
				t.Errorf("service %s: %s names service %s but does not depend on it", name, k, u.Hostname())
			}
		}
	}
	if found == 0 {
		t.Errorf("no service names another in its environment: REDIS_URL should name the Redis service")
	}
}

// composeListenPort is the port a service listens on.
func composeListenPort(t *testing.T, p *program, name string, s composeService) (int, error) {
	if !s.isRecallq() {
		if strings.HasPrefix(s.Image, "redis:") {
			for i, a := range s.Command {
				if a == "--port" && i+1 < len(s.Command) {
					return strconv.Atoi(s.Command[i+1])
				}
			}
			return 6379, nil
		}
		return 0, fmt.Errorf("service %s: cannot tell its port", name)
	}
	c := composeContainer(name, s, func(string) string { return "" })
	pc, err := p.parse(t, c)
	if err != nil {
		return 0, err
	}
	addr, err := p.listenAddr(t, c, pc)
	if err != nil {
		return 0, err
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(port)
}

func TestComposeRedisKeepsTheQueues(t *testing.T) {
	p := loadProgram(t)
	f := loadCompose(t, p.root, composeEnvProduction)
	var redisName string
	for _, name := range sortedKeys(f.Services) {
		if strings.HasPrefix(f.Services[name].Image, "redis:") {
			redisName = name
		}
	}
	if redisName == "" {
		t.Fatal("no service runs the redis image")
	}
	r := f.Services[redisName]
	if r.Image != "redis:7" && !strings.HasPrefix(r.Image, "redis:7.") {
		t.Errorf("redis image %q, want redis:7", r.Image)
	}
	cmd := strings.Join(r.Command, " ")
	for _, want := range []string{"--appendonly yes", "--appendfsync everysec"} {
		if !strings.Contains(cmd, want) {
			t.Errorf("redis command %q lacks %q: queued recalls would not survive a restart", cmd, want)
		}
	}
	data := false
	for _, v := range r.Volumes {
		src, dst, _ := strings.Cut(v, ":")
		if strings.HasPrefix(dst, "/data") {
			data = true
			if _, ok := f.Volumes[src]; !ok {
				t.Errorf("redis mounts %q on /data: not a named volume of the file", src)
			}
		}
	}
	if !data {
		t.Errorf("redis has no volume on /data: the append-only file would be lost with the container")
	}
	if r.Healthcheck == nil || r.Healthcheck.Disable || len(r.Healthcheck.Test) == 0 {
		t.Errorf("redis has no healthcheck for the other services to wait on")
	} else if !strings.Contains(strings.Join(r.Healthcheck.Test, " "), "redis-cli") {
		t.Errorf("redis healthcheck %q does not ask Redis (redis-cli ping)", r.Healthcheck.Test)
	}
	for _, name := range sortedKeys(f.Services) {
		s := f.Services[name]
		if _, uses := s.Environment["REDIS_URL"]; !uses {
			continue
		}
		if d, ok := s.DependsOn[redisName]; !ok || d.Condition != "service_healthy" {
			t.Errorf("service %s uses Redis but does not wait for it (depends_on: %s: condition: service_healthy)", name, redisName)
		}
	}
}

func TestComposeRunsSeveralWorkers(t *testing.T) {
	p := loadProgram(t)
	f := loadCompose(t, p.root, composeEnvProduction)
	workers := 0
	for _, name := range sortedKeys(f.Services) {
		s := f.Services[name]
		if !s.isRecallq() || len(s.Command) == 0 || s.Command[0] != "worker" {
			continue
		}
		n := 1
		switch {
		case s.Deploy.Replicas != nil:
			n = *s.Deploy.Replicas
		case s.Scale != nil:
			n = *s.Scale
		}
		workers += n
		if s.StopGracePeriod == "" {
			t.Errorf("service %s: no stop_grace_period: Compose's default of 10 s is shorter than the worker's shutdown", name)
		}
	}
	if workers < 2 {
		t.Errorf("%d worker processes: run several (deploy: replicas: 3) to show they share one limit", workers)
	}
}

func TestComposeSimulatorIsATrialOnly(t *testing.T) {
	p := loadProgram(t)
	f := loadCompose(t, p.root, composeEnvProduction)
	var sims []string
	for _, name := range sortedKeys(f.Services) {
		s := f.Services[name]
		if s.isRecallq() && len(s.Command) > 0 && s.Command[0] == "imsim" {
			sims = append(sims, name)
			if !slices.Contains(s.Profiles, "sim") {
				t.Errorf("service %s runs the simulator outside the \"sim\" profile (profiles: %v): `docker compose up` would start it in production", name, s.Profiles)
			}
		}
	}
	if len(sims) == 0 {
		t.Fatal("no service runs `recallq imsim`")
	}
	for _, name := range sortedKeys(f.Services) {
		s := f.Services[name]
		for _, sim := range sims {
			if d, ok := s.DependsOn[sim]; ok && len(s.Profiles) == 0 && (d.Required == nil || *d.Required) {
				t.Errorf("service %s depends on %s, which runs only with --profile sim: add required: false", name, sim)
			}
		}
		if v := s.Environment["TIM_ENDPOINT"]; v != nil && *v != "" {
			t.Errorf("service %s: TIM_ENDPOINT=%q without the trial's variables: production would not call Tencent", name, *v)
		}
	}
	trial := loadCompose(t, p.root, composeEnvTrial)
	pointed := 0
	for _, name := range sortedKeys(trial.Services) {
		if v := trial.Services[name].Environment["TIM_ENDPOINT"]; v != nil && *v == composeEnvTrial["TIM_ENDPOINT"] {
			pointed++
		}
	}
	if pointed == 0 {
		t.Errorf("with TIM_ENDPOINT=%s in the environment, no service passes it on: the workers would not call the simulator", composeEnvTrial["TIM_ENDPOINT"])
	}
}

func TestComposeSecretsAreFilesKeptOutOfGit(t *testing.T) {
	p := loadProgram(t)
	f := loadCompose(t, p.root, composeEnvProduction)
	readme, err := os.ReadFile(filepath.Join(p.root, "deploy", "secrets", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Secrets) == 0 {
		t.Fatal("no secrets: the secret key, the dashboard password and the intake tokens must come from files")
	}
	for _, name := range sortedKeys(f.Secrets) {
		file := filepath.Clean(f.Secrets[name].File)
		if file == "." {
			t.Errorf("secret %s is not a file:", name)
			continue
		}
		if filepath.Dir(file) != filepath.Join("deploy", "secrets") {
			t.Errorf("secret %s: file %s, want one in deploy/secrets/", name, file)
		}
		if !strings.Contains(string(readme), "`"+filepath.Base(file)+"`") {
			t.Errorf("deploy/secrets/README.md does not say how to create `%s`", filepath.Base(file))
		}
		gitIgnores(t, p.root, file)
	}
	for _, name := range sortedKeys(f.Services) {
		for _, s := range f.Services[name].Secrets {
			if _, ok := f.Secrets[s.Source]; !ok {
				t.Errorf("service %s: secret %s is not declared under secrets:", name, s.Source)
			}
		}
	}
}

// gitIgnores checks that git ignores file (relative to root) and tracks
// nothing there. Without git there is nothing to check.
func gitIgnores(t *testing.T, root, file string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Log("no git: cannot check that secret files are ignored")
		return
	}
	if _, err := os.Stat(filepath.Join(root, ".git")); err != nil {
		t.Log("not a git work tree: cannot check that secret files are ignored")
		return
	}
	cmd := exec.Command("git", "check-ignore", "-q", "--no-index", file)
	cmd.Dir = root
	if err := cmd.Run(); err != nil {
		t.Errorf("git does not ignore %s: a secret could be committed (%v)", file, err)
	}
}

func TestComposeInterpolation(t *testing.T) {
	env := map[string]string{"SET": "v", "EMPTY": ""}
	for _, tc := range []struct{ in, want, err string }{
		{"${SET}", "v", ""},
		{"$SET/x", "v/x", ""},
		{"${UNSET:-d}", "d", ""},
		{"${EMPTY:-d}", "d", ""},
		{"${EMPTY-d}", "", ""},
		{"${SET:-d}", "v", ""},
		{"${UNSET:?say (this)}", "", "UNSET: say (this)"},
		{"${EMPTY?e}", "", ""},
		{"${SET:+alt}", "alt", ""},
		{"${UNSET:+alt}", "", ""},
		{"$$HOME", "$HOME", ""},
	} {
		got, err := interpolate(tc.in, env)
		if (err == nil) != (tc.err == "") || err != nil && err.Error() != tc.err || err == nil && got != tc.want {
			t.Errorf("interpolate(%q) = %q, %v; want %q, %q", tc.in, got, err, tc.want, tc.err)
		}
	}
}
