package main

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stackrun/stack/engine"
	"github.com/stackrun/stack/network"
	"github.com/stackrun/stack/state"
)

func TestContainerOf(t *testing.T) {
	lbl := func(p, s, n string) map[string]string {
		return map[string]string{engine.LabelProject: p, engine.LabelService: s, engine.LabelNumber: n}
	}
	all := []*network.Network{{Name: "p_default", Attachments: map[string]*network.Attachment{
		"c1": {Labels: lbl("p", "web", "1")},
		"c2": {Labels: lbl("p", "web", "2")},
		"c3": {Labels: lbl("q", "web", "1")},
	}}, {Name: "r_default", Project: "r", Attachments: map[string]*network.Attachment{
		"u1": {Aliases: []string{"web", "www"}, Name: "r-web-1"}, // recorded without labels
		"u2": {Aliases: []string{"web"}, Name: "r-web-2"},
	}}}
	for _, tc := range []struct {
		project, service string
		n                int
		want             string
	}{{"p", "web", 1, "c1"}, {"p", "web", 2, "c2"}, {"q", "web", 1, "c3"}, {"p", "db", 1, ""},
		{"r", "web", 2, "u2"}, {"r", "www", 1, ""}} {
		if got := containerOf(all, tc.project, tc.service, tc.n); got != tc.want {
			t.Errorf("containerOf(%s, %s, %d) = %q, want %q", tc.project, tc.service, tc.n, got, tc.want)
		}
	}
}

// TestPortAndNetworkLsFromRecords runs `stack port` and `stack network ls` on records as the
// network package writes them (no kernel needed to read them back).
func TestPortAndNetworkLsFromRecords(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, network.Dir)
	rec := &network.Network{Name: "shop_default", Project: "shop", Key: "default", Bridge: "stk0123456789",
		Subnet: netip.MustParsePrefix("10.89.0.0/24"), Gateway: netip.MustParseAddr("10.89.0.1"),
		Attachments: map[string]*network.Attachment{"c1": {Network: "shop_default", ContainerID: "c1", IPv4: netip.MustParseAddr("10.89.0.2"),
			Labels: map[string]string{engine.LabelProject: "shop", engine.LabelService: "web", engine.LabelNumber: "1"}}}}
	if err := state.WriteJSON(filepath.Join(dir, "networks", "shop_default.json"), rec); err != nil {
		t.Fatal(err)
	}
	ports := map[string]any{"bindings": []network.PortBinding{
		{HostPort: 32768, ContainerPort: 80, Protocol: "tcp", ContainerID: "c1", Network: "shop_default", ContainerIP: netip.MustParseAddr("10.89.0.2")},
		{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 5353, ContainerPort: 53, Protocol: "udp", ContainerID: "c1"},
	}}
	if err := state.WriteJSON(filepath.Join(dir, "ports.json"), ports); err != nil {
		t.Fatal(err)
	}
	if out, err := runStack(t, "", "--root", root, "port", "-p", "shop", "web", "80"); err != nil || out != "0.0.0.0:32768\n" {
		t.Errorf("port web 80: %q, %v", out, err)
	}
	if out, err := runStack(t, "", "--root", root, "port", "-p", "shop", "--protocol", "udp", "web", "53"); err != nil || out != "127.0.0.1:5353\n" {
		t.Errorf("port web 53/udp: %q, %v", out, err)
	}
	if _, err := runStack(t, "", "--root", root, "port", "-p", "shop", "web", "81"); err == nil {
		t.Error("unpublished port reported")
	}
	if out, err := runStack(t, "", "--root", root, "network", "ls"); err != nil || !strings.Contains(out, "shop_default   shop      stk0123456789   10.89.0.0/24") {
		t.Errorf("network ls:\n%s%v", out, err)
	}
}
