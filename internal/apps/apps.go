// Package apps reads the apps one recallq deployment serves: one app from
// the single-app environment (TIM_SDKAPPID, TIM_SECRET_KEY[_FILE], ...), or
// any number from an apps file (TIM_APPS_FILE, YAML):
//
//	apps:
//	  - sdkappid: 1400000000
//	    name: chat-prod            # optional: a short name for logs and the dashboard
//	    region: singapore          # or endpoint: https://proxy.example.com
//	    admin: administrator       # default admin
//	    secret_key_file: /run/secrets/tim_key_prod
//	    rate: 200                  # admin_msgwithdraw calls/s, default 200
//	    group_rate: 200            # group_msg_recall calls/s, default 200
//	  - sdkappid: 1400000001
//	    secret_key_file: /run/secrets/tim_key_staging
//
// A secret key comes only from a file the apps file names, never from the
// apps file itself: the apps file may be a ConfigMap, the keys are Secrets.
// Every error names the app (by its place in the file and its SDKAppID)
// and the field, and says how to fix it; none ever shows a key.
package apps

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/recallq/recallq/internal/tim"
)

// Defaults of an App.
const (
	DefaultAdmin = "admin"
	// DefaultRate is Tencent's cap on each API, per app: 200 calls/s.
	DefaultRate = 200.0
	// MaxApps bounds an apps file: each app adds queues, buckets and
	// metric series, and a file with thousands is a mistake.
	MaxApps = 64
	// maxFileBytes bounds the apps file.
	maxFileBytes = 1 << 20
)

// App is one Chat app and how to call Tencent for it.
type App struct {
	// SDKAppID is the app's SDKAppID from the Chat console.
	SDKAppID uint64
	// Name is a short label for logs and the dashboard. Default: the
	// SDKAppID in decimal.
	Name string
	// Region and Endpoint say where to call, as tim.Config's.
	Region, Endpoint string
	// Admin is the app admin account that signs requests.
	Admin string
	// SecretKey is the app's secret key, read from SecretKeyFile (or the
	// single-app environment). It never appears in a log or an error;
	// String and GoString hide it.
	SecretKey Secret
	// SecretKeyFile is where SecretKey was read from ("" from TIM_SECRET_KEY).
	SecretKeyFile string
	// Rate is the app's admin_msgwithdraw calls per second, shared by every
	// worker; GroupRate is group_msg_recall's. Both in (0, 200].
	Rate, GroupRate float64
}

// Secret is a string that prints as "[redacted]".
type Secret string

func (Secret) String() string   { return "[redacted]" }
func (Secret) GoString() string { return `"[redacted]"` }

// Label is the app's name for logs and metrics.
func (a App) Label() string { return a.Name }

// file is the apps file's shape.
type file struct {
	Apps []fileApp `yaml:"apps"`
}

type fileApp struct {
	SDKAppID      uint64   `yaml:"sdkappid"`
	Name          string   `yaml:"name"`
	Region        string   `yaml:"region"`
	Endpoint      string   `yaml:"endpoint"`
	Admin         string   `yaml:"admin"`
	SecretKeyFile string   `yaml:"secret_key_file"`
	Rate          *float64 `yaml:"rate"`
	GroupRate     *float64 `yaml:"group_rate"`
}

// Load reads the apps file at path. Relative secret_key_file paths are
// taken relative to the apps file's folder.
func Load(path string) ([]App, error) {
	b, err := readAppsFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(b, filepath.Dir(path), os.ReadFile)
}

