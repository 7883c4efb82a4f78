package network

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// fakeHost records what the Manager asked the kernel to do. The mutex is for the race
// detector, which does not see the lock file's flock ordering the calls.
type fakeHost struct {
	mu         sync.Mutex
	host       []netip.Prefix
	links      map[string]bool
	detached   []string
	table      *Table
	applied    int
	failAttach bool
}

func newFakeHost(prefixes ...string) *fakeHost {
	f := &fakeHost{links: map[string]bool{}}
	for _, p := range prefixes {
		f.host = append(f.host, netip.MustParsePrefix(p))
	}
	return f
}

func (f *fakeHost) prefixes() ([]netip.Prefix, error) { return f.host, nil }

func (f *fakeHost) linkExists(n string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.links[n], nil
}

func (f *fakeHost) ensureBridge(n *Network) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.links[n.Bridge] = true
	return nil
}

func (f *fakeHost) deleteBridge(n *Network) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.links, n.Bridge)
	return nil
}

func (f *fakeHost) applyFirewall(t *Table) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.table, f.applied = t, f.applied+1
	return nil
}

func (f *fakeHost) detach(a *Attachment) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.detached = append(f.detached, a.ContainerID)
	delete(f.links, a.HostVeth)
	return nil
}

func (f *fakeHost) attach(n *Network, a *Attachment) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failAttach {
		return errors.New("injected failure")
	}
	if a.IfName == "" {
		a.IfName = "eth0"
	}
	f.links[a.HostVeth] = true
	return nil
}

func newTestManager(t *testing.T, f *fakeHost) (*Manager, string) {
	dir := t.TempDir()
	m := New(dir, nil)
	m.h = f
	return m, dir
}

