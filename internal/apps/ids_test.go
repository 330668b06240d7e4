package apps

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadIDsReadsNoKeyFile: the intake's loader takes the apps file of
// the workers where no key file is mounted, and keeps no key.
func TestLoadIDsReadsNoKeyFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "apps.yaml")
	if err := os.WriteFile(p, []byte(goodFile), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "secret_key_file: cannot read") {
		t.Fatalf("Load without the key files: %v, want the missing key refused", err)
	}
	got, err := LoadIDs(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].SDKAppID != 1400000000 || got[0].Name != "prod" || got[1].SDKAppID != 1400000001 || got[1].Name != "1400000001" {
		t.Fatalf("LoadIDs: %+v", got)
	}
	for _, a := range got {
		if a.SecretKey != "" {
			t.Errorf("app %d has a key %d bytes long; LoadIDs reads none", a.SDKAppID, len(a.SecretKey))
		}
	}
	if got[0].SecretKeyFile != filepath.Join(dir, "keys/prod") {
		t.Errorf("SecretKeyFile %q, want it resolved beside the apps file", got[0].SecretKeyFile)
	}
	if _, err := LoadIDs(filepath.Join(dir, "none.yaml")); err == nil || !strings.Contains(err.Error(), "TIM_APPS_FILE") {
		t.Fatalf("a missing file: %v", err)
	}
}

// TestParseIDsChecksAllButTheKey: every mistake Parse refuses, bar an
// unreadable or empty key file, ParseIDs refuses with the same error.
func TestParseIDsChecksAllButTheKey(t *testing.T) {
	app := func(fields string) string { return "apps:\n  - " + strings.ReplaceAll(fields, "\n", "\n    ") + "\n" }
	for _, tc := range []struct{ name, file, want string }{
		{"empty", "", "is empty"},
		{"no apps", "apps: []\n", "lists no app"},
		{"unknown field", app("sdkappid: 1\nsecret_key_file: /k\nsecret_key: x"), "secret_key is not a field of an app"},
		{"no sdkappid", app("secret_key_file: /k"), "app 1: sdkappid is missing"},
		{"duplicate", app("sdkappid: 7\nsecret_key_file: /k") + "  - sdkappid: 7\n    secret_key_file: /k\n", "sdkappid 7 is also app 1"},
		{"no key file named", app("sdkappid: 7"), "(sdkappid 7): secret_key_file is missing"},
		{"rate high", app("sdkappid: 7\nsecret_key_file: /k\ngroup_rate: 201"), "group_rate must be above 0"},
		{"bad name", app("sdkappid: 7\nsecret_key_file: /k\nname: a b"), "name: \"a b\""},
		{"duplicate name", app("sdkappid: 7\nsecret_key_file: /k\nname: x") + "  - sdkappid: 8\n    secret_key_file: /k\n    name: x\n", "name \"x\" is also app 1's"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseIDs([]byte(tc.file), "/")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
			_, perr := Parse([]byte(tc.file), "/", fakeFiles(map[string]string{"/k": "key"}))
			if perr == nil || perr.Error() != err.Error() {
				t.Errorf("ParseIDs says %q, Parse says %v", err, perr)
			}
		})
	}
	got, err := ParseIDs([]byte(app("sdkappid: 7\nsecret_key_file: /nope")), "/")
	if err != nil || len(got) != 1 || got[0].SDKAppID != 7 {
		t.Fatalf("a key file that does not exist: %+v %v, want the app", got, err)
	}
}