// Parse reads an apps file's content; dir resolves relative key files and
// readFile reads them (os.ReadFile in Load).
func Parse(content []byte, dir string, readFile func(string) ([]byte, error)) ([]App, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(content))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("TIM_APPS_FILE is empty: list the apps under \"apps:\" (see the README's Several apps)")
		}
		return nil, fmt.Errorf("TIM_APPS_FILE: %s (the fields of an app are sdkappid, name, region, endpoint, admin, secret_key_file, rate, group_rate)", yamlError(err))
	}
	switch {
	case len(f.Apps) == 0:
		return nil, errors.New("TIM_APPS_FILE lists no app: list them under \"apps:\" (see the README's Several apps)")
	case len(f.Apps) > MaxApps:
		return nil, fmt.Errorf("TIM_APPS_FILE lists %d apps, more than %d: run one deployment per group of apps", len(f.Apps), MaxApps)
	}
	out := make([]App, 0, len(f.Apps))
	seen := map[uint64]int{}
	names := map[string]int{}
	for i, fa := range f.Apps {
		where := fmt.Sprintf("TIM_APPS_FILE: app %d", i+1)
		if fa.SDKAppID != 0 {
			where += fmt.Sprintf(" (sdkappid %d)", fa.SDKAppID)
		}
		if fa.SDKAppID == 0 {
			return nil, fmt.Errorf("%s: sdkappid is missing: copy the SDKAppID (digits) from the Chat console", where)
		}
		if j, dup := seen[fa.SDKAppID]; dup {
			return nil, fmt.Errorf("%s: sdkappid %d is also app %d: list each app once", where, fa.SDKAppID, j+1)
		}
		seen[fa.SDKAppID] = i
		a := App{SDKAppID: fa.SDKAppID, Name: fa.Name, Region: fa.Region, Endpoint: fa.Endpoint, Admin: fa.Admin, Rate: DefaultRate, GroupRate: DefaultRate}
		if a.Name == "" {
			a.Name = fmt.Sprint(a.SDKAppID)
		}
		if err := checkName(a.Name); err != nil {
			return nil, fmt.Errorf("%s: name: %w", where, err)
		}
		if j, dup := names[a.Name]; dup {
			return nil, fmt.Errorf("%s: name %q is also app %d's: give each app its own", where, a.Name, j+1)
		}
		names[a.Name] = i
		if a.Admin == "" {
			a.Admin = DefaultAdmin
		}
		if fa.Rate != nil {
			a.Rate = *fa.Rate
		}
		if fa.GroupRate != nil {
			a.GroupRate = *fa.GroupRate
		}
		if err := CheckRate("rate", a.Rate); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if err := CheckRate("group_rate", a.GroupRate); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if fa.SecretKeyFile == "" {
			return nil, fmt.Errorf("%s: secret_key_file is missing: name the file that holds the app's secret key (the key itself never goes in this file)", where)
		}
		a.SecretKeyFile = fa.SecretKeyFile
		if !filepath.IsAbs(a.SecretKeyFile) {
			a.SecretKeyFile = filepath.Join(dir, a.SecretKeyFile)
		}
		key, err := ReadKey(a.SecretKeyFile, readFile)
		if err != nil {
			return nil, fmt.Errorf("%s: secret_key_file: %w", where, err)
		}
		a.SecretKey = key
		if err := a.checkTencent(); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// yamlError keeps the YAML library's line numbers but never quotes a
// value: an apps file should hold no secret, but one pasted by mistake
// must not reach a log.
func yamlError(err error) string {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return hideValue(err.Error())
	}
	lines := make([]string, len(te.Errors))
	for i, e := range te.Errors {
		lines[i] = strings.Replace(hideValue(e), " not found in type apps.fileApp", " is not a field of an app", 1)
	}
	return strings.Join(lines, "; ")
}

// hideValue cuts a `quoted value` out of a YAML message.
func hideValue(msg string) string {
	i := strings.Index(msg, "`")
	if i < 0 {
		return msg
	}
	j := strings.Index(msg[i+1:], "`")
	if j < 0 {
		return msg[:i] + "(value not shown)"
	}
	return msg[:i] + "(value not shown)" + msg[i+1+j+1:]
}

// ReadKey reads a secret key file: trimmed, not empty.
func ReadKey(path string, readFile func(string) ([]byte, error)) (Secret, error) {
	b, err := readFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return "", fmt.Errorf("cannot read %s: %v", path, pe.Err)
		}
		return "", fmt.Errorf("cannot read %s", path)
	}
	k := strings.TrimSpace(string(b))
	if k == "" {
		return "", fmt.Errorf("%s is empty: put the app's secret key (Chat console > Basic configuration) in it", path)
	}
	return Secret(k), nil
}

// CheckRate refuses a rate outside (0, 200]: Tencent's cap per API.
func CheckRate(field string, r float64) error {
	if !(r > 0 && r <= DefaultRate) {
		return fmt.Errorf("%s must be above 0 and at most 200 calls/s (Tencent's cap per API and app); got %v", field, r)
	}
	return nil
}

// checkTencent validates the region and endpoint the way the Tencent
// client will, so a bad file fails at start and names its app.
func (a App) checkTencent() error {
	if a.Region == "" && a.Endpoint == "" {
		return nil
	}
	_, err := tim.New(tim.Config{SDKAppID: a.SDKAppID, SecretKey: "x", Admin: a.Admin, Region: a.Region, Endpoint: a.Endpoint})
	if err != nil {
		return err
	}
	return nil
}

// checkName keeps names fit for logs, metric labels and queue names.
func checkName(n string) error {
	if len(n) > 32 {
		return fmt.Errorf("%q is over 32 characters", n)
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("%q: use letters, digits, '-', '_' and '.'", n)
		}
	}
	return nil
}

// Find returns the app with id, if listed.
func Find(list []App, id uint64) (App, bool) {
	i := slices.IndexFunc(list, func(a App) bool { return a.SDKAppID == id })
	if i < 0 {
		return App{}, false
	}
	return list[i], true
}

// IDs lists the apps' SDKAppIDs in the file's order.
func IDs(list []App) []uint64 {
	out := make([]uint64, len(list))
	for i, a := range list {
		out[i] = a.SDKAppID
	}
	return out
}

// readAppsFile reads the apps file at path, bounded by maxFileBytes.
func readAppsFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("TIM_APPS_FILE: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("TIM_APPS_FILE %s: %w", path, err)
	}
	if len(b) > maxFileBytes {
		return nil, fmt.Errorf("TIM_APPS_FILE %s is over %d bytes: it should list apps, not data", path, maxFileBytes)
	}
	return b, nil
}
