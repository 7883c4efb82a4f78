package network

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stackrun/stack/spec"
)

// Names from the stack file never become interface names directly: bridges and veths are
// named by a hash of the whole name, so names that share a long prefix (and would collide if
// truncated to IFNAMSIZ) get different interfaces.
func TestLongNamesSharingAPrefixDoNotCollide(t *testing.T) {
	prefix := "p_" + strings.Repeat("n", 120)
	a, b := prefix+"-a", prefix+"-b"
	ba, bb := BridgeName(a, nil), BridgeName(b, nil)
	if ba == bb {
		t.Fatalf("bridges of %q and %q are both %q", a, b, ba)
	}
	for _, n := range []string{ba, bb} {
		if len(n) > 15 || !strings.HasPrefix(n, "stk") {
			t.Errorf("bridge name %q: want stk + hash, at most 15 bytes", n)
		}
	}
	// The same network, two containers whose ids share all but the last digits.
	id := strings.Repeat("0123456789abcdef", 4)
	va, vb := vethName(a, id[:63]+"1", nil), vethName(a, id[:63]+"2", nil)
	if va == vb || len(va) > 15 || len(vb) > 15 {
		t.Errorf("veths %q and %q", va, vb)
	}
	// Two networks sharing a prefix, the same container.
	if vethName(a, id, nil) == vethName(b, id, nil) {
		t.Error("veths of one container on two networks collide")
	}
}

// The network name rule is spec's (which reports bad names with their position in the file),
// and every name it accepts stays a single file name inside the records directory.
func TestNetworkNamesFollowSpecRule(t *testing.T) {
	names := []string{"shop_default", "a", "p_.", "p_..", "x.y-z_1", strings.Repeat("a", spec.MaxNameLen),
		"", ".", "..", "../etc", "a/b", "_x", "-x", ".hidden", "a b", "a\x00b", strings.Repeat("a", spec.MaxNameLen+1)}
	m := &Manager{dir: "/state/networks"}
	for _, n := range names {
		specOK := spec.ValidObjectName("network", n) == nil
		ourOK := checkName("network", n) == nil
		if specOK != ourOK {
			t.Errorf("%q: spec accepts %v, network accepts %v", n, specOK, ourOK)
		}
		if !ourOK {
			continue
		}
		p := m.netPath(n)
		if filepath.Dir(p) != "/state/networks/networks" || len(filepath.Base(p)) > 255 {
			t.Errorf("record of network %q at %s", n, p)
		}
	}
}
