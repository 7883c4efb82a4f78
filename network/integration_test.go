package network_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stackrun/stack/internal/testutil"
	"github.com/stackrun/stack/network"
)

// Every integration test runs the Manager inside a sandbox namespace that plays the host
// (network.WithNetNS): its bridges, veths, nftables table and sysctls live there and vanish with
// it, so the real host's interfaces, routes and ruleset are never touched. "Containers" are
// further namespaces with busybox processes in them.

type sandbox struct {
	t    *testing.T
	host string // path of the namespace playing the host
	dir  string
	m    *network.Manager
}

func newSandbox(t *testing.T) *sandbox {
	testutil.RequireRoot(t)
	testutil.RequireBinary(t, "busybox")
	testutil.RequireBinary(t, "nsenter")
	_, host := testutil.NetNS(t)
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return &sandbox{t: t, host: host, dir: dir, m: network.New(dir, log, network.WithNetNS(host))}
}

// container makes a namespace for one container and returns its path.
func (s *sandbox) container() string {
	_, p := testutil.NetNS(s.t)
	return p
}

// httpd serves body on port 80 inside ns.
func (s *sandbox) httpd(ns, body string) {
	dir := s.t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(body), 0o644); err != nil {
		s.t.Fatal(err)
	}
	testutil.StartInNetNS(s.t, ns, "busybox", "httpd", "-f", "-p", "80", "-h", dir)
}

// get fetches url from inside ns with busybox wget.
func get(ns, url string) (string, error) {
	out, err := testutil.RunInNetNS(ns, 3*time.Second, "busybox", "wget", "-q", "-O", "-", url)
	if err != nil {
		return out, fmt.Errorf("wget %s from %s: %w: %s", url, ns, err, out)
	}
	return out, nil
}

func (s *sandbox) expectGet(ns, url, want string) {
	s.t.Helper()
	testutil.Eventually(s.t, 10*time.Second, "GET "+url, func() error {
		got, err := get(ns, url)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("got %q, want %q", got, want)
		}
		return nil
	})
}

func run(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := testutil.RunInNetNS(ns, 10*time.Second, args...)
	if err != nil {
		t.Fatalf("%v: %v: %s", args, err, out)
	}
	return out
}

func TestAttachReachability(t *testing.T) {
	s := newSandbox(t)
	ctx := context.Background()
	n, err := s.m.EnsureNetwork(ctx, network.Spec{Project: "p", Name: "p_default"})
	if err != nil {
		t.Fatal(err)
	}
	a, b := s.container(), s.container()
	at, err := s.m.Attach(ctx, n.Name, "a", a, network.AttachOptions{Aliases: []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	bt, err := s.m.Attach(ctx, n.Name, "b", b, network.AttachOptions{Aliases: []string{"b"}})
	if err != nil {
		t.Fatal(err)
	}
	if at.IfName != "eth0" {
		t.Fatalf("interface %q, want eth0", at.IfName)
	}
	if out := run(t, a, "ip", "route", "show", "default"); !strings.Contains(out, "via "+n.Gateway.String()+" dev eth0") {
		t.Fatalf("default route in a: %q", out)
	}
	if out := run(t, a, "ip", "-br", "addr", "show", "eth0"); !strings.Contains(out, at.IPv4.String()+"/24") {
		t.Fatalf("address in a: %q", out)
	}
	s.httpd(b, "hello from b")
	s.expectGet(a, "http://"+bt.IPv4.String()+"/", "hello from b")
	// The "host" reaches containers through the bridge too.
	s.expectGet(s.host, "http://"+bt.IPv4.String()+"/", "hello from b")

	for _, id := range []string{"a", "b"} {
		if err := s.m.Detach(ctx, n.Name, id); err != nil {
			t.Fatal(err)
		}
	}
	if out := run(t, a, "ip", "-br", "link"); strings.Contains(out, "eth0") {
		t.Fatalf("eth0 left in a after detach: %s", out)
	}
	if err := s.m.RemoveNetwork(ctx, n.Name); err != nil {
		t.Fatal(err)
	}
	s.expectClean()
}

// expectClean checks the sandbox host has nothing of stack left: only lo, no table, no
// allocation.
func (s *sandbox) expectClean() {
	s.t.Helper()
	if out := run(s.t, s.host, "ip", "-o", "link"); strings.Count(strings.TrimSpace(out), "\n") != 0 {
		s.t.Fatalf("interfaces left in the host namespace:\n%s", out)
	}
	if out := run(s.t, s.host, "nft", "list", "tables"); strings.TrimSpace(out) != "" {
		s.t.Fatalf("nftables tables left: %s", out)
	}
	nets, err := s.m.List()
	if err != nil || len(nets) != 0 {
		s.t.Fatalf("network records left: %d %v", len(nets), err)
	}
	bs, err := s.m.Bindings("")
	if err != nil || len(bs) != 0 {
		s.t.Fatalf("port bindings left: %v %v", bs, err)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "ip_forward.prev")); err == nil {
		s.t.Fatal("ip_forward not restored")
	}
}
