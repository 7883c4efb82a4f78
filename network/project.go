package network

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/stackrun/stack/spec"
)

// The engine works per project and from spec types; these map its view onto the Manager. A
// network belongs to the project recorded when it was created, never to whoever guesses its
// name.

// NetworkName is the actual name of the network a project declares under key:
// `<project>_<key>`, as Compose names it.
func NetworkName(project, key string) string {
	if project == "" {
		return key
	}
	return project + "_" + key
}

// SpecFor is the Spec of a top-level network of project. An external network is not recorded
// as the project's: `down` must not remove it, and EnsureNetwork only checks it exists.
func SpecFor(project string, n *spec.Network) Spec {
	sp := Spec{Project: project, Key: n.Key, Name: n.Name, Subnet: n.Subnet, Gateway: n.Gateway,
		Internal: n.Internal, Labels: n.Labels, External: n.External}
	if sp.Name == "" {
		sp.Name = NetworkName(project, n.Key)
	}
	if n.External {
		sp.Project = ""
	}
	return sp
}

// ListProject returns the networks recorded as project's, by name.
func (m *Manager) ListProject(project string) ([]*Network, error) {
	all, err := m.loadAll()
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(n *Network) bool { return n.Project != project }), nil
}

// RemoveOwned removes network name for project (`down`): one that is not recorded as the
// project's (external, or another project's) is refused with ErrInvalid; a missing one is not
// an error.
func (m *Manager) RemoveOwned(ctx context.Context, project, name string) error {
	n, err := m.loadNetwork(name)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if n.Project != project {
		owner := "no project (external)"
		if n.Project != "" {
			owner = "project " + n.Project
		}
		return fmt.Errorf("remove network %s for project %s: it belongs to %s: %w", name, project, owner, ErrInvalid)
	}
	return m.RemoveNetwork(ctx, name)
}

// AttachRequest is one network a container joins, with its options.
type AttachRequest struct {
	Network string
	Options AttachOptions
}

// AttachRequests lists the attachments of one container of svc, in the order of the network
// keys (eth0 is the first): aliases are the service name then the network's aliases, the name
// is the container name, the address the static ipv4_address if any. stackNets maps keys to the
// top-level networks (for their actual names). A service with network_mode none gets none.
func AttachRequests(project string, stackNets map[string]*spec.Network, svc *spec.Service, containerName string, labels map[string]string) ([]AttachRequest, error) {
	if svc.NetworkMode == "none" {
		return nil, nil
	}
	keys := make([]string, 0, len(svc.Networks))
	for k := range svc.Networks {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []AttachRequest
	for i, k := range keys {
		name := NetworkName(project, k)
		if n := stackNets[k]; n != nil {
			name = SpecFor(project, n).Name
		}
		o := AttachOptions{IfName: fmt.Sprintf("eth%d", i), Name: containerName, Aliases: []string{svc.Name}, Labels: labels}
		if sn := svc.Networks[k]; sn != nil {
			o.Aliases = append(o.Aliases, sn.Aliases...)
			if sn.IPv4Address != "" {
				a, err := netip.ParseAddr(sn.IPv4Address)
				if err != nil || !a.Is4() {
					return nil, fmt.Errorf("service %s: network %s: ipv4_address %q: %w", svc.Name, k, sn.IPv4Address, ErrInvalid)
				}
				o.IPv4 = a
			}
		}
		out = append(out, AttachRequest{Network: name, Options: o})
	}
	return out, nil
}

// PortBindings converts a service's ports: to bindings (HostPort 0: a random host port).
func PortBindings(svc *spec.Service) ([]PortBinding, error) {
	var out []PortBinding
	for _, p := range svc.Ports {
		b := PortBinding{HostPort: p.Published, ContainerPort: p.Target, Protocol: p.Protocol}
		if b.Protocol == "" {
			b.Protocol = "tcp"
		}
		if p.HostIP != "" {
			a, err := netip.ParseAddr(p.HostIP)
			if err != nil {
				return nil, fmt.Errorf("service %s: port %d: host ip %q: %w", svc.Name, p.Target, p.HostIP, ErrInvalid)
			}
			if a.Is6() && !a.Is4In6() {
				continue // IPv6 publishing is not supported; Compose's "::" duplicates of "0.0.0.0" are dropped
			}
			b.HostIP = a.Unmap()
		}
		if err := b.validate(); err != nil {
			return nil, fmt.Errorf("service %s: %w", svc.Name, err)
		}
		out = append(out, b)
	}
	return out, nil
}

// NameFilesFor fills the naming options of a container of svc: hostname is the service's
// hostname: or else the given default (Docker uses the short container id); domainname,
// extra_hosts, dns, dns_search and dns_opt from the service.
func NameFilesFor(svc *spec.Service, hostname, hostsPath, resolvPath string) (NameFiles, error) {
	f := NameFiles{Hosts: hostsPath, Resolv: resolvPath,
		HostsOptions:  HostsOptions{Hostname: hostname, Domainname: svc.Domainname},
		ResolvOptions: ResolvOptions{DNS: svc.DNS, Search: svc.DNSSearch, Options: svc.DNSOptions}}
	if svc.Hostname != "" {
		f.HostsOptions.Hostname = svc.Hostname
	}
	for _, e := range svc.ExtraHosts {
		a, err := netip.ParseAddr(e.IP)
		if err != nil {
			return NameFiles{}, fmt.Errorf("service %s: extra_hosts %s: address %q: %w", svc.Name, e.Host, e.IP, ErrInvalid)
		}
		f.HostsOptions.ExtraHosts = append(f.HostsOptions.ExtraHosts, HostEntry{IP: a, Names: []string{e.Host}})
	}
	return f, nil
}
