package network

import (
	"strings"
	"testing"
)

func TestBuildTable(t *testing.T) {
	if BuildTable(nil, nil) != nil {
		t.Fatal("empty records must give no table")
	}
	nets := []*Network{
		{Name: "p_default", Bridge: "stka", Subnet: pfx("10.89.0.0/24")},
		{Name: "p_back", Bridge: "stkb", Subnet: pfx("10.89.1.0/24"), Internal: true},
	}
	bs := []PortBinding{
		{HostPort: 5353, ContainerPort: 53, Protocol: "udp", ContainerIP: addr("10.89.0.3")},
		{HostIP: addr("127.0.0.1"), HostPort: 18080, ContainerPort: 80, Protocol: "tcp", ContainerIP: addr("10.89.0.2")},
	}
	want := `table ip stack {
	chain guard {
		type filter hook prerouting priority -300; policy accept;
		iifname "stkb" ip daddr 127.0.0.0/8 drop
		iifname "stka" ip daddr 127.0.0.0/8 drop
	}
	chain ports {
		ip daddr 127.0.0.1 meta l4proto tcp th dport 18080 dnat to 10.89.0.2:80
		meta l4proto udp th dport 5353 dnat to 10.89.0.3:53
	}
	chain prerouting {
		type nat hook prerouting priority -100; policy accept;
		fib daddr type local jump ports
	}
	chain output {
		type nat hook output priority -100; policy accept;
		fib daddr type local jump ports
	}
	chain postrouting {
		type nat hook postrouting priority 100; policy accept;
		oifname "stkb" ip saddr 127.0.0.0/8 masquerade
		oifname "stkb" ip saddr 10.89.1.0/24 ct status dnat masquerade
		oifname "stka" ip saddr 127.0.0.0/8 masquerade
		oifname "stka" ip saddr 10.89.0.0/24 ct status dnat masquerade
		oifname != "stka" ip saddr 10.89.0.0/24 masquerade
	}
	chain forward {
		type filter hook forward priority 0; policy accept;
		iifname "stkb" oifname != "stkb" drop
		iifname != "stkb" oifname "stkb" drop
		ct status dnat accept
		iifname "stkb" oifname "stka" drop
		iifname "stka" oifname "stkb" drop
	}
}
`
	tbl := BuildTable(nets, bs)
	if got := tbl.Render(); got != want {
		t.Fatalf("table:\n%s\nwant:\n%s", got, want)
	}
	if !tbl.Forwarding {
		t.Fatal("forwarding not requested")
	}
	// Internal only, nothing published: no forwarding needed, no DNAT chains.
	tbl = BuildTable(nets[1:], nil)
	if tbl.Forwarding || strings.Contains(tbl.Render(), "dnat to") {
		t.Fatalf("internal-only table:\n%s", tbl.Render())
	}
}

func TestBindingOverlaps(t *testing.T) {
	b := func(ip string, port uint16, proto string) PortBinding {
		p := PortBinding{HostPort: port, Protocol: proto, ContainerPort: 1}
		if ip != "" {
			p.HostIP = addr(ip)
		}
		return p
	}
	tests := []struct {
		a, b PortBinding
		want bool
	}{
		{b("", 80, "tcp"), b("", 80, "tcp"), true},
		{b("", 80, "tcp"), b("", 80, "udp"), false},
		{b("127.0.0.1", 80, "tcp"), b("", 80, "tcp"), true},
		{b("127.0.0.1", 80, "tcp"), b("0.0.0.0", 80, "tcp"), true},
		{b("127.0.0.1", 80, "tcp"), b("127.0.0.2", 80, "tcp"), false},
		{b("", 80, "tcp"), b("", 81, "tcp"), false},
		{b("", 0, "tcp"), b("", 0, "tcp"), false},
	}
	for _, tc := range tests {
		if got := tc.a.overlaps(tc.b); got != tc.want {
			t.Errorf("%s overlaps %s = %v", tc.a, tc.b, got)
		}
	}
}
