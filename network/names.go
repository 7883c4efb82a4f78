package network

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/stackrun/stack/state"
)

// Name resolution is by files, not by an embedded DNS server: each container gets an /etc/hosts
// naming itself, every peer on the networks it shares (by service name, aliases and container
// name) and its extra_hosts; and a resolv.conf derived from the host's. The files are computed
// from the records. Once WriteNameFiles has recorded where a container's files are, the Manager
// rewrites its hosts file in place whenever its peers change (Attach, Detach, Reconcile), so a
// peer recreated with a new address stays reachable by name. Callers that manage the files
// themselves use HostsFile and Peers instead.

// HostEntry is one line of a hosts file.
type HostEntry struct {
	IP    netip.Addr
	Names []string
}

// HostsOptions are the container's own naming choices.
type HostsOptions struct {
	Hostname   string
	Domainname string
	ExtraHosts []HostEntry // extra_hosts, in file order
}

// Hosts is everything a hosts file is rendered from.
type Hosts struct {
	HostsOptions
	Own   []netip.Addr // the container's addresses, first network first
	Names []string     // the container's own names (service, aliases, container name)
	Peers []HostEntry
}

// RenderHosts renders /etc/hosts: loopback lines (as Docker writes them), extra_hosts, the
// container itself, then its peers sorted by first name and address.
func RenderHosts(h Hosts) []byte {
	var b bytes.Buffer
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
	for _, e := range h.ExtraHosts {
		writeEntry(&b, e)
	}
	own := []string{}
	if h.Hostname != "" {
		if h.Domainname != "" {
			own = append(own, h.Hostname+"."+h.Domainname)
		}
		own = append(own, h.Hostname)
	}
	own = append(own, h.Names...)
	for _, ip := range h.Own {
		writeEntry(&b, HostEntry{IP: ip, Names: own})
	}
	peers := slices.Clone(h.Peers)
	slices.SortStableFunc(peers, func(x, y HostEntry) int {
		if c := strings.Compare(first(x.Names), first(y.Names)); c != 0 {
			return c
		}
		return x.IP.Compare(y.IP)
	})
	for _, e := range peers {
		writeEntry(&b, e)
	}
	return b.Bytes()
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func writeEntry(b *bytes.Buffer, e HostEntry) {
	names := dedupe(e.Names)
	if !e.IP.IsValid() || len(names) == 0 {
		return
	}
	fmt.Fprintf(b, "%s\t%s\n", e.IP, strings.Join(names, " "))
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// hostsFor computes the Hosts of a container from the network records.
func hostsFor(all []*Network, containerID string, opts HostsOptions) Hosts {
	h := Hosts{HostsOptions: opts}
	for _, a := range attachmentsOf(all, containerID) {
		h.Own = append(h.Own, a.IPv4)
		h.Names = append(h.Names, a.Aliases...)
		if a.Name != "" {
			h.Names = append(h.Names, a.Name)
		}
	}
	h.Names = dedupe(h.Names)
	for _, n := range all {
		if _, ok := n.Attachments[containerID]; !ok {
			continue
		}
		for id, a := range n.Attachments {
			if id == containerID {
				continue
			}
			names := slices.Clone(a.Aliases)
			if a.Name != "" {
				names = append(names, a.Name)
			}
			h.Peers = append(h.Peers, HostEntry{IP: a.IPv4, Names: names})
		}
	}
	return h
}

// HostsFile returns the /etc/hosts content of a container from the current records.
func (m *Manager) HostsFile(containerID string, opts HostsOptions) ([]byte, error) {
	all, err := m.loadAll()
	if err != nil {
		return nil, err
	}
	return RenderHosts(hostsFor(all, containerID, opts)), nil
}

// ResolvOptions are a service's dns, dns_search and dns_opt.
type ResolvOptions struct {
	DNS     []string
	Search  []string
	Options []string
}

// FallbackNameservers are used, as Docker does, when neither the service nor the host (after
// dropping loopback nameservers, unreachable from a container's namespace) names any.
var FallbackNameservers = []string{"8.8.8.8", "8.8.4.4"}

// parseResolvConf returns the nameservers (loopback ones dropped), search domains and options
// of a resolv.conf.
func parseResolvConf(conf []byte) (ns, search, opts []string) {
	sc := bufio.NewScanner(bytes.NewReader(conf))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			if a, err := netip.ParseAddr(f[1]); err == nil && !a.IsLoopback() {
				ns = append(ns, f[1])
			}
		case "search", "domain":
			search = f[1:] // the last one wins, as in resolv.conf(5)
		case "options":
			opts = append(opts, f[1:]...)
		}
	}
	return ns, search, opts
}

