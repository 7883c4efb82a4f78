package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// attach makes the veth pair of a: the host side (a.HostVeth) enslaved to the bridge and up; the
// peer created directly inside the container's namespace under its final name (one
// RTM_NEWLINK with the peer's namespace fd: no window where it sits on the host under a
// temporary name), with the MAC derived from its address, the address, up, loopback up and the
// default route via the gateway unless the network is internal or a route exists already (the
// container's first network provides it, as in Docker).
func (l *linuxHost) attach(n *Network, a *Attachment) error {
	h, err := l.handle()
	if err != nil {
		return err
	}
	defer h.Close()
	ns, err := netns.GetFromPath(a.NetNS)
	if err != nil {
		return fmt.Errorf("open container netns %s: %w", a.NetNS, err)
	}
	defer ns.Close()
	ch, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink handle in container netns %s: %w", a.NetNS, err)
	}
	defer ch.Close()

	if a.IfName == "" {
		if a.IfName, err = freeEthName(ch); err != nil {
			return err
		}
	}
	br, err := h.LinkByName(n.Bridge)
	if err != nil {
		return fmt.Errorf("look up bridge %s: %w", n.Bridge, err)
	}
	mac, err := net.ParseMAC(a.MAC)
	if err != nil {
		return fmt.Errorf("mac %q: %w", a.MAC, err)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = a.HostVeth
	attrs.MTU = br.Attrs().MTU
	attrs.MasterIndex = br.Attrs().Index
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: a.IfName, PeerHardwareAddr: mac,
		PeerNamespace: netlink.NsFd(int(ns)), PeerMTU: uint32(br.Attrs().MTU)}
	if err := h.LinkAdd(veth); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create veth %s with peer %s in %s: a link of that name exists: %w", a.HostVeth, a.IfName, a.NetNS, ErrConflict)
		}
		return fmt.Errorf("create veth %s with peer %s in %s: %w", a.HostVeth, a.IfName, a.NetNS, err)
	}
	hostSide, err := h.LinkByName(a.HostVeth)
	if err != nil {
		return fmt.Errorf("look up veth %s: %w", a.HostVeth, err)
	}
	// Hairpin: a container reaching its own published port through a host address is DNATed
	// back to itself; br_netfilter then bridges the frame out of the port it came in by, which
	// a bridge port only allows in hairpin mode (Docker sets it too when it runs without a
	// userland proxy).
	if err := h.LinkSetHairpin(hostSide, true); err != nil {
		return fmt.Errorf("set hairpin mode on veth %s: %w", a.HostVeth, err)
	}
	if err := h.LinkSetUp(hostSide); err != nil {
		return fmt.Errorf("bring up veth %s: %w", a.HostVeth, err)
	}

	peer, err := ch.LinkByName(a.IfName)
	if err != nil {
		return fmt.Errorf("look up %s in %s: %w", a.IfName, a.NetNS, err)
	}
	addr := &netlink.Addr{IPNet: prefixIPNet(a.IPv4, n.Subnet.Bits())}
	if err := ch.AddrAdd(peer, addr); err != nil {
		return fmt.Errorf("set address %s on %s in %s: %w", addr.IPNet, a.IfName, a.NetNS, err)
	}
	if err := ch.LinkSetUp(peer); err != nil {
		return fmt.Errorf("bring up %s in %s: %w", a.IfName, a.NetNS, err)
	}
	if lo, err := ch.LinkByName("lo"); err == nil {
		if err := ch.LinkSetUp(lo); err != nil {
			return fmt.Errorf("bring up lo in %s: %w", a.NetNS, err)
		}
	}
	if a.Gateway.IsValid() {
		r := &netlink.Route{LinkIndex: peer.Attrs().Index, Gw: net.IP(a.Gateway.AsSlice())}
		if err := ch.RouteAdd(r); err != nil {
			if !errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("add default route via %s in %s: %w", a.Gateway, a.NetNS, err)
			}
			a.Gateway = netip.Addr{} // another network provides the default route
		}
	}
	return nil
}

// freeEthName returns the first ethN not present in the container's namespace.
func freeEthName(ch *netlink.Handle) (string, error) {
	links, err := ch.LinkList()
	if err != nil {
		return "", fmt.Errorf("list links in container netns: %w", err)
	}
	used := map[int]bool{}
	for _, l := range links {
		if s, ok := strings.CutPrefix(l.Attrs().Name, "eth"); ok {
			if i, err := strconv.Atoi(s); err == nil {
				used[i] = true
			}
		}
	}
	for i := 0; ; i++ {
		if !used[i] {
			return "eth" + strconv.Itoa(i), nil
		}
	}
}

// detach deletes the host side of the pair; the kernel deletes the peer with it. A pair that is
// already gone (its namespace died with the container) is not an error.
func (l *linuxHost) detach(a *Attachment) error {
	return l.deleteLink(a.HostVeth, "veth")
}
