// Package testutil holds helpers for stack's tests: skip helpers for root-only and
// host-feature-dependent tests, and unique names for host resources a test creates.
package testutil

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"testing"
)

// Prefix starts the name of every host resource a test creates (bridges, netns, cgroups, ...),
// so a leak is recognisable as ours.
const Prefix = "stk-t-"

// RequireRoot skips the test, with the reason, unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs real containers / touches kernel state")
	}
}

// RequireBinary skips the test unless name is on PATH.
func RequireBinary(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("needs %s on PATH (make deps installs it)", name)
	}
	return p
}

// RequireCgroupV2 skips the test unless /sys/fs/cgroup is a cgroup2 mount with controllers.
func RequireCgroupV2(t testing.TB) {
	t.Helper()
	b, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
	if err != nil || len(b) == 0 {
		t.Skip("needs a unified cgroup v2 hierarchy with controllers (this host is v1/hybrid)")
	}
}

// UniqueName returns Prefix plus a random suffix, short enough for an interface name (15 chars).
func UniqueName() string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return Prefix + hex.EncodeToString(b[:])
}
