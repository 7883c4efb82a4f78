package network

import (
	"fmt"
	"net/netip"
)

// Pool is address space stack carves network subnets from: Prefix split into subnets of Bits.
type Pool struct {
	Prefix netip.Prefix
	Bits   int
}

// DefaultPools are tried in order when a network does not name its subnet: 10.89.0.0/16 in /24s
// (the range podman uses), then 172.28.0.0/14 in /24s (beside Docker's 172.17-172.27 defaults).
var DefaultPools = []Pool{
	{Prefix: netip.MustParsePrefix("10.89.0.0/16"), Bits: 24},
	{Prefix: netip.MustParsePrefix("172.28.0.0/14"), Bits: 24},
}

// ChooseSubnet returns the first subnet of the pools that overlaps none of taken (host routes,
// host addresses and the subnets of other stack networks).
func ChooseSubnet(pools []Pool, taken []netip.Prefix) (netip.Prefix, error) {
	for _, p := range pools {
		if !p.Prefix.Addr().Is4() || p.Bits < p.Prefix.Bits() || p.Bits > 30 {
			return netip.Prefix{}, fmt.Errorf("address pool %s/%d: %w", p.Prefix, p.Bits, ErrInvalid)
		}
		base := p.Prefix.Masked()
		n := uint64(1) << (p.Bits - p.Prefix.Bits())
		step := uint32(1) << (32 - p.Bits)
		start := addrToU32(base.Addr())
		for i := uint64(0); i < n; i++ {
			cand := netip.PrefixFrom(u32ToAddr(start+uint32(i)*step), p.Bits)
			if !overlapsAny(cand, taken) {
				return cand, nil
			}
		}
	}
	return netip.Prefix{}, fmt.Errorf("choose subnet from pools: %w", ErrExhausted)
}

func overlapsAny(p netip.Prefix, taken []netip.Prefix) bool {
	for _, t := range taken {
		if t.Addr().Is4() && t.Overlaps(p) {
			return true
		}
	}
	return false
}

// ParseSubnet validates a subnet and gateway from the stack file. An empty gateway means the
// first host address of the subnet, as Docker does.
func ParseSubnet(subnet, gateway string) (netip.Prefix, netip.Addr, error) {
	p, err := netip.ParsePrefix(subnet)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, netip.Addr{}, fmt.Errorf("subnet %q: not an IPv4 CIDR: %w", subnet, ErrInvalid)
	}
	if p.Bits() > 30 {
		return netip.Prefix{}, netip.Addr{}, fmt.Errorf("subnet %s: too small for a gateway and a container: %w", p, ErrInvalid)
	}
	p = p.Masked()
	if gateway == "" {
		return p, FirstHost(p), nil
	}
	gw, err := netip.ParseAddr(gateway)
	if err != nil || !usable(p, gw) {
		return netip.Prefix{}, netip.Addr{}, fmt.Errorf("gateway %q: not a host address of %s: %w", gateway, p, ErrInvalid)
	}
	return p, gw, nil
}

// FirstHost is the first address after the network address: the default gateway.
func FirstHost(p netip.Prefix) netip.Addr { return p.Masked().Addr().Next() }

func broadcast(p netip.Prefix) netip.Addr {
	return u32ToAddr(addrToU32(p.Masked().Addr()) | (1<<(32-p.Bits()) - 1))
}

// usable reports whether a is a host address of p (neither the network nor the broadcast address).
func usable(p netip.Prefix, a netip.Addr) bool {
	return a.Is4() && p.Contains(a) && a != p.Masked().Addr() && a != broadcast(p)
}

// AllocateIP picks a container address in subnet. A requested address (static ipv4_address) is
// checked and returned as is. Otherwise the scan starts after last, the previous allocation, and
// wraps around, so a released address is not handed out again at once: a recreated container
// gets a new address and peers holding a stale ARP entry or hosts file are not silently sent to
// a different container.
func AllocateIP(subnet netip.Prefix, gateway netip.Addr, used map[netip.Addr]bool, last, requested netip.Addr) (netip.Addr, error) {
	if requested.IsValid() {
		switch {
		case !usable(subnet, requested):
			return netip.Addr{}, fmt.Errorf("address %s: not a host address of %s: %w", requested, subnet, ErrInvalid)
		case requested == gateway:
			return netip.Addr{}, fmt.Errorf("address %s: is the gateway of %s: %w", requested, subnet, ErrConflict)
		case used[requested]:
			return netip.Addr{}, fmt.Errorf("address %s: already in use: %w", requested, ErrConflict)
		}
		return requested, nil
	}
	first := addrToU32(subnet.Masked().Addr()) + 1
	end := addrToU32(broadcast(subnet)) // exclusive
	size := end - first
	start := first
	if last.IsValid() && usable(subnet, last) {
		start = addrToU32(last) + 1
	}
	for i := uint32(0); i < size; i++ {
		c := start + i
		if c >= end {
			c = first + (c - end)
		}
		a := u32ToAddr(c)
		if a != gateway && !used[a] {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("allocate address in %s: %w", subnet, ErrExhausted)
}

// MACFor derives a container MAC address from its IPv4 address (locally administered, unicast),
// as Docker does, so a recreated container that gets an address back also gets the MAC that
// peers may still have cached.
func MACFor(a netip.Addr) string {
	b := a.As4()
	return fmt.Sprintf("02:53:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3])
}

func addrToU32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func u32ToAddr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
