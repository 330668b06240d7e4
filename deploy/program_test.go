package deploy

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/recallq/recallq/internal/lab"
)

// The truth the deployment files are checked against comes from the
// program, never from a list kept in this package:
//
//   - commands and flags from the command tree itself (lab.Commands,
//     lab.ParseCommandLine), with the environment variables each flag's
//     usage names ("(env NAME)");
//   - the other environment variables (secrets, *_FILE, switches) and the
//     HTTP paths from the Go sources: every string literal, or string
//     constant, that looks like an environment variable or a path, in the
//     functions a command can reach from the function that builds it.
//
// Reaching is by name (a call or a reference to f, pkg.F or x.M; a method
// name matches every method of that name in the package and in the module
// packages the file imports), so it errs on the side of finding too much,
// never too little.

var (
	envNameRE = regexp.MustCompile(`^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$`)
	// routeRE matches a path a handler may be registered under, with
	// Go 1.22's optional method: "/healthz", "GET /readyz", "/v1/recalls/{id}".
	routeRE = regexp.MustCompile(`^(?:[A-Z]+ +)?(/[A-Za-z0-9_.~{}$/-]*)$`)
)

// program is what the module's sources and command tree say.
type program struct {
	root     string // the module's directory
	module   string // its module path
	commands map[string]lab.CommandInfo
	funcs    map[string]*funcFacts // see funcKey and methodKey
	pkgVars  map[string]*funcFacts // per package: its package-level var initialisers
	reach    map[string]*reachFacts
	mu       sync.Mutex
}

func funcKey(pkg, name string) string   { return pkg + "." + name }
func methodKey(pkg, name string) string { return pkg + ".#" + name }

// funcFacts is what one function's body (with its closures) names.
type funcFacts struct {
	env        map[string]bool
	defaults   map[string]string // env name -> the string passed right after it (envOr("X", "def"))
	fileSuffix bool              // builds NAME + "_FILE"
	paths      map[string]bool   // route patterns, method stripped
	refs       map[string]bool   // funcKey/methodKey of what it names
	pkg        string
}

func newFacts(pkg string) *funcFacts {
	return &funcFacts{env: map[string]bool{}, defaults: map[string]string{}, paths: map[string]bool{}, refs: map[string]bool{}, pkg: pkg}
}

// reachFacts is the union of funcFacts over what a command reaches.
type reachFacts struct {
	env      map[string]bool
	defaults map[string]string
	paths    map[string]bool
}

var (
	progOnce sync.Once
	prog     *program
	progErr  error
)

// loadProgram reads the command tree and the module's sources once.
func loadProgram(t *testing.T) *program {
	t.Helper()
	progOnce.Do(func() { prog, progErr = readProgram() })
	if progErr != nil {
		t.Fatalf("read the program: %v", progErr)
	}
	return prog
}

func readProgram() (*program, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return nil, err
	}
	p := &program{root: root, commands: map[string]lab.CommandInfo{}, funcs: map[string]*funcFacts{},
		pkgVars: map[string]*funcFacts{}, reach: map[string]*reachFacts{}}
	for _, line := range strings.Split(string(gomod), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			p.module = f[1]
		}
	}
	for _, c := range lab.Commands() {
		p.commands[c.Path] = c
	}
	return p, p.parseSources()
}

// moduleRoot is the directory holding go.mod, above this package's.
func moduleRoot() (string, error) {
	dir, err := filepath.Abs(".")
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}

type parsedFile struct {
	pkg     string
	file    *ast.File
	imports map[string]string // local name -> module package path
}

// parseSources reads every non-test Go file of the module.
func (p *program) parseSources() error {
	fset := token.NewFileSet()
	var files []parsedFile
	pkgName := map[string]string{} // package path -> package name
	err := filepath.WalkDir(p.root, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			base := d.Name()
			if name != p.root && (strings.HasPrefix(base, ".") || strings.HasPrefix(base, "_") || base == "testdata" || base == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(p.root, filepath.Dir(name))
		pkg := p.module
		if rel != "." {
			pkg = path.Join(p.module, filepath.ToSlash(rel))
		}
		pkgName[pkg] = f.Name.Name
		files = append(files, parsedFile{pkg: pkg, file: f})
		return nil
	})
	if err != nil {
		return err
	}
	consts := map[string]string{} // funcKey(pkg, name) -> string value
	for i := range files {
		pf := &files[i]
		pf.imports = map[string]string{}
		for _, imp := range pf.file.Imports {
			ip, _ := strconv.Unquote(imp.Path.Value)
			if _, ok := pkgName[ip]; !ok {
				continue // not a package of this module
			}
			local := pkgName[ip]
			if imp.Name != nil {
				local = imp.Name.Name
			}
			pf.imports[local] = ip
		}
		for _, decl := range pf.file.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for j, v := range vs.Values {
					if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING && j < len(vs.Names) {
						s, _ := strconv.Unquote(lit.Value)
						consts[funcKey(pf.pkg, vs.Names[j].Name)] = s
					}
				}
			}
		}
	}
	for _, pf := range files {
		for _, decl := range pf.file.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				key := funcKey(pf.pkg, d.Name.Name)
				if d.Recv != nil {
					key = methodKey(pf.pkg, d.Name.Name)
				}
				f := p.funcs[key]
				if f == nil {
					f = newFacts(pf.pkg)
					p.funcs[key] = f
				}
				if d.Body != nil {
					p.scan(d.Body, pf, consts, f)
				}
			case *ast.GenDecl:
				if d.Tok != token.VAR {
					continue
				}
				f := p.pkgVars[pf.pkg]
				if f == nil {
					f = newFacts(pf.pkg)
					p.pkgVars[pf.pkg] = f
				}
				p.scan(d, pf, consts, f)
			}
		}
	}
	return nil
}

