package campaign

import (
	"fmt"
	"regexp"
	"strconv"
)

// Prefix starts every key of this package.
const Prefix = "recallq"

// indexKey is the SET of every campaign's name.
const indexKey = Prefix + ":campaigns"

// activeKey is the SET of the campaigns that are neither done nor
// cancelled: the feeder looks only at these, so finished campaigns cost
// nothing however many accumulate.
const activeKey = Prefix + ":campaigns:active"

// keys names one campaign's keys. All of them share the hash tag
// {camp:NAME}, so one Lua script may touch any of them on Redis Cluster.
type keys struct {
	meta, counts, backlog, window, retrying, parked, dead, op string
	deadIDs, rates                                            string
}

// recordKeys are the KEYS of recordScript.
func (k keys) recordKeys() []string {
	return []string{k.counts, k.window, k.retrying, k.dead, k.deadIDs}
}

func keysFor(name string) keys {
	base := Prefix + ":{camp:" + name + "}:"
	return keys{
		meta:     base + "meta",
		counts:   base + "counts",
		backlog:  base + "backlog",
		window:   base + "window",
		retrying: base + "retrying",
		parked:   base + "parked",
		dead:     base + "dead",
		op:       base + "op",
		deadIDs:  base + "dead_ids",
		rates:    base + "rates",
	}
}

// feedKeys names the keys of one app's feeder.
type feedKeys struct{ lock, rate string }

func feedKeysFor(sdkAppID uint64) feedKeys {
	base := Prefix + ":{feed:" + strconv.FormatUint(sdkAppID, 10) + "}:"
	return feedKeys{lock: base + "lock", rate: base + "rate"}
}

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
