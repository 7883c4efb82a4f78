package network

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// host is the privileged half of the Manager: everything that touches the kernel. The real
// implementation is linuxHost; unit tests use a fake so the record keeping needs no root.
type host interface {
	prefixes() ([]netip.Prefix, error)
	linkExists(name string) (bool, error)
	ensureBridge(n *Network) error
	deleteBridge(n *Network) error
	attach(n *Network, a *Attachment) error
	detach(a *Attachment) error
	applyFirewall(t *Table) error // nil: remove stack's table
}

func (m *Manager) readHostPrefixes() ([]netip.Prefix, error) { return m.hostOps().prefixes() }

// EnsureNetwork makes sure the network exists: record, bridge with its gateway address, up, and
// the firewall table. It is idempotent; an existing network must match spec.
func (m *Manager) EnsureNetwork(ctx context.Context, spec Spec) (*Network, error) {
	if err := checkName("network", spec.Name); err != nil {
		return nil, err
	}
	l, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	h := m.hostOps()

	n, err := m.loadNetwork(spec.Name)
	switch {
	case err == nil && spec.External:
		return n, nil // not ours to change
	case err == nil:
		if err := compatible(n, spec); err != nil {
			return nil, err
		}
		// The bridge is gone after a reboot or an outside `ip link del`: make it again.
		if err := h.ensureBridge(n); err != nil {
			return nil, fmt.Errorf("ensure network %s: %w", n.Name, err)
		}
		return n, m.applyFirewallLocked(h)
	case !errors.Is(err, ErrNotFound):
		return nil, err
	case spec.External:
		return nil, fmt.Errorf("external network %s: %w (create it with `stack network create %s`)", spec.Name, err, spec.Name)
	}

	all, err := m.loadAll()
	if err != nil {
		return nil, err
	}
	var hostPrefixes []netip.Prefix
	if spec.Subnet == "" {
		if hostPrefixes, err = m.hostPrefixes(); err != nil {
			return nil, fmt.Errorf("create network %s: read host routes: %w", spec.Name, err)
		}
		hostPrefixes = append(hostPrefixes, nameserverPrefixes(m.resolvConf)...)
	}
	var linkErr error
	exists := func(name string) bool {
		ok, err := h.linkExists(name)
		linkErr = errors.Join(linkErr, err)
		return ok
	}
	n, err = newNetworkRecord(spec, m.pools, hostPrefixes, all, exists, m.now())
	if err != nil {
		return nil, err
	}
	if linkErr != nil {
		return nil, fmt.Errorf("create network %s: %w", spec.Name, linkErr)
	}
	// Record first: a crash between here and the bridge leaves a record that the next
	// EnsureNetwork completes or RemoveNetwork deletes, never an unrecorded bridge.
	if err := m.saveNetwork(n); err != nil {
		return nil, err
	}
	if err := h.ensureBridge(n); err != nil {
		err = fmt.Errorf("create network %s: %w", n.Name, err)
		return nil, errors.Join(err, h.deleteBridge(n), m.deleteNetworkRecord(n.Name))
	}
	if err := m.applyFirewallLocked(h); err != nil {
		return nil, err
	}
	m.log.Info("network created", "network", n.Name, "bridge", n.Bridge, "subnet", n.Subnet)
	return n, nil
}

func compatible(n *Network, spec Spec) error {
	if spec.Subnet != "" {
		p, gw, err := ParseSubnet(spec.Subnet, spec.Gateway)
		if err != nil {
			return fmt.Errorf("network %s: %w", spec.Name, err)
		}
		if p != n.Subnet || gw != n.Gateway {
			return fmt.Errorf("network %s exists with subnet %s gateway %s, not %s %s: %w", n.Name, n.Subnet, n.Gateway, p, gw, ErrConflict)
		}
	}
	if spec.Internal != n.Internal {
		return fmt.Errorf("network %s exists with internal=%v: %w", n.Name, n.Internal, ErrConflict)
	}
	return nil
}

