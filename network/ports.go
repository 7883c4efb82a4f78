package network

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"

	"github.com/stackrun/stack/state"
)

// TableName is the nftables table (family ip) that stack owns. Nothing else in the ruleset is
// read or written.
const TableName = "stack"

// PortBinding is one published port: host address and port to a container's port.
type PortBinding struct {
	HostIP        netip.Addr `json:"host_ip,omitzero"` // zero: every address of the host
	HostPort      uint16     `json:"host_port"`        // 0 in a request: pick a free port
	ContainerPort uint16     `json:"container_port"`
	Protocol      string     `json:"protocol"` // "tcp" or "udp"
	// Filled by PublishPorts: which attachment receives the traffic.
	ContainerID string     `json:"container_id,omitempty"`
	Network     string     `json:"network,omitempty"`
	ContainerIP netip.Addr `json:"container_ip,omitzero"`
}

func (b PortBinding) String() string {
	h := ""
	if b.HostIP.IsValid() {
		h = b.HostIP.String() + ":"
	}
	return fmt.Sprintf("%s%d->%d/%s", h, b.HostPort, b.ContainerPort, b.Protocol)
}

func (b PortBinding) validate() error {
	if b.Protocol != "tcp" && b.Protocol != "udp" {
		return fmt.Errorf("port %s: protocol must be tcp or udp: %w", b, ErrInvalid)
	}
	if b.ContainerPort == 0 {
		return fmt.Errorf("port %s: container port is required: %w", b, ErrInvalid)
	}
	if b.HostIP.IsValid() && !b.HostIP.Is4() {
		return fmt.Errorf("port %s: only IPv4 host addresses are supported: %w", b, ErrInvalid)
	}
	return nil
}

// overlaps reports whether two bindings claim the same host socket: same protocol and port, and
// host addresses equal or one of them unspecified (all addresses).
func (b PortBinding) overlaps(o PortBinding) bool {
	return b.Protocol == o.Protocol && b.HostPort == o.HostPort && b.HostPort != 0 &&
		(!b.HostIP.IsValid() || !o.HostIP.IsValid() || b.HostIP.IsUnspecified() || o.HostIP.IsUnspecified() || b.HostIP == o.HostIP)
}

type bindingsRecord struct {
	Bindings []PortBinding `json:"bindings"`
}

func (m *Manager) portsPath() string { return filepath.Join(m.dir, "ports.json") }

func (m *Manager) loadBindings() ([]PortBinding, error) {
	var r bindingsRecord
	if err := state.ReadJSON(m.portsPath(), &r); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read port bindings: %w", err)
	}
	return r.Bindings, nil
}

func (m *Manager) saveBindings(bs []PortBinding) error {
	sortBindings(bs)
	if err := state.WriteJSON(m.portsPath(), bindingsRecord{Bindings: bs}); err != nil {
		return fmt.Errorf("record port bindings: %w", err)
	}
	return nil
}

// dropBindings removes the recorded bindings matching drop; changed says whether any did.
func (m *Manager) dropBindings(drop func(PortBinding) bool) (changed bool, err error) {
	bs, err := m.loadBindings()
	if err != nil {
		return false, err
	}
	kept := slices.DeleteFunc(slices.Clone(bs), drop)
	if len(kept) == len(bs) {
		return false, nil
	}
	return true, m.saveBindings(kept)
}

func sortBindings(bs []PortBinding) {
	slices.SortFunc(bs, func(a, b PortBinding) int {
		return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.HostPort, b.HostPort),
			a.HostIP.Compare(b.HostIP), cmp.Compare(a.ContainerID, b.ContainerID))
	})
}

// Bindings returns the recorded port bindings of a container ("" for all), sorted.
func (m *Manager) Bindings(containerID string) ([]PortBinding, error) {
	bs, err := m.loadBindings()
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(bs, func(b PortBinding) bool { return containerID != "" && b.ContainerID != containerID }), nil
}

