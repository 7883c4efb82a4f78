package network

import (
	"net/netip"
	"testing"
)

func TestRenderHosts(t *testing.T) {
	got := string(RenderHosts(Hosts{
		HostsOptions: HostsOptions{Hostname: "web", Domainname: "example.org",
			ExtraHosts: []HostEntry{{IP: addr("192.0.2.9"), Names: []string{"gateway.docker"}}}},
		Own:   []netip.Addr{addr("10.89.0.2")},
		Names: []string{"web", "www", "shop-web-1"},
		Peers: []HostEntry{
			{IP: addr("10.89.0.4"), Names: []string{"db", "database", "shop-db-1"}},
			{IP: addr("10.89.0.3"), Names: []string{"cache", "cache", "shop-cache-1"}},
			{IP: addr("10.89.0.9"), Names: nil},
		},
	}))
	want := `127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
fe00::0	ip6-localnet
ff00::0	ip6-mcastprefix
ff02::1	ip6-allnodes
ff02::2	ip6-allrouters
192.0.2.9	gateway.docker
10.89.0.2	web.example.org web www shop-web-1
10.89.0.3	cache shop-cache-1
10.89.0.4	db database shop-db-1
`
	if got != want {
		t.Fatalf("hosts:\n%s\nwant:\n%s", got, want)
	}
}

func TestHostsFromRecords(t *testing.T) {
	a := &Attachment{ContainerID: "a", IPv4: addr("10.0.0.2"), Aliases: []string{"a"}, Name: "p-a-1", IfName: "eth0"}
	b := &Attachment{ContainerID: "b", IPv4: addr("10.0.0.3"), Aliases: []string{"b"}, Name: "p-b-1", IfName: "eth0"}
	b2 := &Attachment{ContainerID: "b", IPv4: addr("10.1.0.2"), Aliases: []string{"b", "bee"}, IfName: "eth1"}
	c := &Attachment{ContainerID: "c", IPv4: addr("10.1.0.3"), Aliases: []string{"c"}, IfName: "eth0"}
	all := []*Network{
		{Name: "front", Attachments: map[string]*Attachment{"a": a, "b": b}},
		{Name: "back", Attachments: map[string]*Attachment{"b": b2, "c": c}},
	}
	h := hostsFor(all, "a", HostsOptions{Hostname: "a1"})
	if len(h.Peers) != 1 || h.Peers[0].IP != b.IPv4 {
		t.Fatalf("a must see only b on front: %+v", h.Peers)
	}
	h = hostsFor(all, "b", HostsOptions{})
	if len(h.Own) != 2 || len(h.Peers) != 2 {
		t.Fatalf("b: own %v peers %+v", h.Own, h.Peers)
	}
	if got := peersOf(all, "c"); len(got) != 1 || got[0] != "b" {
		t.Fatalf("peers of c = %v", got)
	}
}

func TestRenderResolvConf(t *testing.T) {
	host := []byte("# generated\nnameserver 127.0.0.53\nnameserver 10.255.255.53\nnameserver ::1\nsearch corp.example\noptions edns0 trust-ad\n")
	tests := []struct {
		name string
		host []byte
		o    ResolvOptions
		want string
	}{
		{"host minus loopback", host, ResolvOptions{}, "nameserver 10.255.255.53\nsearch corp.example\noptions edns0 trust-ad\n"},
		{"service dns", host, ResolvOptions{DNS: []string{"1.1.1.1"}, Search: []string{"a.b"}, Options: []string{"ndots:2"}},
			"nameserver 1.1.1.1\nsearch a.b\noptions ndots:2\n"},
		{"only loopback: fallback", []byte("nameserver 127.0.0.53\n"), ResolvOptions{}, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"},
		{"search dot clears", host, ResolvOptions{Search: []string{"."}}, "nameserver 10.255.255.53\noptions edns0 trust-ad\n"},
		{"domain line", []byte("domain x.y\nnameserver 192.0.2.1\n"), ResolvOptions{}, "nameserver 192.0.2.1\nsearch x.y\n"},
	}
	for _, tc := range tests {
		if got := string(RenderResolvConf(tc.host, tc.o)); got != tc.want {
			t.Errorf("%s:\n%s\nwant:\n%s", tc.name, got, tc.want)
		}
	}
}
