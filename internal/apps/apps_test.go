package apps

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goodFile = `
apps:
  - sdkappid: 1400000000
    name: prod
    region: singapore
    admin: administrator
    secret_key_file: keys/prod
    rate: 150
  - sdkappid: 1400000001
    endpoint: http://127.0.0.1:8089
    secret_key_file: /abs/staging
`

func fakeFiles(files map[string]string) func(string) ([]byte, error) {
	return func(p string) ([]byte, error) {
		if v, ok := files[p]; ok {
			return []byte(v), nil
		}
		return nil, &os.PathError{Op: "open", Path: p, Err: os.ErrNotExist}
	}
}

func TestParseReadsEveryFieldAndAppliesDefaults(t *testing.T) {
	got, err := Parse([]byte(goodFile), "/etc/recallq", fakeFiles(map[string]string{
		"/etc/recallq/keys/prod": "prod-key\n", "/abs/staging": "staging-key",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := []App{
		{SDKAppID: 1400000000, Name: "prod", Region: "singapore", Admin: "administrator", SecretKey: "prod-key", SecretKeyFile: "/etc/recallq/keys/prod", Rate: 150, GroupRate: 200},
		{SDKAppID: 1400000001, Name: "1400000001", Endpoint: "http://127.0.0.1:8089", Admin: "admin", SecretKey: "staging-key", SecretKeyFile: "/abs/staging", Rate: 200, GroupRate: 200},
	}
	if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", want) || got[0].SecretKey != "prod-key" || got[1].SecretKey != "staging-key" {
		t.Fatalf("got  %#v\nwant %#v", got, want)
	}
	if a, ok := Find(got, 1400000001); !ok || a.Name != "1400000001" {
		t.Fatalf("Find: %v %v", a, ok)
	}
	if _, ok := Find(got, 1); ok {
		t.Fatal("Find found an app that is not listed")
	}
}

// TestBadFilesNameTheAppTheFieldAndTheFix: every mistake is refused at
// start with the app and the field, and no error shows a secret, even one
// pasted into the file by mistake.
func TestBadFilesNameTheAppTheFieldAndTheFix(t *testing.T) {
	const secret = "hunter2-very-secret"
	keys := fakeFiles(map[string]string{"/k": "key", "/empty": "  \n"})
	app := func(fields string) string { return "apps:\n  - " + strings.ReplaceAll(fields, "\n", "\n    ") + "\n" }
	for _, tc := range []struct{ name, file, want string }{
		{"empty", "", "is empty"},
		{"no apps", "apps: []\n", "lists no app"},
		{"not yaml", "apps: [\n", "TIM_APPS_FILE"},
		{"key in the file", app("sdkappid: 1\nsecret_key_file: /k\nsecret_key: " + secret), "field secret_key is not a field of an app"},
		{"key as a number", app("sdkappid: " + secret + "\nsecret_key_file: /k"), "sdkappid"},
		{"no sdkappid", app("secret_key_file: /k"), "app 1: sdkappid is missing"},
		{"duplicate", app("sdkappid: 7\nsecret_key_file: /k") + "  - sdkappid: 7\n    secret_key_file: /k\n", "app 2 (sdkappid 7): sdkappid 7 is also app 1"},
		{"no key file", app("sdkappid: 7"), "(sdkappid 7): secret_key_file is missing"},
		{"key file missing", app("sdkappid: 7\nsecret_key_file: /nope"), "cannot read /nope"},
		{"key file empty", app("sdkappid: 7\nsecret_key_file: /empty"), "/empty is empty"},
		{"rate zero", app("sdkappid: 7\nsecret_key_file: /k\nrate: 0"), "rate must be above 0 and at most 200"},
		{"rate high", app("sdkappid: 7\nsecret_key_file: /k\ngroup_rate: 201"), "group_rate must be above 0"},
		{"bad region", app("sdkappid: 7\nsecret_key_file: /k\nregion: mars"), "(sdkappid 7)"},
		{"bad name", app("sdkappid: 7\nsecret_key_file: /k\nname: a b"), "name: \"a b\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.file), "/", keys)
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.file)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "key\"") {
				t.Errorf("error shows a secret: %q", err)
			}
		})
	}
}

func TestLoadReadsKeysBesideTheFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "k"), []byte("the-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "apps.yaml")
	if err := os.WriteFile(p, []byte("apps:\n  - sdkappid: 5\n    secret_key_file: k\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Load(p)
	if err != nil || len(got) != 1 || got[0].SecretKey != "the-key" {
		t.Fatalf("Load: %v %v", got, err)
	}
	if s := fmt.Sprintf("%v %+v %#v", got[0], got[0], got[0]); strings.Contains(s, "the-key") {
		t.Fatalf("printing an App shows its key: %s", s)
	}
	if _, err := Load(filepath.Join(dir, "none.yaml")); err == nil || !strings.Contains(err.Error(), "TIM_APPS_FILE") {
		t.Fatalf("a missing file: %v", err)
	}
}