// scan records what node names into f.
func (p *program) scan(node ast.Node, pf parsedFile, consts map[string]string, f *funcFacts) {
	// str is the string a literal or a module constant stands for.
	str := func(e ast.Expr) (string, bool) {
		switch e := e.(type) {
		case *ast.BasicLit:
			if e.Kind == token.STRING {
				s, err := strconv.Unquote(e.Value)
				return s, err == nil
			}
		case *ast.Ident:
			s, ok := consts[funcKey(pf.pkg, e.Name)]
			return s, ok
		case *ast.SelectorExpr:
			if x, ok := e.X.(*ast.Ident); ok {
				if ip, ok := pf.imports[x.Name]; ok {
					s, ok := consts[funcKey(ip, e.Sel.Name)]
					return s, ok
				}
			}
		}
		return "", false
	}
	note := func(s string) {
		switch {
		case envNameRE.MatchString(s):
			f.env[s] = true
		case s == "_FILE" || s == "%s_FILE":
			// name + "_FILE", fmt.Sprintf("%s_FILE", name)
			f.fileSuffix = true
		}
		if m := routeRE.FindStringSubmatch(s); m != nil {
			f.paths[strings.TrimSuffix(m[1], "{$}")] = true
		}
	}
	var visit func(n ast.Node) bool
	visit = func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BasicLit, *ast.Ident:
			if s, ok := str(n.(ast.Expr)); ok {
				note(s)
			}
			if id, ok := n.(*ast.Ident); ok {
				f.refs[funcKey(pf.pkg, id.Name)] = true
			}
		case *ast.SelectorExpr:
			if s, ok := str(n); ok {
				note(s)
			}
			if x, ok := n.X.(*ast.Ident); ok {
				if ip, ok := pf.imports[x.Name]; ok {
					f.refs[funcKey(ip, n.Sel.Name)] = true
					return false
				}
			}
			f.refs[methodKey(pf.pkg, n.Sel.Name)] = true
			for _, ip := range pf.imports {
				f.refs[methodKey(ip, n.Sel.Name)] = true
			}
			ast.Inspect(n.X, visit)
			return false
		case *ast.CallExpr:
			for i := 0; i+1 < len(n.Args); i++ {
				name, ok := str(n.Args[i])
				if !ok || !envNameRE.MatchString(name) {
					continue
				}
				if def, ok := str(n.Args[i+1]); ok && !envNameRE.MatchString(def) {
					f.defaults[name] = def
				}
			}
		}
		return true
	}
	ast.Inspect(node, visit)
}

// reached is the union of what the command at path can reach from the
// function that builds it.
func (p *program) reached(path string) *reachFacts {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r, ok := p.reach[path]; ok {
		return r
	}
	r := &reachFacts{env: map[string]bool{}, defaults: map[string]string{}, paths: map[string]bool{}}
	p.reach[path] = r
	c, ok := p.commands[path]
	if !ok || c.Func == "" {
		return r
	}
	seen := map[string]bool{}
	pkgs := map[string]bool{}
	queue := []string{runtimeFuncKey(c.Func)}
	fileSuffix := false
	for len(queue) > 0 {
		key := queue[0]
		queue = queue[1:]
		if seen[key] {
			continue
		}
		seen[key] = true
		f := p.funcs[key]
		if f == nil {
			continue
		}
		if !pkgs[f.pkg] {
			pkgs[f.pkg] = true
			// net/http calls ServeHTTP through http.Handler, never by
			// a name in our code.
			queue = append(queue, methodKey(f.pkg, "ServeHTTP"))
			if v := p.pkgVars[f.pkg]; v != nil {
				p.merge(r, v, &fileSuffix)
				for ref := range v.refs {
					queue = append(queue, ref)
				}
			}
		}
		p.merge(r, f, &fileSuffix)
		for ref := range f.refs {
			queue = append(queue, ref)
		}
	}
	if fileSuffix {
		for name := range r.env {
			if !strings.HasSuffix(name, "_FILE") {
				r.env[name+"_FILE"] = true
			}
		}
	}
	return r
}

func (p *program) merge(r *reachFacts, f *funcFacts, fileSuffix *bool) {
	for k := range f.env {
		r.env[k] = true
	}
	for k, v := range f.defaults {
		r.defaults[k] = v
	}
	for k := range f.paths {
		r.paths[k] = true
	}
	*fileSuffix = *fileSuffix || f.fileSuffix
}

