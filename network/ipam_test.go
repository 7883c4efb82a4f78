package network

import (
	"errors"
	"net/netip"
	"testing"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

func TestChooseSubnet(t *testing.T) {
	pools := []Pool{{pfx("10.89.0.0/16"), 24}, {pfx("172.28.0.0/23"), 24}}
	tests := []struct {
		name  string
		taken []string
		want  string
		err   error
	}{
		{"empty host", nil, "10.89.0.0/24", nil},
		{"host route in the first", []string{"10.89.0.0/24"}, "10.89.1.0/24", nil},
		{"host address /16 covers the pool", []string{"10.89.7.3/16"}, "172.28.0.0/24", nil},
		{"wide host route", []string{"10.0.0.0/8", "172.28.0.0/24"}, "172.28.1.0/24", nil},
		{"small route inside a candidate", []string{"10.89.0.128/25"}, "10.89.1.0/24", nil},
		{"ipv6 ignored", []string{"fd00::/8"}, "10.89.0.0/24", nil},
		{"exhausted", []string{"0.0.0.0/1", "128.0.0.0/1"}, "", ErrExhausted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var taken []netip.Prefix
			for _, s := range tc.taken {
				taken = append(taken, pfx(s))
			}
			got, err := ChooseSubnet(pools, taken)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil || got != pfx(tc.want) {
				t.Fatalf("ChooseSubnet = %v, %v; want %s", got, err, tc.want)
			}
		})
	}
}

func TestParseSubnet(t *testing.T) {
	tests := []struct {
		subnet, gw   string
		wantP, wantG string
		err          error
	}{
		{"192.168.50.0/24", "", "192.168.50.0/24", "192.168.50.1", nil},
		{"192.168.50.7/24", "", "192.168.50.0/24", "192.168.50.1", nil},
		{"192.168.50.0/24", "192.168.50.254", "192.168.50.0/24", "192.168.50.254", nil},
		{"192.168.50.0/24", "192.168.50.255", "", "", ErrInvalid},
		{"192.168.50.0/24", "10.0.0.1", "", "", ErrInvalid},
		{"192.168.50.0/31", "", "", "", ErrInvalid},
		{"fd00::/64", "", "", "", ErrInvalid},
		{"nonsense", "", "", "", ErrInvalid},
	}
	for _, tc := range tests {
		p, g, err := ParseSubnet(tc.subnet, tc.gw)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("ParseSubnet(%q,%q) err = %v, want %v", tc.subnet, tc.gw, err, tc.err)
			}
			continue
		}
		if err != nil || p != pfx(tc.wantP) || g != addr(tc.wantG) {
			t.Errorf("ParseSubnet(%q,%q) = %v %v %v", tc.subnet, tc.gw, p, g, err)
		}
	}
}

func TestAllocateIP(t *testing.T) {
	sub := pfx("10.89.3.0/29") // hosts .1-.6, gateway .1
	gw := addr("10.89.3.1")
	used := func(ss ...string) map[netip.Addr]bool {
		m := map[netip.Addr]bool{}
		for _, s := range ss {
			m[addr(s)] = true
		}
		return m
	}
	tests := []struct {
		name      string
		used      map[netip.Addr]bool
		last, req string
		want      string
		err       error
	}{
		{"first after gateway", nil, "", "", "10.89.3.2", nil},
		{"after last", used("10.89.3.2"), "10.89.3.2", "", "10.89.3.3", nil},
		{"released not reused at once", nil, "10.89.3.2", "", "10.89.3.3", nil},
		{"wraps around past broadcast", used("10.89.3.2"), "10.89.3.6", "", "10.89.3.3", nil},
		{"skips used", used("10.89.3.3", "10.89.3.4"), "10.89.3.2", "", "10.89.3.5", nil},
		{"full", used("10.89.3.2", "10.89.3.3", "10.89.3.4", "10.89.3.5", "10.89.3.6"), "", "", "", ErrExhausted},
		{"static", nil, "", "10.89.3.5", "10.89.3.5", nil},
		{"static in use", used("10.89.3.5"), "", "10.89.3.5", "", ErrConflict},
		{"static is gateway", nil, "", "10.89.3.1", "", ErrConflict},
		{"static outside", nil, "", "10.89.4.5", "", ErrInvalid},
		{"static broadcast", nil, "", "10.89.3.7", "", ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var last, req netip.Addr
			if tc.last != "" {
				last = addr(tc.last)
			}
			if tc.req != "" {
				req = addr(tc.req)
			}
			got, err := AllocateIP(sub, gw, tc.used, last, req)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil || got != addr(tc.want) {
				t.Fatalf("AllocateIP = %v, %v; want %s", got, err, tc.want)
			}
		})
	}
}

func TestBridgeName(t *testing.T) {
	a := BridgeName("shop_default", nil)
	if len(a) > 15 || a[:3] != "stk" {
		t.Fatalf("BridgeName = %q", a)
	}
	if BridgeName("shop_default", nil) != a {
		t.Fatal("BridgeName not deterministic")
	}
	b := BridgeName("shop_default", func(s string) bool { return s == a })
	if b == a || len(b) > 15 {
		t.Fatalf("collision not avoided: %q", b)
	}
	if v := vethName("n", "0123456789abcdef0123456789abcdef", nil); len(v) > 15 {
		t.Fatalf("veth name %q too long", v)
	}
}

func TestMACFor(t *testing.T) {
	if got := MACFor(addr("10.89.0.2")); got != "02:53:0a:59:00:02" {
		t.Fatalf("MACFor = %s", got)
	}
}
