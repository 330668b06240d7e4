package deploy

import (
	"bufio"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

// dockerInstruction is one instruction of a Dockerfile, continuation
// lines joined.
type dockerInstruction struct {
	line int
	cmd  string // upper case: FROM, RUN ...
	args string
}

func readDockerfile(t *testing.T, file string) []dockerInstruction {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []dockerInstruction
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(trimmed, "#") {
			continue // a comment inside a continued instruction
		}
		if cur.Len() == 0 {
			start = n
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(s)
			cur.WriteString(" ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, dockerInstruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// shellWords splits s as sh would split a simple command: quotes and
// backslashes, no expansion.
func shellWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	var quote rune
	for i := 0; i < len(s); i++ {
		ch := rune(s[i])
		switch {
		case quote == '\'':
			if ch == '\'' {
				quote = 0
			} else {
				w.WriteRune(ch)
			}
		case quote == '"':
			switch {
			case ch == '"':
				quote = 0
			case ch == '\\' && i+1 < len(s) && strings.ContainsRune(`"\$`+"`", rune(s[i+1])):
				i++
				w.WriteByte(s[i])
			default:
				w.WriteRune(ch)
			}
		case ch == '\'' || ch == '"':
			quote, inWord = ch, true
		case ch == '\\' && i+1 < len(s):
			i++
			w.WriteByte(s[i])
			inWord = true
		case ch == ' ' || ch == '\t' || ch == '\n':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(ch)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote in %q", quote, s)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// goBuild is the Dockerfile's go build step.
type goBuild struct {
	env    []string // NAME=VALUE before the command, ARGs expanded
	args   []string // after "go build"
	output string   // -o
	stage  string   // the stage it runs in
}

// dockerStages reads the stages: name (or index) and the instructions.
type dockerStage struct {
	name  string
	from  string
	instr []dockerInstruction
}

func dockerStages(instrs []dockerInstruction) []dockerStage {
	var stages []dockerStage
	for _, in := range instrs {
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			var st dockerStage
			for i := 0; i < len(f); i++ {
				switch {
				case strings.HasPrefix(f[i], "--"):
				case strings.EqualFold(f[i], "AS") && i+1 < len(f):
					st.name = f[i+1]
					i++
				default:
					st.from = f[i]
				}
			}
			if st.name == "" {
				st.name = fmt.Sprint(len(stages))
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) > 0 {
			stages[len(stages)-1].instr = append(stages[len(stages)-1].instr, in)
		}
	}
	return stages
}

// findGoBuild finds the RUN that builds recallq and what it runs: the
// variables it sets (with $TARGETOS and $TARGETARCH as this machine's, as
// BuildKit would set them for a build for this platform) and go build's
// arguments.
func findGoBuild(t *testing.T, stages []dockerStage) goBuild {
	t.Helper()
	for _, st := range stages {
		for _, in := range st.instr {
			if in.cmd != "RUN" || !strings.Contains(in.args, "go build") {
				continue
			}
			words, err := shellWords(in.args)
			if err != nil {
				t.Fatalf("Dockerfile:%d: %v", in.line, err)
			}
			for len(words) > 0 && strings.HasPrefix(words[0], "--") {
				words = words[1:] // --mount=...
			}
			b := goBuild{stage: st.name}
			expand := func(s string) string {
				return os.Expand(s, func(name string) string {
					switch name {
					case "TARGETOS":
						return runtime.GOOS
					case "TARGETARCH":
						return runtime.GOARCH
					}
					t.Errorf("Dockerfile:%d: $%s: the test knows only $TARGETOS and $TARGETARCH", in.line, name)
					return ""
				})
			}
			for len(words) > 0 && strings.Contains(words[0], "=") && !strings.HasPrefix(words[0], "-") {
				b.env = append(b.env, expand(words[0]))
				words = words[1:]
			}
			if len(words) < 2 || words[0] != "go" || words[1] != "build" {
				t.Fatalf("Dockerfile:%d: RUN %s: want [VAR=value ...] go build ... alone, without && or ;", in.line, in.args)
			}
			for _, w := range words[2:] {
				if strings.ContainsAny(w, "&;|") {
					t.Fatalf("Dockerfile:%d: RUN %s: want go build alone, without && or ;", in.line, in.args)
				}
				b.args = append(b.args, expand(w))
			}
			for i, a := range b.args {
				switch {
				case a == "-o" && i+1 < len(b.args):
					b.output = b.args[i+1]
				case strings.HasPrefix(a, "-o="):
					b.output = strings.TrimPrefix(a, "-o=")
				}
			}
			return b
		}
	}
	t.Fatal("Dockerfile: no RUN ... go build")
	return goBuild{}
}

// ldflags is the value of -ldflags.
func (b goBuild) ldflags() string {
	for i, a := range b.args {
		if v, ok := strings.CutPrefix(a, "-ldflags="); ok {
			return v
		}
		if a == "-ldflags" && i+1 < len(b.args) {
			return b.args[i+1]
		}
	}
	return ""
}

func TestDockerfile(t *testing.T) {
	p := loadProgram(t)
	instrs := readDockerfile(t, filepath.Join(p.root, "deploy", "Dockerfile"))
	stages := dockerStages(instrs)
	if len(stages) < 2 {
		t.Fatalf("%d stages: want a builder and a small final image", len(stages))
	}
	b := findGoBuild(t, stages)
	builder := stages[slices.IndexFunc(stages, func(s dockerStage) bool { return s.name == b.stage })]
	// Global ARGs (before the first FROM) may name the base images.
	globalArgs := map[string]string{}
	for _, in := range instrs {
		if in.cmd == "FROM" {
			break
		}
		if k, v, ok := strings.Cut(in.args, "="); in.cmd == "ARG" && ok {
			globalArgs[k] = v
		}
	}
	from := os.Expand(builder.from, func(k string) string { return globalArgs[k] })
	if want := "golang:" + goVersion(t, p.root); from != want && !strings.HasPrefix(from, want+".") && !strings.HasPrefix(from, want+"-") {
		t.Errorf("the build stage is FROM %s (%s), want %s, the Go of go.mod", builder.from, from, want)
	}
	if !slices.Contains(b.env, "CGO_ENABLED=0") {
		t.Errorf("go build runs with %v: want CGO_ENABLED=0 for a static binary", b.env)
	}
	if !slices.Contains(b.args, "-trimpath") {
		t.Errorf("go build %v lacks -trimpath", b.args)
	}
	if lf := strings.Fields(b.ldflags()); !slices.Contains(lf, "-s") || !slices.Contains(lf, "-w") {
		t.Errorf("go build -ldflags %q: want -s -w", b.ldflags())
	}
	if b.args[len(b.args)-1] != "./cmd/recallq" {
		t.Errorf("go build %v does not build ./cmd/recallq", b.args)
	}
	if _, err := os.Stat(filepath.Join(p.root, "cmd", "recallq")); err != nil {
		t.Errorf("./cmd/recallq: %v", err)
	}
	cacheMounts := 0
	for _, in := range builder.instr {
		cacheMounts += strings.Count(in.args, "--mount=type=cache")
	}
	if cacheMounts == 0 {
		t.Errorf("the build stage mounts no cache (--mount=type=cache,target=/go/pkg/mod)")
	}
	final := stages[len(stages)-1]
	if !strings.HasPrefix(final.from, "gcr.io/distroless/static") && final.from != "scratch" {
		t.Errorf("the final stage is FROM %s, want gcr.io/distroless/static-debian12:nonroot or scratch", final.from)
	}
	var user, entrypoint string
	copied := false
	for _, in := range final.instr {
		switch in.cmd {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entrypoint = in.args
		case "COPY":
			f := strings.Fields(in.args)
			if len(f) == 3 && f[0] == "--from="+b.stage && f[1] == b.output && f[2] == "/recallq" {
				copied = true
			}
		}
	}
	if !copied {
		t.Errorf("the final stage does not COPY --from=%s %s /recallq", b.stage, b.output)
	}
	if uid, _, _ := strings.Cut(user, ":"); uid != "65532" && uid != "nonroot" {
		t.Errorf("the final stage runs as USER %q, want 65532 (distroless's nonroot)", user)
	}
	var ep []string
	if err := json.Unmarshal([]byte(entrypoint), &ep); err != nil || !slices.Equal(ep, []string{"/recallq"}) {
		t.Errorf("ENTRYPOINT %s, want [\"/recallq\"] (exec form: the binary is PID 1 and gets SIGTERM)", entrypoint)
	}
}

func goVersion(t *testing.T, root string) string {
	raw, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
			parts := strings.Split(v, ".")
			if len(parts) >= 2 {
				return parts[0] + "." + parts[1]
			}
			return v
		}
	}
	return ""
}

func TestDockerfileBuildsAStaticBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds recallq")
	}
	bin := recallqBinary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			t.Errorf("the binary asks for a dynamic loader: it would not start on distroless/static or scratch")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v", libs)
	}
	if f.Section(".symtab") != nil {
		t.Errorf("the binary has a symbol table: -ldflags \"-s -w\" did not strip it")
	}
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string // removed by TestMain
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// recallqBinary builds recallq once as the Dockerfile does: its go build
// command and variables, run on a copy of the module holding only what
// deploy/Dockerfile.dockerignore lets into the build context.
func recallqBinary(t *testing.T) string {
	t.Helper()
	p := loadProgram(t)
	binOnce.Do(func() {
		stages := dockerStages(readDockerfile(t, filepath.Join(p.root, "deploy", "Dockerfile")))
		b := findGoBuild(t, stages)
		binDir, binErr = os.MkdirTemp("", "recallq-deploy-test-")
		if binErr != nil {
			return
		}
		ctx := filepath.Join(binDir, "context")
		if binErr = copyContext(p.root, ctx, filepath.Join(p.root, "deploy", "Dockerfile.dockerignore")); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "recallq")
		args := slices.Clone(b.args)
		for i, a := range args {
			if a == "-o" && i+1 < len(args) {
				args[i+1] = binPath
			}
			if strings.HasPrefix(a, "-o=") {
				args[i] = "-o=" + binPath
			}
		}
		cmd := exec.Command("go", append([]string{"build"}, args...)...)
		cmd.Dir = ctx
		cmd.Env = append(append(os.Environ(), "GOFLAGS=-mod=readonly"), b.env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("the Dockerfile's go build %s, in the build context: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	if binPath == "" {
		t.Fatal("building recallq failed in an earlier test")
	}
	return binPath
}

// dockerignore reads a .dockerignore file and returns whether it keeps a
// path (slash-separated, relative to the context) out of the build
// context. It knows the patterns Docker's documentation shows without
// "**": a path matches a pattern that matches it or one of its parent
// directories; the last matching line wins; "!" lets back in.
func dockerignore(file string) (func(rel string) bool, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	type rule struct {
		pattern string
		allow   bool
	}
	var rules []rule
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r := rule{}
		if s, ok := strings.CutPrefix(line, "!"); ok {
			r.allow, line = true, s
		}
		if strings.Contains(line, "**") {
			return nil, fmt.Errorf("%s: %q: the test does not know **", file, line)
		}
		r.pattern = path.Clean(strings.TrimPrefix(line, "/"))
		rules = append(rules, r)
	}
	return func(rel string) bool {
		out := false
		for _, r := range rules {
			for p := rel; p != "." && p != "/"; p = path.Dir(p) {
				if ok, _ := path.Match(r.pattern, p); ok {
					out = !r.allow
					break
				}
			}
		}
		return out
	}, nil
}

// copyContext copies the files of root that ignoreFile lets into a build
// context to dst.
func copyContext(root, dst, ignoreFile string) error {
	ignored, err := dockerignore(ignoreFile)
	if err != nil {
		return err
	}
	return filepath.WalkDir(root, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, name)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return os.MkdirAll(dst, 0o755)
		}
		if ignored(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, filepath.FromSlash(rel))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}

func TestDockerignoreKeepsSecretsOut(t *testing.T) {
	p := loadProgram(t)
	ignored, err := dockerignore(filepath.Join(p.root, "deploy", "Dockerfile.dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"deploy/secrets/tim_secret_key", "deploy/secrets/dashboard_password", ".env", ".git/config"} {
		if !ignored(rel) {
			t.Errorf("%s would be sent to the builder", rel)
		}
	}
	// What the build needs must get in: every non-test Go package of the
	// module but this one, with its embedded files.
	err = filepath.WalkDir(p.root, func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(p.root, name)
		rel = filepath.ToSlash(rel)
		if strings.HasPrefix(rel, ".") || strings.HasPrefix(rel, "deploy/") || strings.HasSuffix(rel, "_test.go") || strings.Contains(rel, "/testdata/") {
			return nil
		}
		if (strings.HasSuffix(rel, ".go") || rel == "go.mod" || rel == "go.sum") && ignored(rel) {
			t.Errorf("%s is kept out of the build context", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestShellWords(t *testing.T) {
	got, err := shellWords(`CGO_ENABLED=0 go build -ldflags="-s -w" -o '/out/a b' x\ y "q\"uote"`)
	want := []string{"CGO_ENABLED=0", "go", "build", "-ldflags=-s -w", "-o", "/out/a b", "x y", `q"uote`}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("shellWords = %q, %v; want %q", got, err, want)
	}
}
