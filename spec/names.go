package spec

import (
	"fmt"
	"regexp"
	"strings"
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

// objectName is what a network or volume name may be: no slash, no leading dot (so never "."
// or ".."), nothing a shell or a path would read specially.
var objectName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// ValidObjectName reports why name cannot name a network or volume ("what" says which), or
// nil. network and volumes check their own names with the same rule.
func ValidObjectName(what, name string) error {
	if !objectName.MatchString(name) {
		return fmt.Errorf("%s name %q: use letters, digits, '_', '.' and '-', starting with a letter or digit", what, name)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%s name %q is %d characters long; at most %d", what, abbrev(name), len(name), MaxNameLen)
	}
	return nil
}

// abbrev shortens a long name for a message.
func abbrev(s string) string {
	if len(s) <= 40 {
		return s
	}
	return s[:20] + "..." + s[len(s)-12:]
}

// validateNames checks the project, network and volume names.
func validateNames(st *Stack, c *collector) {
	if n := len(st.Name); n > MaxProjectNameLen {
		msg := fmt.Sprintf("project name %q is %d characters long; at most %d (its networks and volumes are named <project>_<key>, at most %d)",
			abbrev(st.Name), n, MaxProjectNameLen, MaxNameLen)
		// At name: when the file's name: is the project name; else it came from -p,
		// COMPOSE_PROJECT_NAME or the directory, and has no place in the file.
		if v, ok := c.pos.raw("name"); ok && strings.EqualFold(v, st.Name) {
			c.errorf("name", "%s", msg)
		} else {
			c.errors = append(c.errors, &Problem{Message: msg + " (from -p, COMPOSE_PROJECT_NAME or the directory name)"})
		}
	}
	for _, k := range sortedKeys(st.Networks) {
		n := st.Networks[k]
		checkObjectName(c, "network", "networks."+k, n.Name, st.Name)
	}
	for _, k := range sortedKeys(st.Volumes) {
		v := st.Volumes[k]
		checkObjectName(c, "volume", "volumes."+k, v.Name, st.Name)
	}
}

// checkObjectName reports a bad name of the network or volume at key: at its name: when the
// file sets one, else at the key (the name is then <project>_<key>).
func checkObjectName(c *collector, what, key, name, project string) {
	if len(project) > MaxProjectNameLen && strings.HasPrefix(name, project+"_") {
		return // the project name is reported: it is why the derived names are too long
	}
	err := ValidObjectName(what, name)
	if err == nil {
		return
	}
	at := key
	if _, ok := c.pos.exact(key+".name", 0); ok {
		at = key + ".name"
	}
	msg := err.Error()
	if at == key && name != "" && strings.HasPrefix(name, project+"_") {
		msg += " (named <project>_<key>: shorten the key or the project name, or set name:)"
	}
	c.errorf(at, "%s", msg)
}
