package network

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// linuxHost does the kernel work of a Manager in the namespace netns ("" is the caller's).
type linuxHost struct {
	netns    string
	stateDir string
	log      *slog.Logger
	table    string // nftables table name (Manager.table)
}

func (l *linuxHost) handle() (*netlink.Handle, error) { return handleAt(l.netns) }

// prefixes returns the host's IPv4 addresses (as their networks) and the destinations of its
// main-table routes, except the default route: a new subnet must overlap none of them.
func (l *linuxHost) prefixes() ([]netip.Prefix, error) {
	h, err := l.handle()
	if err != nil {
		return nil, err
	}
	defer h.Close()
	var out []netip.Prefix
	addrs, err := h.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		if p, ok := ipNetPrefix(a.IPNet); ok {
			out = append(out, p.Masked())
		}
	}
	routes, err := h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	for _, r := range routes {
		if p, ok := ipNetPrefix(r.Dst); ok && p.Bits() > 0 {
			out = append(out, p.Masked())
		}
	}
	return out, nil
}

func ipNetPrefix(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}

func prefixIPNet(a netip.Addr, bits int) *net.IPNet {
	return &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(bits, 32)}
}

func isLinkNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}

func (l *linuxHost) linkExists(name string) (bool, error) {
	h, err := l.handle()
	if err != nil {
		return false, err
	}
	defer h.Close()
	_, err = h.LinkByName(name)
	if isLinkNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up link %s: %w", name, err)
	}
	return true, nil
}

// ensureBridge makes the network's bridge exist with its gateway address and be up. It is
// idempotent and refuses to adopt a link of the same name that is not a bridge.
//
// route_localnet is turned on for this bridge only (net.ipv4.conf.<bridge>.route_localnet, the
// bridge is ours and the setting goes away with it): connections the host makes to 127.0.0.1 on
// a published port are DNATed to a container, and the kernel drops packets with a loopback
// source leaving a non-loopback interface unless that interface allows it. The postrouting
// chain masquerades them to the bridge address and the guard chain drops packets arriving from
// containers for 127.0.0.0/8 (see BuildTable). This is what Docker does with userland-proxy off;
// it avoids a proxy process per published port.
func (l *linuxHost) ensureBridge(n *Network) error {
	h, err := l.handle()
	if err != nil {
		return err
	}
	defer h.Close()
	link, err := h.LinkByName(n.Bridge)
	switch {
	case isLinkNotFound(err):
		attrs := netlink.NewLinkAttrs()
		attrs.Name = n.Bridge
		if n.MTU > 0 {
			attrs.MTU = n.MTU
		}
		br := &netlink.Bridge{LinkAttrs: attrs}
		if err := h.LinkAdd(br); err != nil {
			return fmt.Errorf("create bridge %s: %w", n.Bridge, err)
		}
		if link, err = h.LinkByName(n.Bridge); err != nil {
			return fmt.Errorf("look up bridge %s: %w", n.Bridge, err)
		}
	case err != nil:
		return fmt.Errorf("look up bridge %s: %w", n.Bridge, err)
	case link.Type() != "bridge":
		return fmt.Errorf("link %s exists and is a %s, not stack's bridge: %w", n.Bridge, link.Type(), ErrConflict)
	}
	addr := &netlink.Addr{IPNet: prefixIPNet(n.Gateway, n.Subnet.Bits())}
	if err := h.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("set address %s on bridge %s: %w", addr.IPNet, n.Bridge, err)
	}
	if err := doInNetNS(l.netns, func() error {
		return writeSysctl("net.ipv4.conf."+n.Bridge+".route_localnet", "1")
	}); err != nil {
		return fmt.Errorf("enable route_localnet on bridge %s: %w", n.Bridge, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("bring up bridge %s: %w", n.Bridge, err)
	}
	return nil
}

func (l *linuxHost) deleteBridge(n *Network) error {
	return l.deleteLink(n.Bridge, "bridge")
}

func (l *linuxHost) deleteLink(name, want string) error {
	h, err := l.handle()
	if err != nil {
		return err
	}
	defer h.Close()
	link, err := h.LinkByName(name)
	if isLinkNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up %s %s: %w", want, name, err)
	}
	if link.Type() != want {
		return fmt.Errorf("link %s is a %s, not stack's %s: left alone: %w", name, link.Type(), want, ErrConflict)
	}
	if err := h.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete %s %s: %w", want, name, err)
	}
	return nil
}
