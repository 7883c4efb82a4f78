package local

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/stackrun/stack/engine"
	"github.com/stackrun/stack/image"
	"github.com/stackrun/stack/network"
	"github.com/stackrun/stack/planner"
	"github.com/stackrun/stack/spec"
	"github.com/stackrun/stack/volumes"
)

// Networks implements engine.Networks with the network manager.
type Networks struct{ *Host }

var _ engine.Networks = Networks{}

func (n Networks) List(ctx context.Context, project string) ([]planner.Network, error) {
	all, err := n.Networks.List()
	if err != nil {
		return nil, err
	}
	var out []planner.Network
	for _, nw := range all {
		if nw.Project != project {
			continue
		}
		out = append(out, planner.Network{Key: nw.Labels[labelKey], Name: nw.Name})
	}
	return out, nil
}

const labelKey = "io.stackrun.network-key"

func (n Networks) Ensure(ctx context.Context, project string, nw *spec.Network) error {
	if nw.External {
		if _, err := n.Networks.Inspect(nw.Name); err != nil {
			return fmt.Errorf("external network %s: %w", nw.Name, err)
		}
		return nil
	}
	labels := map[string]string{labelKey: nw.Key}
	for k, v := range nw.Labels {
		labels[k] = v
	}
	_, err := n.Networks.EnsureNetwork(ctx, network.Spec{Project: project, Name: nw.Name, Subnet: nw.Subnet, Gateway: nw.Gateway, Internal: nw.Internal, Labels: labels})
	return err
}

func (n Networks) Remove(ctx context.Context, project string, nw *spec.Network) error {
	if nw.External {
		return nil
	}
	return n.Networks.RemoveNetwork(ctx, nw.Name)
}

// netName maps a service's network key to the network's actual name.
func (n Networks) netName(project, key string) string {
	if n.Stack != nil {
		if nw := n.Stack.Networks[key]; nw != nil {
			return nw.Name
		}
	}
	return project + "_" + key
}

// Attach connects the container's namespace to each of its networks, then rewrites the hosts
// file of the container and of every peer, so names resolve to the current addresses.
func (n Networks) Attach(ctx context.Context, project string, e engine.Endpoint) error {
	s := e.Service
	if s.NetworkMode == "none" {
		return nil
	}
	keys := make([]string, 0, len(s.Networks))
	for k := range s.Networks {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		sn := s.Networks[k]
		opts := network.AttachOptions{IfName: fmt.Sprintf("eth%d", i), Name: containerName(project, s, e.Number), Aliases: []string{s.Name}}
		if sn != nil {
			opts.Aliases = append(opts.Aliases, sn.Aliases...)
			if sn.IPv4Address != "" {
				a, err := netip.ParseAddr(sn.IPv4Address)
				if err != nil {
					return fmt.Errorf("networks.%s.ipv4_address: %w", k, err)
				}
				opts.IPv4 = a
			}
		}
		if _, err := n.Networks.Attach(ctx, n.netName(project, k), e.ContainerID, n.netnsPath(e.ContainerID), opts); err != nil {
			return err
		}
	}
	return n.refreshHosts(e.ContainerID, s)
}

func containerName(project string, s *spec.Service, number int) string {
	if s.ContainerName != "" {
		return s.ContainerName
	}
	return fmt.Sprintf("%s-%s-%d", project, s.Name, number)
}

// refreshHosts rewrites the hosts file of id and of all its peers in place (the files are
// bind-mounted, so the inode must stay).
func (n Networks) refreshHosts(id string, s *spec.Service) error {
	peers, err := n.Networks.Peers(id)
	if err != nil {
		return err
	}
	var errs []error
	for _, cid := range append([]string{id}, peers...) {
		svc := s
		if cid != id {
			svc = n.serviceOf(cid)
		}
		errs = append(errs, n.writeHosts(cid, svc))
	}
	return errors.Join(errs...)
}

// serviceOf reads the service a container was created from (the engine's record), for its
// hostname and extra_hosts; nil when unknown.
func (n Networks) serviceOf(id string) *spec.Service {
	matches, _ := filepath.Glob(filepath.Join(n.Root, "projects", "*", "containers", id+".json"))
	for _, m := range matches {
		var rec engine.Record
		if readJSON(m, &rec) == nil && rec.Config != nil {
			return rec.Config
		}
	}
	return nil
}

