// Package enginenet implements engine.Networks on top of network.Manager: it turns the engine's
// project and spec view (networks by key, a service's networks, aliases, ports, dns and
// extra_hosts) into Manager calls. It owns no state of its own and is used only where the
// engine is wired up (cmd/stack); package network itself knows nothing of the engine.
package enginenet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/stackrun/stack/engine"
	"github.com/stackrun/stack/network"
	"github.com/stackrun/stack/planner"
	"github.com/stackrun/stack/spec"
)

// Networks is the engine's view of the network Manager.
type Networks struct {
	M *network.Manager
	// Stack holds the project's top-level networks by key; it names networks declared with
	// name: or external. Keys it lacks are `<project>_<key>`.
	Stack map[string]*spec.Network
	// NameFiles returns where a container's hosts and resolv.conf are on the host (the files
	// the runtime config bind-mounts). Nil: Attach writes no name files.
	NameFiles func(containerID string) (hosts, resolv string)
	// Hold receives the sockets reserving a container's published host ports; the caller keeps
	// them open while the container runs (e.g. hands them to its monitor). Nil: they are closed
	// and the reservation rests on the records alone (see network.Published).
	Hold func(containerID string, files []*os.File)
}

var _ engine.Networks = (*Networks)(nil)

// List returns the project's networks.
func (n *Networks) List(ctx context.Context, project string) ([]planner.Network, error) {
	nets, err := n.M.ListProject(project)
	if err != nil {
		return nil, err
	}
	out := make([]planner.Network, 0, len(nets))
	for _, x := range nets {
		out = append(out, planner.Network{Key: x.Key, Name: x.Name})
	}
	return out, nil
}

// Ensure creates the network (bridge, subnet, firewall) or checks an external one exists.
func (n *Networks) Ensure(ctx context.Context, project string, sn *spec.Network) error {
	_, err := n.M.EnsureNetwork(ctx, network.SpecFor(project, sn))
	return err
}

// Remove deletes a network of the project; external networks are left alone.
func (n *Networks) Remove(ctx context.Context, project string, sn *spec.Network) error {
	if sn.External {
		return nil
	}
	return n.M.RemoveOwned(ctx, project, network.SpecFor(project, sn).Name)
}

// ContainerName is the name peers resolve a container by: container_name, or
// <project>-<service>-<number> as Compose names it.
func ContainerName(project string, svc *spec.Service, number int) string {
	if svc.ContainerName != "" {
		return svc.ContainerName
	}
	return fmt.Sprintf("%s-%s-%d", project, svc.Name, number)
}

// Attach joins the container (by its init's network namespace) to each of its service's
// networks and writes its name files. On failure it leaves the container attached to nothing.
func (n *Networks) Attach(ctx context.Context, project string, e engine.Endpoint) error {
	if e.NetNS == "" {
		return fmt.Errorf("attach container %s: no network namespace: %w", e.ContainerID, engine.ErrInvalid)
	}
	labels := map[string]string{
		engine.LabelProject: project,
		engine.LabelService: e.Service.Name,
		engine.LabelNumber:  strconv.Itoa(e.Number),
	}
	name := e.Name
	if name == "" {
		name = ContainerName(project, e.Service, e.Number)
	}
	reqs, err := network.AttachRequests(project, n.Stack, e.Service, name, labels)
	if err != nil {
		return err
	}
	netns := e.NetNS
	for _, r := range reqs {
		if _, err := n.M.Attach(ctx, r.Network, e.ContainerID, netns, r.Options); err != nil {
			return errors.Join(err, n.Detach(ctx, project, e.ContainerID))
		}
	}
	if n.NameFiles == nil {
		return nil
	}
	hosts, resolv := n.NameFiles(e.ContainerID)
	hostname := e.ContainerID
	if len(hostname) > 12 {
		hostname = hostname[:12] // Docker's default hostname: the short container id
	}
	nf, err := network.NameFilesFor(e.Service, hostname, hosts, resolv)
	if err == nil {
		err = n.M.WriteNameFiles(e.ContainerID, nf)
	}
	if err != nil {
		return errors.Join(err, n.Detach(ctx, project, e.ContainerID))
	}
	return nil
}

// Publish reserves and publishes the container's ports. Publishing what is already published
// for the container (same bindings requested) does nothing.
func (n *Networks) Publish(ctx context.Context, project string, e engine.Endpoint) error {
	want, err := network.PortBindings(e.Service)
	if err != nil {
		return err
	}
	have, err := n.M.Bindings(e.ContainerID)
	if err != nil {
		return err
	}
	if samePorts(want, have) {
		return nil
	}
	if len(have) > 0 {
		if err := n.M.UnpublishPorts(ctx, e.ContainerID); err != nil {
			return err
		}
	}
	if len(want) == 0 {
		return nil
	}
	pub, err := n.M.PublishPorts(ctx, e.ContainerID, want)
	if err != nil {
		return err
	}
	if n.Hold != nil {
		n.Hold(e.ContainerID, pub.Files)
		return nil
	}
	return pub.Close()
}

// samePorts reports whether the recorded bindings are what the service asks for (a random host
// port matches whatever port was chosen).
func samePorts(want, have []network.PortBinding) bool {
	if len(want) != len(have) {
		return false
	}
	used := make([]bool, len(have))
	for _, w := range want {
		found := false
		for i, h := range have {
			if !used[i] && h.ContainerPort == w.ContainerPort && h.Protocol == w.Protocol && h.HostIP == w.HostIP &&
				(w.HostPort == 0 || w.HostPort == h.HostPort) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Detach releases the container's ports, interfaces and addresses on every network.
func (n *Networks) Detach(ctx context.Context, project string, containerID string) error {
	errs := []error{n.M.UnpublishPorts(ctx, containerID)}
	ats, err := n.M.Attachments(containerID)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, a := range ats {
		errs = append(errs, n.M.Detach(ctx, a.Network, containerID))
	}
	return errors.Join(errs...)
}

// Reconcile frees what containers that no longer exist still hold (after a kill -9): call it
// when observing, with the ids of every container that exists on the host.
func (n *Networks) Reconcile(ctx context.Context, live map[string]bool) error {
	return n.M.Reconcile(ctx, live)
}