func TestEnsureNetworkRecords(t *testing.T) {
	ctx := context.Background()
	f := newFakeHost("10.89.0.0/24", "192.0.2.0/24")
	m, dir := newTestManager(t, f)

	a, err := m.EnsureNetwork(ctx, Spec{Project: "p", Name: "p_default"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Subnet != pfx("10.89.1.0/24") || a.Gateway != addr("10.89.1.1") {
		t.Fatalf("subnet %s gw %s: want the first pool subnet not on the host", a.Subnet, a.Gateway)
	}
	b, err := m.EnsureNetwork(ctx, Spec{Project: "p", Name: "p_back", Internal: true})
	if err != nil {
		t.Fatal(err)
	}
	if b.Subnet.Overlaps(a.Subnet) || b.Bridge == a.Bridge {
		t.Fatalf("second network %s/%s collides with %s/%s", b.Subnet, b.Bridge, a.Subnet, a.Bridge)
	}
	// Idempotent, and read back by another Manager on the same directory.
	m2 := New(dir, nil)
	m2.h = f
	again, err := m2.EnsureNetwork(ctx, Spec{Project: "p", Name: "p_default"})
	if err != nil || again.Subnet != a.Subnet || again.Bridge != a.Bridge {
		t.Fatalf("EnsureNetwork again = %+v, %v", again, err)
	}
	if _, err := m.EnsureNetwork(ctx, Spec{Name: "p_default", Internal: true}); !errors.Is(err, ErrConflict) {
		t.Fatalf("internal mismatch: err = %v, want conflict", err)
	}
	if _, err := m.EnsureNetwork(ctx, Spec{Name: "q_default", Subnet: "10.89.1.128/25"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("overlapping explicit subnet: err = %v, want conflict", err)
	}
	if _, err := m.EnsureNetwork(ctx, Spec{Name: "../x"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad name: err = %v", err)
	}
	nets, err := m.List()
	if err != nil || len(nets) != 2 {
		t.Fatalf("List = %d, %v", len(nets), err)
	}
	if f.table == nil || !f.table.Forwarding {
		t.Fatal("no firewall table applied for a non-internal network")
	}
	for _, n := range []string{"p_default", "p_back"} {
		if err := m.RemoveNetwork(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if f.table != nil || len(f.links) != 0 {
		t.Fatalf("after removing all: table %v links %v", f.table, f.links)
	}
	if err := m.RemoveNetwork(ctx, "p_default"); err != nil {
		t.Fatalf("removing a missing network: %v", err)
	}
}

// An automatic subnet covers neither the host's routes and addresses nor a nameserver of its
// resolv.conf (loopback ones are not reachable through a bridge anyway and do not count).
func TestSubnetAvoidsNameservers(t *testing.T) {
	ctx := context.Background()
	f := newFakeHost("10.89.2.0/24")
	m, dir := newTestManager(t, f)
	conf := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(conf, []byte("nameserver 127.0.0.53\nnameserver 10.89.0.53\n# nameserver 10.89.3.1\nnameserver 10.89.1.1\nnameserver 2001:db8::1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m.resolvConf = conf
	n, err := m.EnsureNetwork(ctx, Spec{Project: "p", Name: "p_default"})
	if err != nil {
		t.Fatal(err)
	}
	if n.Subnet != pfx("10.89.3.0/24") {
		t.Fatalf("subnet %s, want 10.89.3.0/24 (10.89.0.53 and 10.89.1.1 are nameservers, 10.89.2.0/24 a route)", n.Subnet)
	}
}

func TestAttachDetachRecords(t *testing.T) {
	ctx := context.Background()
	f := newFakeHost()
	m, dir := newTestManager(t, f)
	if _, err := m.EnsureNetwork(ctx, Spec{Name: "n", Subnet: "10.1.0.0/24"}); err != nil {
		t.Fatal(err)
	}
	ips := map[netip.Addr]string{}
	for _, id := range []string{"a", "b", "c"} {
		at, err := m.Attach(ctx, "n", id, "/proc/1/ns/net", AttachOptions{Aliases: []string{id}})
		if err != nil {
			t.Fatal(err)
		}
		if prev, dup := ips[at.IPv4]; dup {
			t.Fatalf("%s got %s, already given to %s", id, at.IPv4, prev)
		}
		ips[at.IPv4] = id
		if at.Gateway != addr("10.1.0.1") || at.IfName != "eth0" || at.MAC != MACFor(at.IPv4) {
			t.Fatalf("attachment %+v", at)
		}
	}
	// Static address taken: conflict, nothing recorded.
	if _, err := m.Attach(ctx, "n", "d", "/x", AttachOptions{IPv4: addr("10.1.0.2")}); !errors.Is(err, ErrConflict) {
		t.Fatalf("static conflict: %v", err)
	}
	// A failed attach records nothing.
	f.failAttach = true
	if _, err := m.Attach(ctx, "n", "d", "/x", AttachOptions{}); err == nil {
		t.Fatal("injected failure not reported")
	}
	f.failAttach = false

	m2 := New(dir, nil)
	m2.h = f
	n, err := m2.Inspect("n")
	if err != nil || len(n.Attachments) != 3 {
		t.Fatalf("records on disk: %v, %v", n, err)
	}
	old := n.Attachments["b"].IPv4
	if err := m.Detach(ctx, "n", "b"); err != nil {
		t.Fatal(err)
	}
	at, err := m.Attach(ctx, "n", "b", "/proc/2/ns/net", AttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if at.IPv4 == old {
		t.Fatalf("recreated container got its old address %s back at once", old)
	}
	if err := m.RemoveNetwork(ctx, "n"); !errors.Is(err, ErrConflict) {
		t.Fatalf("remove with attachments: %v", err)
	}
	peers, err := m.Peers("a")
	if err != nil || !slices.Equal(peers, []string{"b", "c"}) {
		t.Fatalf("Peers = %v, %v", peers, err)
	}
	for _, id := range []string{"a", "b", "c"} {
		if err := m.Detach(ctx, "n", id); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Detach(ctx, "n", "a"); err != nil {
		t.Fatalf("second detach: %v", err)
	}
	n, _ = m.Inspect("n")
	if len(n.Attachments) != 0 {
		t.Fatalf("allocations left: %v", n.Attachments)
	}
}

func TestReconcileFreesDeadContainers(t *testing.T) {
	ctx := context.Background()
	f := newFakeHost()
	m, _ := newTestManager(t, f)
	for _, name := range []string{"x", "y"} {
		if _, err := m.EnsureNetwork(ctx, Spec{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"a", "b", "c"} {
		if _, err := m.Attach(ctx, "x", id, "/ns/"+id, AttachOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Attach(ctx, "y", "b", "/ns/b", AttachOptions{IfName: "eth1"}); err != nil {
		t.Fatal(err)
	}
	at, _ := m.Attachments("a")
	bt, _ := m.Attachments("b")
	if err := m.saveBindings([]PortBinding{
		{HostPort: 8080, ContainerPort: 80, Protocol: "tcp", ContainerID: "a", Network: "x", ContainerIP: at[0].IPv4},
		{HostPort: 8081, ContainerPort: 80, Protocol: "tcp", ContainerID: "b", Network: "x", ContainerIP: bt[0].IPv4},
	}); err != nil {
		t.Fatal(err)
	}
	// b and c were killed with -9; nothing detached them.
	if err := m.Reconcile(ctx, map[string]bool{"a": true}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(f.detached)
	if !slices.Equal(f.detached, []string{"b", "b", "c"}) {
		t.Fatalf("detached %v", f.detached)
	}
	for _, name := range []string{"x", "y"} {
		n, _ := m.Inspect(name)
		for id := range n.Attachments {
			if id != "a" {
				t.Fatalf("network %s still holds an address for %s", name, id)
			}
		}
	}
	bs, _ := m.Bindings("")
	if len(bs) != 1 || bs[0].ContainerID != "a" {
		t.Fatalf("bindings after reconcile: %v", bs)
	}
	if f.table == nil || len(f.table.Chains) == 0 {
		t.Fatal("table not re-applied")
	}
	var dnats int
	for _, c := range f.table.Chains {
		for _, r := range c.Rules {
			if r.Verdict == "dnat" {
				dnats++
			}
		}
	}
	if dnats != 1 {
		t.Fatalf("dnat rules = %d, want 1:\n%s", dnats, f.table.Render())
	}
}

// The engine attaches containers in parallel: the lock file serializes the Managers (here one
// per goroutine, as separate commands would be), so no address is given twice.
func TestConcurrentAttachDistinctAddresses(t *testing.T) {
	ctx := context.Background()
	f := newFakeHost()
	m, dir := newTestManager(t, f)
	if _, err := m.EnsureNetwork(ctx, Spec{Name: "n", Subnet: "10.3.0.0/24"}); err != nil {
		t.Fatal(err)
	}
	const n = 20
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			mi := New(dir, nil)
			mi.h = f
			_, err := mi.Attach(ctx, "n", fmt.Sprintf("c%d", i), "/ns", AttachOptions{})
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	rec, _ := m.Inspect("n")
	seen := map[netip.Addr]bool{}
	for _, a := range rec.Attachments {
		if seen[a.IPv4] {
			t.Fatalf("address %s given twice", a.IPv4)
		}
		seen[a.IPv4] = true
	}
	if len(seen) != n {
		t.Fatalf("%d attachments recorded, want %d", len(seen), n)
	}
}