func (n Networks) writeHosts(id string, s *spec.Service) error {
	path := filepath.Join(n.etcDir(id), "hosts")
	if _, err := os.Stat(path); err != nil {
		return nil // not a container of this host's layout (or already removed)
	}
	opts := network.HostsOptions{Hostname: id[:min(12, len(id))]}
	if s != nil {
		opts.Hostname = hostname(s, id)
		opts.Domainname = s.Domainname
		for _, h := range s.ExtraHosts {
			if a, err := netip.ParseAddr(h.IP); err == nil {
				opts.ExtraHosts = append(opts.ExtraHosts, network.HostEntry{IP: a, Names: []string{h.Host}})
			}
		}
	}
	b, err := n.Networks.HostsFile(id, opts)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// Publish publishes the service's ports on the container's first network.
func (n Networks) Publish(ctx context.Context, project string, e engine.Endpoint) error {
	s := e.Service
	if len(s.Ports) == 0 {
		return nil
	}
	if err := n.Networks.UnpublishPorts(ctx, e.ContainerID); err != nil {
		return err
	}
	var reqs []network.PortBinding
	for _, p := range s.Ports {
		b := network.PortBinding{HostPort: p.Published, ContainerPort: p.Target, Protocol: p.Protocol}
		if p.HostIP != "" {
			a, err := netip.ParseAddr(p.HostIP)
			if err != nil {
				return fmt.Errorf("ports: host ip %q: %w", p.HostIP, err)
			}
			b.HostIP = a
		}
		reqs = append(reqs, b)
	}
	pub, err := n.Networks.PublishPorts(ctx, e.ContainerID, reqs)
	if err != nil {
		return err
	}
	// The records keep other stacks off these ports; the reserving sockets are not handed to
	// the monitor yet (see the closing note of the network work), so they close here.
	return pub.Close()
}

// Detach releases the container's addresses and ports on every network and refreshes the
// hosts files of its former peers.
func (n Networks) Detach(ctx context.Context, project string, id string) error {
	atts, err := n.Networks.Attachments(id)
	if err != nil {
		return err
	}
	peers, _ := n.Networks.Peers(id)
	var errs []error
	errs = append(errs, n.Networks.UnpublishPorts(ctx, id))
	for _, a := range atts {
		errs = append(errs, n.Networks.Detach(ctx, a.Network, id))
	}
	for _, p := range peers {
		errs = append(errs, n.writeHosts(p, n.serviceOf(p)))
	}
	return errors.Join(errs...)
}

// Volumes implements engine.Volumes with the volumes store.
type Volumes struct{ *Host }

var _ engine.Volumes = Volumes{}

func (v Volumes) List(ctx context.Context, project string) ([]planner.Volume, error) {
	vols, err := v.Volumes.ListProject(project)
	if err != nil {
		return nil, err
	}
	var out []planner.Volume
	for _, vol := range vols {
		if vol.Anonymous {
			continue
		}
		out = append(out, planner.Volume{Key: vol.Key, Name: vol.Name})
	}
	return out, nil
}

func (v Volumes) Ensure(ctx context.Context, project string, vol *spec.Volume) error {
	_, err := v.Volumes.Ensure(ctx, volumes.SpecFor(project, vol))
	return err
}

func (v Volumes) Remove(ctx context.Context, project string, vol *spec.Volume) error {
	if vol.External {
		return nil
	}
	return v.Volumes.RemoveOwned(project, vol.Name)
}

// Images implements engine.Images with the image store.
type Images struct {
	*Host
	Pull_ image.PullOptions
	// BuildFunc builds a service's image; nil reports that builds are not available.
	BuildFunc func(ctx context.Context, s *spec.Service) (string, error)
}

var _ engine.Images = Images{}

func (i Images) List(ctx context.Context) (map[string]string, error) {
	imgs, err := i.Images.List()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, img := range imgs {
		for _, t := range img.RepoTags {
			for _, ref := range refAliases(t) {
				out[ref] = img.ID
			}
		}
	}
	return out, nil
}

// refAliases lists the spellings a stack file may use for the canonical tag canon: the planner
// looks an image up by the service's image string as written, so "busybox", "busybox:latest"
// and "docker.io/library/busybox" must all find index.docker.io/library/busybox:latest.
func refAliases(canon string) []string {
	short := image.ShortRef(canon)
	out := []string{canon, short}
	if rest, ok := strings.CutPrefix(canon, name.DefaultRegistry+"/"); ok {
		out = append(out, "docker.io/"+rest)
		if rest != short { // an official image: library/ may be left out
			out = append(out, "docker.io/"+short, rest)
		}
	}
	for _, ref := range out {
		if repo, ok := strings.CutSuffix(ref, ":latest"); ok {
			out = append(out, repo)
		}
	}
	return out
}

func (i Images) Pull(ctx context.Context, ref string) (string, error) {
	img, err := i.Images.Pull(ctx, ref, i.Pull_)
	if err != nil {
		return "", err
	}
	return img.ID, nil
}

func (i Images) Build(ctx context.Context, s *spec.Service) (string, error) {
	if i.BuildFunc == nil {
		return "", fmt.Errorf("service %s: build: not available in this version of stack; build the image elsewhere and load it with `stack image load`", s.Name)
	}
	return i.BuildFunc(ctx, s)
}

func (i Images) Remove(ctx context.Context, ref string) error {
	_, err := i.Images.Remove(ref, false)
	return err
}
