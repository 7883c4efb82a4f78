package network

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stackrun/stack/spec"
)

func TestAttachRequests(t *testing.T) {
	svc := &spec.Service{Name: "web", Networks: map[string]*spec.ServiceNetwork{
		"front":   {Aliases: []string{"www"}, IPv4Address: "10.5.0.9"},
		"default": nil,
	}}
	nets := map[string]*spec.Network{"front": {Key: "front", Name: "shared-front"}, "default": {Key: "default"}}
	got, err := AttachRequests("shop", nets, svc, "shop-web-1", map[string]string{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Network != "shop_default" || got[1].Network != "shared-front" {
		t.Fatalf("requests %+v", got)
	}
	if got[0].Options.IfName != "eth0" || got[1].Options.IfName != "eth1" ||
		strings.Join(got[1].Options.Aliases, ",") != "web,www" || got[1].Options.IPv4 != addr("10.5.0.9") ||
		got[1].Options.Name != "shop-web-1" || got[1].Options.Labels["k"] != "v" {
		t.Fatalf("options %+v", got)
	}
	svc.Networks["front"].IPv4Address = "nope"
	if _, err := AttachRequests("shop", nets, svc, "x", nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad address: %v", err)
	}
	if r, _ := AttachRequests("shop", nets, &spec.Service{NetworkMode: "none", Networks: svc.Networks}, "x", nil); r != nil {
		t.Fatalf("network_mode none: %v", r)
	}
}

func TestPortBindings(t *testing.T) {
	svc := &spec.Service{Name: "web", Ports: []spec.Port{
		{HostIP: "127.0.0.1", Published: 8080, Target: 80, Protocol: "tcp"},
		{Target: 80},
		{Published: 5353, Target: 53, Protocol: "udp"},
		{HostIP: "::", Published: 8080, Target: 80, Protocol: "tcp"},
	}}
	got, err := PortBindings(svc)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.0.1:8080->80/tcp", "0->80/tcp", "5353->53/udp"}
	if len(got) != len(want) {
		t.Fatalf("bindings %v", got)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("binding %d = %s, want %s", i, got[i], want[i])
		}
	}
	if _, err := PortBindings(&spec.Service{Ports: []spec.Port{{Target: 1, Protocol: "sctp"}}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("sctp: %v", err)
	}
}

func TestProjectOwnership(t *testing.T) {
	ctx := context.Background()
	f := newFakeHost()
	m, _ := newTestManager(t, f)
	sp := SpecFor("shop", &spec.Network{Key: "default"})
	if sp.Name != "shop_default" || sp.Project != "shop" {
		t.Fatalf("SpecFor = %+v", sp)
	}
	if _, err := m.EnsureNetwork(ctx, sp); err != nil {
		t.Fatal(err)
	}
	ext := SpecFor("shop", &spec.Network{Key: "outside", Name: "corp", External: true})
	if _, err := m.EnsureNetwork(ctx, ext); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing external network: %v", err)
	}
	if _, err := m.EnsureNetwork(ctx, Spec{Name: "corp"}); err != nil { // `stack network create corp`
		t.Fatal(err)
	}
	if n, err := m.EnsureNetwork(ctx, ext); err != nil || n.Name != "corp" {
		t.Fatalf("external network: %v %v", n, err)
	}
	mine, _ := m.ListProject("shop")
	if len(mine) != 1 || mine[0].Name != "shop_default" || mine[0].Key != "default" {
		t.Fatalf("ListProject = %v", mine)
	}
	if err := m.RemoveOwned(ctx, "shop", "corp"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("removing an external network: %v", err)
	}
	if err := m.RemoveOwned(ctx, "shop", "shop_default"); err != nil {
		t.Fatal(err)
	}
	if err := m.RemoveOwned(ctx, "shop", "shop_default"); err != nil {
		t.Fatalf("missing: %v", err)
	}
}

func TestNameFilesFollowPeers(t *testing.T) {
	ctx := context.Background()
	f := newFakeHost()
	m, _ := newTestManager(t, f)
	resolv := filepath.Join(t.TempDir(), "host-resolv.conf")
	os.WriteFile(resolv, []byte("nameserver 127.0.0.53\nnameserver 192.0.2.53\n"), 0o644)
	m.resolvConf = resolv
	if _, err := m.EnsureNetwork(ctx, Spec{Name: "n", Subnet: "10.2.0.0/24"}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := m.Attach(ctx, "n", "a", "/ns/a", AttachOptions{Aliases: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	nf, err := NameFilesFor(&spec.Service{Name: "a", ExtraHosts: []spec.ExtraHost{{Host: "h", IP: "192.0.2.7"}}, DNSSearch: []string{"x.y"}},
		"abc123", filepath.Join(dir, "a.hosts"), filepath.Join(dir, "a.resolv"))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.WriteNameFiles("a", nf); err != nil {
		t.Fatal(err)
	}
	read := func(p string) string { b, _ := os.ReadFile(p); return string(b) }
	if r := read(nf.Resolv); r != "nameserver 192.0.2.53\nsearch x.y\n" {
		t.Fatalf("resolv.conf:\n%s", r)
	}
	fi, _ := os.Stat(nf.Hosts)
	b1, _ := m.Attach(ctx, "n", "b", "/ns/b", AttachOptions{Aliases: []string{"b"}})
	h := read(nf.Hosts)
	if !strings.Contains(h, b1.IPv4.String()+"\tb\n") || !strings.Contains(h, "192.0.2.7\th\n") || !strings.Contains(h, "abc123 a\n") {
		t.Fatalf("hosts of a after b joined:\n%s", h)
	}
	m.Detach(ctx, "n", "b")
	if h := read(nf.Hosts); strings.Contains(h, b1.IPv4.String()) {
		t.Fatalf("hosts of a still names b after detach:\n%s", h)
	}
	b2, _ := m.Attach(ctx, "n", "b", "/ns/b2", AttachOptions{Aliases: []string{"b"}})
	if h := read(nf.Hosts); !strings.Contains(h, b2.IPv4.String()+"\tb\n") {
		t.Fatalf("hosts of a after b was recreated:\n%s", h)
	}
	if fi2, _ := os.Stat(nf.Hosts); !os.SameFile(fi, fi2) {
		t.Fatal("hosts file replaced, not rewritten in place: the bind mount would keep the old one")
	}
	if err := m.Reconcile(ctx, map[string]bool{"b": true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(m.namesPath("a")); !os.IsNotExist(err) {
		t.Fatalf("name files record of a gone container kept: %v", err)
	}
}