// runtimeFuncKey turns the runtime's name of a command's function
// ("github.com/x/internal/cli.newWorkerCmd.func1", or with inlining
// "...cli.newRoot.newBenchWorkerCmd.func1", or a method value
// "...cli.(*server).run-fm") into the key of the declared function whose
// body holds it.
func runtimeFuncKey(name string) string {
	slash := strings.LastIndex(name, "/")
	dot := strings.Index(name[slash+1:], ".")
	if dot < 0 {
		return name
	}
	pkg, rest := name[:slash+1+dot], name[slash+1+dot+1:]
	method := strings.HasPrefix(rest, "(")
	if method {
		rest = rest[strings.Index(rest, ")")+2:]
	}
	var last string
	for _, seg := range strings.Split(strings.TrimSuffix(rest, "-fm"), ".") {
		if seg == "" || strings.HasPrefix(seg, "func") && strings.Trim(seg[4:], "0123456789") == "" || strings.Trim(seg, "0123456789") == "" {
			continue
		}
		last = seg
	}
	if method {
		return methodKey(pkg, last)
	}
	return funcKey(pkg, last)
}

// commandEnv is every environment variable the command at path reads:
// those its flags' usage names and those its code names.
func (p *program) commandEnv(path string) map[string]bool {
	out := map[string]bool{}
	for _, f := range p.commands[path].Flags {
		for _, e := range f.Env {
			out[e] = true
		}
	}
	for e := range p.reached(path).env {
		out[e] = true
	}
	return out
}

// allEnv is every environment variable any command reads.
func (p *program) allEnv() map[string]bool {
	out := map[string]bool{}
	for path := range p.commands {
		for e := range p.commandEnv(path) {
			out[e] = true
		}
	}
	return out
}

// flagForEnv is the flag of the command whose default comes from env.
func (p *program) flagForEnv(path, env string) (lab.FlagInfo, bool) {
	for _, f := range p.commands[path].Flags {
		for _, e := range f.Env {
			if e == env {
				return f, true
			}
		}
	}
	return lab.FlagInfo{}, false
}

// serves reports whether the command at path registers an HTTP handler for
// urlPath: a pattern equal to it, or a subtree pattern ("/debug/") above it.
// The catch-all "/" does not count: a probe must have its own handler.
func (p *program) serves(path, urlPath string) bool {
	for pat := range p.reached(path).paths {
		if pat == urlPath || (len(pat) > 1 && strings.HasSuffix(pat, "/") && strings.HasPrefix(urlPath, pat)) {
			return true
		}
	}
	return false
}

// secretEnv are the variables that hold a secret in plain text: those the
// program also reads as NAME_FILE.
func (p *program) secretEnv() map[string]bool {
	all := p.allEnv()
	out := map[string]bool{}
	for e := range all {
		if base, ok := strings.CutSuffix(e, "_FILE"); ok && all[base] {
			out[base] = true
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestProgramIntrospection(t *testing.T) {
	// The checks below are only as good as what they read from the
	// program: make sure the reading works on what the program has
	// always had, so that a broken reader fails here and not as a
	// silent pass elsewhere.
	p := loadProgram(t)
	w, ok := p.commands["worker"]
	if !ok {
		t.Fatalf("no worker command in %v", sortedKeys(p.commands))
	}
	if got := runtimeFuncKey(w.Func); got != funcKey(p.module+"/internal/cli", "newWorkerCmd") {
		t.Errorf("worker's function %q maps to %q", w.Func, got)
	}
	env := p.commandEnv("worker")
	for _, name := range []string{"REDIS_URL", "TIM_SDKAPPID", "TIM_SECRET_KEY", "TIM_SECRET_KEY_FILE", "LOG_FORMAT"} {
		if !env[name] {
			t.Errorf("the worker's environment as read from the program lacks %s: %v", name, sortedKeys(env))
		}
	}
	if env["DASHBOARD_USER"] {
		t.Errorf("the worker's environment includes the dashboard's DASHBOARD_USER: reaching is too loose")
	}
	if !p.serves("imsim", "/sim/stats") {
		t.Errorf("imsim's /sim/stats not found in the paths it reaches: %v", sortedKeys(p.reached("imsim").paths))
	}
	if p.serves("enqueue", "/sim/stats") {
		t.Errorf("enqueue reaches the simulator's /sim/stats: reaching is too loose")
	}
	for _, tc := range []struct{ in, want string }{
		{"m/internal/cli.newWorkerCmd.func1", "m/internal/cli.newWorkerCmd"},
		{"m/internal/cli.newRoot.newBenchWorkerCmd.func1", "m/internal/cli.newBenchWorkerCmd"},
		{"m/internal/cli.newX.func1.2", "m/internal/cli.newX"},
		{"m/internal/cli.(*server).run-fm", "m/internal/cli.#run"},
		{"m/internal/cli.(*server).run.func2", "m/internal/cli.#run"},
	} {
		if got := runtimeFuncKey(tc.in); got != tc.want {
			t.Errorf("runtimeFuncKey(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