// nameserverPrefixes are the host's IPv4 nameservers (resolv.conf at path) as /32s: an
// automatic subnet must not cover one, or the host and every container on it would send their
// DNS queries onto the bridge instead of to the server.
func nameserverPrefixes(path string) []netip.Prefix {
	conf, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	ns, _, _ := parseResolvConf(conf)
	var out []netip.Prefix
	for _, s := range ns {
		if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
			out = append(out, netip.PrefixFrom(a, 32))
		}
	}
	return out
}

// RenderResolvConf derives a container's resolv.conf from the host's: nameservers from the
// service's dns or else the host's minus loopback ones (a local stub resolver such as
// systemd-resolved's 127.0.0.53 is not reachable from the container); search from dns_search
// or else the host's search/domain; options from dns_opt or else the host's.
func RenderResolvConf(hostConf []byte, o ResolvOptions) []byte {
	ns, search, opts := parseResolvConf(hostConf)
	if len(o.DNS) > 0 {
		ns = o.DNS
	}
	if len(ns) == 0 {
		ns = FallbackNameservers
	}
	if len(o.Search) > 0 {
		search = o.Search
		if len(search) == 1 && search[0] == "." { // dns_search: . means none
			search = nil
		}
	}
	if len(o.Options) > 0 {
		opts = o.Options
	}
	var b bytes.Buffer
	for _, s := range ns {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	if len(opts) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(opts, " "))
	}
	return b.Bytes()
}

// NameFiles says where a container's name files are on the host (the engine bind-mounts them
// at /etc/hosts and /etc/resolv.conf) and what goes into them.
type NameFiles struct {
	Hosts         string        `json:"hosts"`
	Resolv        string        `json:"resolv"`
	HostsOptions  HostsOptions  `json:"hosts_options"`
	ResolvOptions ResolvOptions `json:"resolv_options"`
}

func (m *Manager) namesPath(containerID string) string {
	return filepath.Join(m.dir, "names", containerID+".json")
}

// WriteNameFiles writes a container's hosts and resolv.conf (call it after Attach) and records
// where they are: from then on every Attach, Detach and Reconcile that changes the container's
// peers rewrites its hosts file, so running containers keep resolving a recreated peer. The
// record goes when the container's last attachment does.
func (m *Manager) WriteNameFiles(containerID string, f NameFiles) error {
	if err := checkName("container", containerID); err != nil {
		return err
	}
	l, err := m.lock()
	if err != nil {
		return err
	}
	defer l.Unlock()
	if err := state.WriteJSON(m.namesPath(containerID), f); err != nil {
		return fmt.Errorf("record name files of container %s: %w", containerID, err)
	}
	all, err := m.loadAll()
	if err != nil {
		return err
	}
	if err := writeInPlace(f.Hosts, RenderHosts(hostsFor(all, containerID, f.HostsOptions)), true); err != nil {
		return fmt.Errorf("write hosts file of container %s: %w", containerID, err)
	}
	hostConf, err := os.ReadFile(m.resolvConf)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read host resolv.conf: %w", err)
	}
	if err := writeInPlace(f.Resolv, RenderResolvConf(hostConf, f.ResolvOptions), true); err != nil {
		return fmt.Errorf("write resolv.conf of container %s: %w", containerID, err)
	}
	return nil
}

// writeInPlace truncates and writes path, keeping its inode: the file is bind-mounted into a
// running container, and a rename would leave the container looking at the old inode.
func writeInPlace(path string, data []byte, create bool) error {
	if path == "" {
		return nil
	}
	flags := os.O_WRONLY | os.O_TRUNC
	if create {
		flags |= os.O_CREATE
		if err := os.MkdirAll(filepath.Dir(path), state.DirMode); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	return errors.Join(err, f.Close())
}

// refreshHostsLocked rewrites the hosts files of the given containers that have name files
// recorded (the caller holds the lock). A file that no longer exists is not recreated.
func (m *Manager) refreshHostsLocked(ids []string) {
	all, err := m.loadAll()
	if err != nil {
		m.log.Warn("hosts files not refreshed", "err", err)
		return
	}
	for _, id := range dedupe(ids) {
		var f NameFiles
		if err := state.ReadJSON(m.namesPath(id), &f); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				m.log.Warn("hosts file not refreshed", "container", id, "err", err)
			}
			continue
		}
		if len(attachmentsOf(all, id)) == 0 {
			if err := os.Remove(m.namesPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				m.log.Warn("name files record not removed", "container", id, "err", err)
			}
			continue
		}
		err := writeInPlace(f.Hosts, RenderHosts(hostsFor(all, id, f.HostsOptions)), false)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			m.log.Warn("hosts file not refreshed", "container", id, "path", f.Hosts, "err", err)
		}
	}
}
