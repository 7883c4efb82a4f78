package spec

import (
	"fmt"
)

// Names from the stack file become names of host objects: the project name a directory of
// records, a cgroup directory and a lock file; network and volume names record files,
// directories and lock files (network.Manager, volumes.Store). Service names become DNS
// names and are checked as such in validate. Interface and nftables names are never taken
// from the file: bridges and veths are named by a hash of the full name (network.BridgeName),
// so two long names sharing a prefix cannot collide.
//
// The rules here are those of network and volumes, checked while the positions of the keys
// are known, so that a bad name is reported as file:line:col instead of failing `up` half way.
const (
	// MaxNameLen is the longest network or volume name: every file name made from one (a
	// record, a lock, a volume's removal directory with its random suffix) then stays well
	// within NAME_MAX (255).
	MaxNameLen = 128
	// MaxProjectNameLen is the longest project name: its default network,
	// <project>_default, must fit in MaxNameLen.
	MaxProjectNameLen = MaxNameLen - len("_default")
)

// objectNameChars reports whether name is what a network or volume name may be made of:
// letters, digits, '_', '.' and '-', starting with a letter or digit. So no slash, no leading
// dot (never "." or ".."), nothing a shell or a path would read specially.
func objectNameChars(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != '-') {
			return false
		}
	}
	return true
}

// IsObjectName reports whether name can name a network or volume: ValidObjectName without
// the reason.
func IsObjectName(name string) bool { return objectNameChars(name) && len(name) <= MaxNameLen }

// ValidObjectName reports why name cannot name a network or volume ("what" says which), or
// nil. network and volumes check their own names with the same rule.
func ValidObjectName(what, name string) error {
	if !objectNameChars(name) {
		return fmt.Errorf("%s name %q: use letters, digits, '_', '.' and '-', starting with a letter or digit", what, name)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%s name %q is %d characters long; at most %d", what, Abbrev(name), len(name), MaxNameLen)
	}
	return nil
}

// Abbrev shortens a long name for a message.
func Abbrev(s string) string {
	if len(s) <= 40 {
		return s
	}
	return s[:20] + "..." + s[len(s)-12:]
}