// Table is stack's complete nftables table, as data: BuildTable decides it from the records,
// the Linux half applies it in one transaction, Render prints it in nft syntax.
type Table struct {
	Chains []Chain
	// Forwarding: the host must forward IPv4 (net.ipv4.ip_forward=1) because a network has
	// outbound traffic or a port is published.
	Forwarding bool
}

// Chain is one chain of the table; Hook is empty for a regular chain (a jump target).
type Chain struct {
	Name     string
	Type     string // "filter" or "nat"
	Hook     string // "prerouting", "output", "postrouting", "forward"
	Priority int
	Rules    []Rule
}

// Rule matches on the fields that are set (all must hold) and then does Verdict.
type Rule struct {
	IIF, OIF       string       // iifname / oifname equals
	NotIIF, NotOIF string       // iifname / oifname differs
	Saddr, Daddr   netip.Prefix // ip saddr / daddr in prefix
	DaddrLocal     bool         // fib daddr type local
	CtDNAT         bool         // ct status dnat
	Proto          string       // meta l4proto
	Dport          uint16       // th dport (with Proto)
	Verdict        string       // accept, drop, masquerade, dnat, jump
	Jump           string       // target chain of "jump"
	ToAddr         netip.Addr   // dnat to
	ToPort         uint16
}

// Chain and verdict names used by BuildTable.
const (
	chainGuard       = "guard"
	chainPrerouting  = "prerouting"
	chainOutput      = "output"
	chainPorts       = "ports"
	chainPostrouting = "postrouting"
	chainForward     = "forward"
)

var loopbackNet = netip.MustParsePrefix("127.0.0.0/8")

// BuildTable decides stack's whole table from the network records and the port bindings. It
// returns nil when there is nothing to put in it: then the table is deleted.
//
//   - guard: route_localnet is on for stack's bridges (see bridge_linux.go), so a container
//     could send packets to 127.0.0.1 of the host through its bridge (CVE-2020-8558 in
//     kube-proxy); drop them before conntrack and NAT see them.
//   - prerouting/output -> ports: DNAT of each published port, for packets addressed to a local
//     address of the host (from other namespaces and from the host itself, incl. 127.0.0.1).
//   - postrouting: masquerade of connections the host itself made to 127.0.0.1 (source moved to
//     the bridge address so the reply comes back), of hairpin connections (a container reaching
//     a published port that leads into its own network) and of outbound traffic of non-internal
//     networks.
//   - forward: internal networks exchange nothing with other interfaces; published ports may
//     cross networks (ct status dnat); otherwise no forwarding between two stack bridges.
func BuildTable(nets []*Network, bindings []PortBinding) *Table {
	if len(nets) == 0 && len(bindings) == 0 {
		return nil
	}
	nets = slices.Clone(nets)
	slices.SortFunc(nets, func(a, b *Network) int { return cmp.Compare(a.Name, b.Name) })
	bindings = slices.Clone(bindings)
	sortBindings(bindings)

	guard := Chain{Name: chainGuard, Type: "filter", Hook: "prerouting", Priority: -300}
	post := Chain{Name: chainPostrouting, Type: "nat", Hook: "postrouting", Priority: 100}
	fwd := Chain{Name: chainForward, Type: "filter", Hook: "forward", Priority: 0}
	for _, n := range nets {
		guard.Rules = append(guard.Rules, Rule{IIF: n.Bridge, Daddr: loopbackNet, Verdict: "drop"})
		post.Rules = append(post.Rules,
			Rule{OIF: n.Bridge, Saddr: loopbackNet, Verdict: "masquerade"},
			Rule{OIF: n.Bridge, Saddr: n.Subnet, CtDNAT: true, Verdict: "masquerade"})
		if n.Internal {
			fwd.Rules = append(fwd.Rules,
				Rule{IIF: n.Bridge, NotOIF: n.Bridge, Verdict: "drop"},
				Rule{OIF: n.Bridge, NotIIF: n.Bridge, Verdict: "drop"})
		} else {
			post.Rules = append(post.Rules, Rule{Saddr: n.Subnet, NotOIF: n.Bridge, Verdict: "masquerade"})
		}
	}
	if len(nets) > 1 {
		fwd.Rules = append(fwd.Rules, Rule{CtDNAT: true, Verdict: "accept"})
		for _, a := range nets {
			for _, b := range nets {
				if a != b {
					fwd.Rules = append(fwd.Rules, Rule{IIF: a.Bridge, OIF: b.Bridge, Verdict: "drop"})
				}
			}
		}
	}

	t := &Table{Forwarding: len(bindings) > 0}
	for _, n := range nets {
		t.Forwarding = t.Forwarding || !n.Internal
	}
	if len(nets) > 0 {
		t.Chains = append(t.Chains, guard)
	}
	if len(bindings) > 0 {
		ports := Chain{Name: chainPorts}
		for _, b := range bindings {
			r := Rule{Proto: b.Protocol, Dport: b.HostPort, Verdict: "dnat", ToAddr: b.ContainerIP, ToPort: b.ContainerPort}
			if b.HostIP.IsValid() && !b.HostIP.IsUnspecified() {
				r.Daddr = netip.PrefixFrom(b.HostIP, 32)
			}
			ports.Rules = append(ports.Rules, r)
		}
		jump := Rule{DaddrLocal: true, Verdict: "jump", Jump: chainPorts}
		// The jump target first: a rule may only name a chain the batch has already made.
		t.Chains = append(t.Chains, ports,
			Chain{Name: chainPrerouting, Type: "nat", Hook: "prerouting", Priority: -100, Rules: []Rule{jump}},
			Chain{Name: chainOutput, Type: "nat", Hook: "output", Priority: -100, Rules: []Rule{jump}})
	}
	if len(nets) > 0 {
		t.Chains = append(t.Chains, post, fwd)
	}
	return t
}

