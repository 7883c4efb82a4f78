package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// DefaultImage is the name a service with build: and no image: has its image tagged with, as
// Compose names it: <project>-<service>. `down --rmi local` removes only such images.
func DefaultImage(project, service string) string { return project + "-" + service }

// Digests returns one digest per part of the resolved stack that a plan is computed from, keyed
// "project", "service:<name>", "network:<key>", "volume:<key>". Unlike Hash, a service's digest
// covers every field of the model (replicas, depends_on, build, pull_policy too): a saved plan
// compares them to tell whether the stack it was made from still is the same, and names the
// parts that differ. Warnings, the file names and the project directory are left out: the same
// resolved stack from another path is the same stack.
func Digests(st *Stack) map[string]string {
	out := map[string]string{"project": digestOf(st.Name)}
	for name, s := range st.Services {
		out["service:"+name] = digestOf(s)
	}
	for key, n := range st.Networks {
		out["network:"+key] = digestOf(n)
	}
	for key, v := range st.Volumes {
		out["volume:"+key] = digestOf(v)
	}
	return out
}

func digestOf(v any) string {
	// The model holds plain values only: Marshal cannot fail, and it sorts map keys.
	data, _ := json.Marshal(v)
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}
