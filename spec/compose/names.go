package compose

import (
	"maps"
	"slices"

	"github.com/stackrun/stack/spec"

	"fmt"
	"strings"
)

// validateNames checks the project, network and volume names.
func validateNames(st *spec.Stack, c *collector) {
	if n := len(st.Name); n > spec.MaxProjectNameLen {
		msg := fmt.Sprintf("project name %q is %d characters long; at most %d (its networks and volumes are named <project>_<key>, at most %d)",
			spec.Abbrev(st.Name), n, spec.MaxProjectNameLen, spec.MaxNameLen)
		// At name: when the file's name: is the project name; else it came from -p,
		// COMPOSE_PROJECT_NAME or the directory, and has no place in the file.
		if v, ok := c.pos.raw("name"); ok && strings.EqualFold(v, st.Name) {
			c.errorf("name", "%s", msg)
		} else {
			c.errors = append(c.errors, &spec.Problem{Message: msg + " (from -p, COMPOSE_PROJECT_NAME or the directory name)"})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(st.Networks)) {
		n := st.Networks[k]
		checkObjectName(c, "network", "networks."+k, n.Name, st.Name)
	}
	for _, k := range slices.Sorted(maps.Keys(st.Volumes)) {
		v := st.Volumes[k]
		checkObjectName(c, "volume", "volumes."+k, v.Name, st.Name)
	}
}

// checkObjectName reports a bad name of the network or volume at key: at its name: when the
// file sets one, else at the key (the name is then <project>_<key>).
func checkObjectName(c *collector, what, key, name, project string) {
	if len(project) > spec.MaxProjectNameLen && strings.HasPrefix(name, project+"_") {
		return // the project name is reported: it is why the derived names are too long
	}
	err := spec.ValidObjectName(what, name)
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
