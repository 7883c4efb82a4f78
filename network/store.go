package network

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/stackrun/stack/spec"
	"github.com/stackrun/stack/state"
)

// Network is the record of one stack network: its bridge, its address space and every container
// attached to it. It is the only source of truth for addresses: an address is in use exactly when
// an attachment here holds it.
type Network struct {
	Name     string            `json:"name"`          // unique on the host, e.g. "shop_default"
	Project  string            `json:"project"`       // label: the project that created it
	Key      string            `json:"key,omitempty"` // its key in the project's stack file
	Bridge   string            `json:"bridge"`        // Linux interface name, at most 15 bytes
	Subnet   netip.Prefix      `json:"subnet"`
	Gateway  netip.Addr        `json:"gateway"` // the bridge's address
	Internal bool              `json:"internal,omitempty"`
	MTU      int               `json:"mtu,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	Created  time.Time         `json:"created"`
	// LastIP is the IPAM cursor: the most recent allocation (see AllocateIP).
	LastIP      netip.Addr             `json:"last_ip,omitzero"`
	Attachments map[string]*Attachment `json:"attachments,omitempty"` // by container id
}

// Attachment is one container's interface on one network.
type Attachment struct {
	Network     string            `json:"network"`
	ContainerID string            `json:"container_id"`
	NetNS       string            `json:"netns"`
	IfName      string            `json:"ifname"`    // inside the container: eth0, eth1, ...
	HostVeth    string            `json:"host_veth"` // the host side of the pair, enslaved to the bridge
	IPv4        netip.Addr        `json:"ipv4"`
	MAC         string            `json:"mac"`
	Gateway     netip.Addr        `json:"gateway,omitzero"` // default route, unset on internal networks
	Name        string            `json:"name,omitempty"`   // container name, resolvable by peers
	Aliases     []string          `json:"aliases,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"` // the engine's (project, service, number)
	Created     time.Time         `json:"created"`
}

// Spec describes a network to ensure. Subnet and Gateway are optional.
type Spec struct {
	Project  string
	Key      string // key in the stack file, recorded for the engine's observation
	Name     string
	Subnet   string
	Gateway  string
	Internal bool
	External bool // must exist already: EnsureNetwork never creates it
	MTU      int
	Labels   map[string]string
}

// AttachOptions are the per-attachment choices. IfName defaults to the first ethN the
// container's other attachments do not use; IPv4 (static ipv4_address) defaults to the next free address.
type AttachOptions struct {
	IPv4    netip.Addr
	IfName  string
	Name    string   // container name
	Aliases []string // service name and network aliases
	Labels  map[string]string
}

// Manager does network work for one state directory (and one host network namespace).
type Manager struct {
	dir   string
	log   *slog.Logger
	netns string
	pools []Pool
	// hostPrefixes lists the host's routes and addresses that a new subnet must not overlap.
	hostPrefixes func() ([]netip.Prefix, error)
	now          func() time.Time
	h            host
	resolvConf   string // the host's resolv.conf
	table        string // the nftables table this manager owns (TableName unless WithTable)
}

// Option configures a Manager.
type Option func(*Manager)

// WithTable names the nftables table the manager owns. Each state root needs its own: the
// manager rebuilds its whole table from its own records, so two roots sharing one table would
// delete each other's rules (a test's temporary root next to a user's stacks, say).
func WithTable(name string) Option { return func(m *Manager) { m.table = name } }

// WithNetNS makes the Manager treat the network namespace at path as "the host": bridges,
// host-side veths, the nftables table and the sysctls are made there. Tests use it to run
// everything inside a sandbox namespace. The default is the caller's namespace.
func WithNetNS(path string) Option { return func(m *Manager) { m.netns = path } }

// WithHostResolvConf names the host's resolv.conf (default /etc/resolv.conf), the base of
// every container's.
func WithHostResolvConf(path string) Option { return func(m *Manager) { m.resolvConf = path } }

// WithPools replaces DefaultPools.
func WithPools(p ...Pool) Option { return func(m *Manager) { m.pools = p } }

// New returns a Manager keeping its records under stateDir (e.g. <root>/network).
func New(stateDir string, log *slog.Logger, opts ...Option) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{dir: stateDir, log: log, pools: DefaultPools, now: time.Now, resolvConf: "/etc/resolv.conf", table: TableName}
	m.hostPrefixes = m.readHostPrefixes
	for _, o := range opts {
		o(m)
	}
	if m.h == nil {
		m.h = &linuxHost{netns: m.netns, stateDir: stateDir, log: log, table: m.table}
	}
	return m
}

func (m *Manager) hostOps() host { return m.h }

func checkName(what, name string) error {
	if !spec.IsObjectName(name) {
		return fmt.Errorf("%s name %q: %w", what, name, ErrInvalid)
	}
	return nil
}

func (m *Manager) lock() (*state.Lock, error) {
	l, err := state.WaitLock(filepath.Join(m.dir, "network.lock"))
	if err != nil {
		return nil, fmt.Errorf("lock network state: %w", err)
	}
	return l, nil
}

func (m *Manager) netPath(name string) string {
	return filepath.Join(m.dir, "networks", name+".json")
}

func (m *Manager) loadNetwork(name string) (*Network, error) {
	var n Network
	if err := state.ReadJSON(m.netPath(name), &n); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("network %s: %w", name, ErrNotFound)
		}
		return nil, fmt.Errorf("read network %s: %w", name, err)
	}
	if n.Attachments == nil {
		n.Attachments = map[string]*Attachment{}
	}
	return &n, nil
}

func (m *Manager) saveNetwork(n *Network) error {
	if err := state.WriteJSON(m.netPath(n.Name), n); err != nil {
		return fmt.Errorf("record network %s: %w", n.Name, err)
	}
	return nil
}

func (m *Manager) deleteNetworkRecord(name string) error {
	if err := os.Remove(m.netPath(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove record of network %s: %w", name, err)
	}
	return nil
}

// loadAll returns every network record, sorted by name.
func (m *Manager) loadAll() ([]*Network, error) {
	ents, err := os.ReadDir(filepath.Join(m.dir, "networks"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("list network records: %w", err)
	}
	var out []*Network
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(name, ".") {
			continue
		}
		n, err := m.loadNetwork(name)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// List returns every network record, sorted by name.
func (m *Manager) List() ([]*Network, error) { return m.loadAll() }

// Inspect returns the record of one network.
func (m *Manager) Inspect(name string) (*Network, error) { return m.loadNetwork(name) }

// Attachments returns every attachment of a container, sorted by interface name.
func (m *Manager) Attachments(containerID string) ([]*Attachment, error) {
	all, err := m.loadAll()
	if err != nil {
		return nil, err
	}
	return attachmentsOf(all, containerID), nil
}

func attachmentsOf(all []*Network, containerID string) []*Attachment {
	var out []*Attachment
	for _, n := range all {
		if a, ok := n.Attachments[containerID]; ok {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IfName < out[j].IfName })
	return out
}

// newNetworkRecord decides everything about a new network without touching the host: subnet
// (given, or the first free one of the pools), gateway and bridge name.
func newNetworkRecord(spec Spec, pools []Pool, hostPrefixes []netip.Prefix, others []*Network, linkExists func(string) bool, now time.Time) (*Network, error) {
	n := &Network{Name: spec.Name, Project: spec.Project, Key: spec.Key, Internal: spec.Internal, MTU: spec.MTU,
		Labels: spec.Labels, Created: now.UTC(), Attachments: map[string]*Attachment{}}
	var stackNets []netip.Prefix
	for _, o := range others {
		stackNets = append(stackNets, o.Subnet)
	}
	if spec.Subnet != "" {
		p, gw, err := ParseSubnet(spec.Subnet, spec.Gateway)
		if err != nil {
			return nil, fmt.Errorf("network %s: %w", spec.Name, err)
		}
		for _, o := range others {
			if o.Subnet.Overlaps(p) {
				return nil, fmt.Errorf("network %s: subnet %s overlaps network %s (%s): %w", spec.Name, p, o.Name, o.Subnet, ErrConflict)
			}
		}
		n.Subnet, n.Gateway = p, gw
	} else {
		p, err := ChooseSubnet(pools, append(hostPrefixes, stackNets...))
		if err != nil {
			return nil, fmt.Errorf("network %s: %w", spec.Name, err)
		}
		n.Subnet, n.Gateway = p, FirstHost(p)
		if spec.Gateway != "" {
			return nil, fmt.Errorf("network %s: gateway without subnet: %w", spec.Name, ErrInvalid)
		}
	}
	taken := map[string]bool{}
	for _, o := range others {
		taken[o.Bridge] = true
	}
	n.Bridge = BridgeName(spec.Name, func(s string) bool { return taken[s] || (linkExists != nil && linkExists(s)) })
	return n, nil
}

// BridgeName returns "stk" plus 10 hex digits of a hash of the network name (13 bytes, within
// IFNAMSIZ), rehashing with a counter while taken reports a collision.
func BridgeName(network string, taken func(string) bool) string {
	return hashedName("stk", network, taken)
}

func hashedName(prefix, key string, taken func(string) bool) string {
	for i := 0; ; i++ {
		k := key
		if i > 0 {
			k = fmt.Sprintf("%s#%d", key, i)
		}
		sum := sha256.Sum256([]byte(k))
		name := prefix + hex.EncodeToString(sum[:])[:15-len(prefix)-2]
		if taken == nil || !taken(name) {
			return name
		}
	}
}

// vethName names the host side of a container's pair: "ve" + 11 hex digits of a hash of
// network and container.
func vethName(network, containerID string, taken func(string) bool) string {
	return hashedName("ve", network+"/"+containerID, taken)
}

// allocate decides a new attachment's address and records nothing: the caller stores n.
func allocate(n *Network, containerID string, opts AttachOptions) (netip.Addr, error) {
	used := map[netip.Addr]bool{}
	for id, a := range n.Attachments {
		if id != containerID {
			used[a.IPv4] = true
		}
	}
	ip, err := AllocateIP(n.Subnet, n.Gateway, used, n.LastIP, opts.IPv4)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("attach container %s to network %s: %w", containerID, n.Name, err)
	}
	return ip, nil
}

// staleAttachments lists attachments of containers not in live, sorted by network then id.
func staleAttachments(all []*Network, live map[string]bool) []*Attachment {
	var out []*Attachment
	for _, n := range all {
		ids := make([]string, 0, len(n.Attachments))
		for id := range n.Attachments {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			if !live[id] {
				out = append(out, n.Attachments[id])
			}
		}
	}
	return out
}

// Dir is the directory under the state root that holds the network records.
const Dir = "networks"