// RemoveNetwork deletes the bridge and the record of a network no container is attached to.
// A missing network is not an error.
func (m *Manager) RemoveNetwork(ctx context.Context, name string) error {
	l, err := m.lock()
	if err != nil {
		return err
	}
	defer l.Unlock()
	n, err := m.loadNetwork(name)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(n.Attachments) > 0 {
		ids := make([]string, 0, len(n.Attachments))
		for id := range n.Attachments {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		return fmt.Errorf("remove network %s: still attached: %s: %w", name, strings.Join(ids, ", "), ErrConflict)
	}
	h := m.hostOps()
	if err := h.deleteBridge(n); err != nil {
		return fmt.Errorf("remove network %s: %w", name, err)
	}
	if err := m.deleteNetworkRecord(name); err != nil {
		return err
	}
	m.log.Info("network removed", "network", name, "bridge", n.Bridge)
	return m.applyFirewallLocked(h)
}

// Attach connects a container, given by the path of its network namespace, to a network:
// address allocated and recorded, veth pair made (the peer inside the namespace, renamed to
// opts.IfName), address, MAC, loopback and default route set inside. Attaching a container that
// is already attached with the same namespace returns the existing attachment.
func (m *Manager) Attach(ctx context.Context, network, containerID, netnsPath string, opts AttachOptions) (*Attachment, error) {
	if containerID == "" || netnsPath == "" {
		return nil, fmt.Errorf("attach to network %s: container id and netns path are required: %w", network, ErrInvalid)
	}
	l, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	n, err := m.loadNetwork(network)
	if err != nil {
		return nil, fmt.Errorf("attach container %s: %w", containerID, err)
	}
	h := m.hostOps()
	if old, ok := n.Attachments[containerID]; ok {
		if old.NetNS == netnsPath {
			if ok, err := h.linkExists(old.HostVeth); err == nil && ok {
				return old, nil
			}
		}
		// A stale record (the container was recreated, or its namespace died): release it.
		if err := h.detach(old); err != nil {
			return nil, fmt.Errorf("attach container %s to network %s: release stale attachment: %w", containerID, network, err)
		}
		delete(n.Attachments, containerID)
	}
	ip, err := allocate(n, containerID, opts)
	if err != nil {
		return nil, err
	}
	all, err := m.loadAll()
	if err != nil {
		return nil, err
	}
	vethTaken := map[string]bool{}
	for _, o := range all {
		for _, a := range o.Attachments {
			vethTaken[a.HostVeth] = true
		}
	}
	ifName := opts.IfName
	if ifName == "" {
		ifName = nextIfName(attachmentsOf(all, containerID))
	}
	// The veth name is a hash of network and container; a foreign link of the same name makes
	// the kernel refuse the pair (EEXIST), reported as a conflict.
	a := &Attachment{
		Network: n.Name, ContainerID: containerID, NetNS: netnsPath, IfName: ifName,
		HostVeth: vethName(n.Name, containerID, func(s string) bool { return vethTaken[s] }),
		IPv4:     ip, MAC: MACFor(ip), Name: opts.Name, Aliases: opts.Aliases, Labels: opts.Labels,
		Created: m.now().UTC(),
	}
	if !n.Internal {
		a.Gateway = n.Gateway
	}
	// The bridge may be gone (reboot); attaching re-creates it rather than failing.
	if ok, err := h.linkExists(n.Bridge); err != nil || !ok {
		if err := h.ensureBridge(n); err != nil {
			return nil, fmt.Errorf("attach container %s: network %s: %w", containerID, network, err)
		}
	}
	// Record the allocation before making the pair: after a crash Reconcile frees it.
	n.Attachments[containerID] = a
	n.LastIP = ip
	if err := m.saveNetwork(n); err != nil {
		return nil, err
	}
	if err := h.attach(n, a); err != nil {
		err = fmt.Errorf("attach container %s to network %s: %w", containerID, network, err)
		delete(n.Attachments, containerID)
		return nil, errors.Join(err, h.detach(a), m.saveNetwork(n))
	}
	if a.Gateway != n.Gateway && !n.Internal { // another network provides the default route
		if err := m.saveNetwork(n); err != nil {
			return nil, errors.Join(err, h.detach(a))
		}
	}
	m.log.Debug("container attached", "network", n.Name, "container", containerID, "ip", ip, "if", a.IfName)
	m.refreshHostsLocked(append(peersOf(append(all, n), containerID), containerID))
	return a, nil
}

// nextIfName returns the first ethN that none of the container's recorded attachments uses:
// the container's namespace is stack's, so the records know its interfaces.
func nextIfName(existing []*Attachment) string {
	used := map[string]bool{}
	for _, a := range existing {
		used[a.IfName] = true
	}
	for i := 0; ; i++ {
		if name := fmt.Sprintf("eth%d", i); !used[name] {
			return name
		}
	}
}

// Detach removes a container's interface on a network and releases its address and its port
// bindings on that network. Detaching what is not attached is not an error.
func (m *Manager) Detach(ctx context.Context, network, containerID string) error {
	l, err := m.lock()
	if err != nil {
		return err
	}
	defer l.Unlock()
	n, err := m.loadNetwork(network)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	a, ok := n.Attachments[containerID]
	if !ok {
		return nil
	}
	h := m.hostOps()
	if err := h.detach(a); err != nil {
		return fmt.Errorf("detach container %s from network %s: %w", containerID, network, err)
	}
	peers := []string{containerID}
	for id := range n.Attachments {
		peers = append(peers, id)
	}
	delete(n.Attachments, containerID)
	if err := m.saveNetwork(n); err != nil {
		return err
	}
	m.refreshHostsLocked(peers)
	changed, err := m.dropBindings(func(b PortBinding) bool { return b.ContainerID == containerID && b.Network == network })
	if err != nil {
		return err
	}
	if changed {
		return m.applyFirewallLocked(h)
	}
	return nil
}

// Peers returns the ids of the containers that share at least one network with containerID
// (sorted, without containerID). After an attach or detach the engine rewrites the hosts file
// of each of them (HostsFile) so existing containers keep resolving a recreated peer.
func (m *Manager) Peers(containerID string) ([]string, error) {
	all, err := m.loadAll()
	if err != nil {
		return nil, err
	}
	return peersOf(all, containerID), nil
}

func peersOf(all []*Network, containerID string) []string {
	seen := map[string]bool{}
	for _, n := range all {
		if _, ok := n.Attachments[containerID]; !ok {
			continue
		}
		for id := range n.Attachments {
			if id != containerID {
				seen[id] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for id := range seen {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// Reconcile frees everything held for containers not in live: their host veths (if the
// namespace died with the container, the kernel removed the pair already), their addresses and
// their published ports. Run it after a kill -9 of anything, before planning.
func (m *Manager) Reconcile(ctx context.Context, live map[string]bool) error {
	l, err := m.lock()
	if err != nil {
		return err
	}
	defer l.Unlock()
	all, err := m.loadAll()
	if err != nil {
		return err
	}
	h := m.hostOps()
	var errs []error
	dirty := map[string]*Network{}
	stale := staleAttachments(all, live)
	for _, a := range stale {
		if err := h.detach(a); err != nil {
			errs = append(errs, fmt.Errorf("reconcile: detach stale container %s from %s: %w", a.ContainerID, a.Network, err))
			continue
		}
		for _, n := range all {
			if n.Name == a.Network {
				delete(n.Attachments, a.ContainerID)
				dirty[n.Name] = n
			}
		}
		m.log.Info("released address of a container that no longer exists", "network", a.Network, "container", a.ContainerID, "ip", a.IPv4)
	}
	var touched []string
	for _, n := range dirty {
		errs = append(errs, m.saveNetwork(n))
		for id := range n.Attachments {
			touched = append(touched, id)
		}
	}
	for _, a := range stale {
		touched = append(touched, a.ContainerID)
	}
	m.refreshHostsLocked(touched)
	if _, err := m.dropBindings(func(b PortBinding) bool { return !live[b.ContainerID] }); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, m.applyFirewallFrom(h, all)) // all holds what was just saved
	return errors.Join(errs...)
}

// applyFirewallLocked rebuilds stack's nftables table from the records (the caller holds the
// lock) and applies it in one transaction; with no network and no binding the table is removed.
func (m *Manager) applyFirewallLocked(h host) error {
	all, err := m.loadAll()
	if err != nil {
		return err
	}
	return m.applyFirewallFrom(h, all)
}

// applyFirewallFrom is applyFirewallLocked with the network records already loaded.
func (m *Manager) applyFirewallFrom(h host, all []*Network) error {
	bs, err := m.loadBindings()
	if err != nil {
		return err
	}
	if err := h.applyFirewall(BuildTable(all, bs)); err != nil {
		return fmt.Errorf("apply nftables table %s: %w", m.table, err)
	}
	return nil
}