// Render prints the table in nft syntax (what `nft list table ip stack` shows, give or take
// counters and formatting). A nil table renders as "".
func (t *Table) Render() string {
	if t == nil {
		return ""
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "table ip %s {\n", TableName)
	for _, c := range t.Chains {
		fmt.Fprintf(&sb, "\tchain %s {\n", c.Name)
		if c.Hook != "" {
			fmt.Fprintf(&sb, "\t\ttype %s hook %s priority %d; policy accept;\n", c.Type, c.Hook, c.Priority)
		}
		for _, r := range c.Rules {
			fmt.Fprintf(&sb, "\t\t%s\n", r.Render())
		}
		sb.WriteString("\t}\n")
	}
	sb.WriteString("}\n")
	return sb.String()
}

// Render prints one rule in nft syntax.
func (r Rule) Render() string {
	var p []string
	if r.IIF != "" {
		p = append(p, fmt.Sprintf("iifname %q", r.IIF))
	}
	if r.NotIIF != "" {
		p = append(p, fmt.Sprintf("iifname != %q", r.NotIIF))
	}
	if r.OIF != "" {
		p = append(p, fmt.Sprintf("oifname %q", r.OIF))
	}
	if r.NotOIF != "" {
		p = append(p, fmt.Sprintf("oifname != %q", r.NotOIF))
	}
	if r.Saddr.IsValid() {
		p = append(p, "ip saddr "+prefixString(r.Saddr))
	}
	if r.Daddr.IsValid() {
		p = append(p, "ip daddr "+prefixString(r.Daddr))
	}
	if r.DaddrLocal {
		p = append(p, "fib daddr type local")
	}
	if r.CtDNAT {
		p = append(p, "ct status dnat")
	}
	if r.Proto != "" {
		p = append(p, fmt.Sprintf("meta l4proto %s th dport %d", r.Proto, r.Dport))
	}
	switch r.Verdict {
	case "jump":
		p = append(p, "jump "+r.Jump)
	case "dnat":
		p = append(p, fmt.Sprintf("dnat to %s:%d", r.ToAddr, r.ToPort))
	default:
		p = append(p, r.Verdict)
	}
	return strings.Join(p, " ")
}

func prefixString(p netip.Prefix) string {
	if p.Bits() == 32 {
		return p.Addr().String()
	}
	return p.String()
}
