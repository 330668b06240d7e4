package apps

import "path/filepath"

// LoadIDs reads the apps file at path as Load does, with the same checks
// and errors, but reads no secret key: for a program that never calls
// Tencent (the HTTP intake), which may run where the key files are not
// mounted. Each app's secret_key_file must still be named (the file is
// the one the workers read), but it need not exist; SecretKey is left
// empty. SecretKeyFile is resolved as Load resolves it.
func LoadIDs(path string) ([]App, error) {
	b, err := readAppsFile(path)
	if err != nil {
		return nil, err
	}
	return ParseIDs(b, filepath.Dir(path))
}

// ParseIDs reads an apps file's content as Parse does, without reading
// any key file (see LoadIDs).
func ParseIDs(content []byte, dir string) ([]App, error) {
	list, err := Parse(content, dir, skipKey)
	for i := range list {
		list[i].SecretKey = ""
	}
	return list, err
}

// skipKey stands in for a key file's content so that Parse checks
// everything but the key; ParseIDs drops it.
func skipKey(string) ([]byte, error) { return []byte("not-read"), nil }
