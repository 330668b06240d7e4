package campaign

import (
	"fmt"
	"regexp"
)

// MaxNameLen bounds a campaign's name.
const MaxNameLen = 64

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// ValidateName checks a campaign name: 1 to 64 letters, digits, '.', '_' or
// '-', starting with a letter or digit (it goes into Redis keys and hash
// tags, so no braces, colons or spaces).
func ValidateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: the name is empty: give one with --name, e.g. spam-wave-2024-11", ErrBadName)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: %q is %d bytes long; at most %d are allowed", ErrBadName, name, len(name), MaxNameLen)
	case !nameRE.MatchString(name):
		return fmt.Errorf("%w: %q: use letters, digits, '.', '_' and '-', starting with a letter or digit", ErrBadName, name)
	}
	return nil
}
