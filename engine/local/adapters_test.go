package local

import (
	"slices"
	"testing"
)

func TestRefAliases(t *testing.T) {
	for _, tc := range []struct {
		canon string
		want  []string // each must be among the aliases
		not   []string
	}{
		{"index.docker.io/library/busybox:latest",
			[]string{"busybox", "busybox:latest", "library/busybox", "docker.io/busybox", "docker.io/library/busybox:latest", "index.docker.io/library/busybox"},
			[]string{"busybox:1"}},
		{"index.docker.io/library/redis:7", []string{"redis:7", "docker.io/library/redis:7"}, []string{"redis"}},
		{"index.docker.io/acme/app:latest", []string{"acme/app", "acme/app:latest", "docker.io/acme/app"}, []string{"app"}},
		{"localhost:5000/app:latest", []string{"localhost:5000/app", "localhost:5000/app:latest"}, []string{"app"}},
		{"index.docker.io/library/stack-example:latest", []string{"stack-example", "stack-example:latest"}, nil},
	} {
		got := refAliases(tc.canon)
		for _, w := range tc.want {
			if !slices.Contains(got, w) {
				t.Errorf("refAliases(%s) = %v: missing %s", tc.canon, got, w)
			}
		}
		for _, n := range tc.not {
			if slices.Contains(got, n) {
				t.Errorf("refAliases(%s) = %v: has %s", tc.canon, got, n)
			}
		}
	}
}
