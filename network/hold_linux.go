package network

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Published ports are reserved by a socket held in the host namespace for as long as the
// container runs. The nftables DNAT happens before the kernel looks for a local socket, so the
// held socket never sees the container's traffic; it only keeps everyone else (another stack,
// any process) from binding the port, and makes `ss -ltnp` name the holder, like docker-proxy.
// TCP: SO_REUSEADDR (so old TIME_WAIT connections do not block it), bind, listen. UDP: bind
// without SO_REUSEADDR (which would let others share it).

// holdPort binds b's host address and port (0: the kernel picks a free one) in the namespace
// ns and returns the socket and the port.
func holdPort(ns string, b PortBinding) (*os.File, uint16, error) {
	var f *os.File
	var port uint16
	err := doInNetNS(ns, func() error {
		typ := unix.SOCK_STREAM
		if b.Protocol == "udp" {
			typ = unix.SOCK_DGRAM
		}
		fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return os.NewSyscallError("socket", err)
		}
		ok := false
		defer func() {
			if !ok {
				unix.Close(fd)
			}
		}()
		if typ == unix.SOCK_STREAM {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
				return os.NewSyscallError("setsockopt", err)
			}
		}
		sa := &unix.SockaddrInet4{Port: int(b.HostPort)}
		if b.HostIP.IsValid() {
			sa.Addr = b.HostIP.As4()
		}
		if err := unix.Bind(fd, sa); err != nil {
			return os.NewSyscallError("bind", err)
		}
		if typ == unix.SOCK_STREAM {
			if err := unix.Listen(fd, 1); err != nil {
				return os.NewSyscallError("listen", err)
			}
		}
		got, err := unix.Getsockname(fd)
		if err != nil {
			return os.NewSyscallError("getsockname", err)
		}
		port = uint16(got.(*unix.SockaddrInet4).Port)
		f = os.NewFile(uintptr(fd), fmt.Sprintf("stack-port-%s-%d", b.Protocol, port))
		ok = true
		return nil
	})
	if err != nil {
		if errors.Is(err, unix.EADDRINUSE) {
			return nil, 0, inUseError(ns, b)
		}
		return nil, 0, fmt.Errorf("reserve port %s: %w", portLabel(b), err)
	}
	return f, port, nil
}

func portLabel(b PortBinding) string {
	s := strconv.Itoa(int(b.HostPort))
	if b.HostIP.IsValid() && !b.HostIP.IsUnspecified() {
		s = b.HostIP.String() + ":" + s
	}
	if b.Protocol == "udp" {
		s += "/udp"
	}
	return s
}

// inUseError says who holds the port, where the kernel tells: "port 8080 is in use by pid 1234
// (nginx)".
func inUseError(ns string, b PortBinding) error {
	var inodes []uint64
	_ = doInNetNS(ns, func() error {
		inodes = socketInodes(b.Protocol, b.HostPort)
		return nil
	})
	if pid, comm, ok := socketOwner(inodes); ok {
		return fmt.Errorf("port %s is in use by pid %d (%s): %w", portLabel(b), pid, comm, ErrConflict)
	}
	return fmt.Errorf("port %s is in use: %w", portLabel(b), ErrConflict)
}

// socketInodes returns the inodes of the sockets bound to local port in the calling thread's
// namespace (/proc/thread-self/net/{tcp,tcp6,udp,udp6}), listening sockets first.
func socketInodes(proto string, port uint16) []uint64 {
	var first, rest []uint64
	for _, file := range []string{proto, proto + "6"} {
		f, err := os.Open(filepath.Join("/proc/thread-self/net", file))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			inode, st, ok := parseProcNetLine(sc.Text(), port)
			if !ok {
				continue
			}
			if st == "0A" || proto == "udp" { // TCP_LISTEN
				first = append(first, inode)
			} else {
				rest = append(rest, inode)
			}
		}
		f.Close()
	}
	return append(first, rest...)
}

// parseProcNetLine reads one line of /proc/net/tcp (see proc_net_tcp(5)): sl local_address
// rem_address st tx:rx tr:when retrnsmt uid timeout inode. It reports the inode and state when
// the local port is port.
func parseProcNetLine(line string, port uint16) (inode uint64, st string, ok bool) {
	f := strings.Fields(line)
	if len(f) < 10 {
		return 0, "", false
	}
	_, portHex, found := strings.Cut(f[1], ":")
	if !found {
		return 0, "", false
	}
	p, err := strconv.ParseUint(portHex, 16, 16)
	if err != nil || uint16(p) != port {
		return 0, "", false
	}
	inode, err = strconv.ParseUint(f[9], 10, 64)
	if err != nil || inode == 0 {
		return 0, "", false
	}
	return inode, f[3], true
}

// socketOwner finds a process holding one of the socket inodes by scanning /proc/*/fd.
func socketOwner(inodes []uint64) (pid int, comm string, ok bool) {
	if len(inodes) == 0 {
		return 0, "", false
	}
	want := map[string]bool{}
	for _, i := range inodes {
		want["socket:["+strconv.FormatUint(i, 10)+"]"] = true
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, "", false
	}
	for _, p := range procs {
		n, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fdDir := filepath.Join("/proc", p.Name(), "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			target, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
			if err == nil && want[target] {
				c, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "comm"))
				return n, strings.TrimSpace(string(c)), true
			}
		}
	}
	return 0, "", false
}

// Published is the result of PublishPorts: the bindings with their host ports chosen, and the
// sockets reserving those ports. The caller keeps Files open for as long as the container runs
// (the engine hands them to the container's monitor, which only holds them) and closes them
// after UnpublishPorts. If they are closed early the records still keep other stacks off the
// ports, but an unrelated process could bind one and have its clients' traffic DNATed away.
type Published struct {
	Bindings []PortBinding
	Files    []*os.File
}

// Close closes the reserving sockets.
func (p *Published) Close() error {
	if p == nil {
		return nil
	}
	var errs []error
	for _, f := range p.Files {
		errs = append(errs, f.Close())
	}
	p.Files = nil
	return errors.Join(errs...)
}

// CheckPorts reports, before anything is created, every requested host port that is taken: by
// another container's binding ("port 8080 is in use by container web-1") or by any socket of
// the host ("port 8080 is in use by pid 1234 (nginx)"). Random host ports (0) are not checked.
// Ports held by the containers in except (about to be replaced) count as free.
func (m *Manager) CheckPorts(reqs []PortBinding, except ...string) error {
	recorded, err := m.loadBindings()
	if err != nil {
		return err
	}
	var replaced []PortBinding
	recorded = slices.DeleteFunc(recorded, func(b PortBinding) bool {
		if slices.Contains(except, b.ContainerID) {
			replaced = append(replaced, b)
			return true
		}
		return false
	})
	all, err := m.loadAll()
	if err != nil {
		return err
	}
	var errs []error
	if err := recordConflicts(recorded, reqs, containerNames(all)); err != nil {
		errs = append(errs, err)
	}
	for _, b := range reqs {
		if b.HostPort == 0 || slices.ContainsFunc(recorded, b.overlaps) || slices.ContainsFunc(replaced, b.overlaps) {
			continue
		}
		f, _, err := holdPort(m.netns, b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		f.Close()
	}
	return errors.Join(errs...)
}

// containerNames maps container ids to the names recorded on their attachments, for messages.
func containerNames(all []*Network) map[string]string {
	out := map[string]string{}
	for _, n := range all {
		for id, a := range n.Attachments {
			if a.Name != "" {
				out[id] = a.Name
			}
		}
	}
	return out
}

// recordConflicts checks requests against the recorded bindings and against each other; names
// maps container ids to names for the message.
func recordConflicts(recorded, reqs []PortBinding, names map[string]string) error {
	var errs []error
	for i, b := range reqs {
		if err := b.validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		for _, r := range recorded {
			if b.overlaps(r) {
				who := r.ContainerID
				if n := names[who]; n != "" {
					who = n
				}
				errs = append(errs, fmt.Errorf("port %s is in use by container %s: %w", portLabel(b), who, ErrConflict))
				break
			}
		}
		for _, o := range reqs[:i] {
			if b.overlaps(o) {
				errs = append(errs, fmt.Errorf("port %s is published twice: %w", portLabel(b), ErrConflict))
				break
			}
		}
	}
	return errors.Join(errs...)
}

// PublishPorts publishes ports of an attached container: host ports checked and reserved
// (HostPort 0: a free one is chosen), bindings recorded, the nftables table rebuilt and applied.
// A binding without Network goes to the container's first non-internal network. On error
// nothing is left reserved or recorded.
func (m *Manager) PublishPorts(ctx context.Context, containerID string, reqs []PortBinding) (*Published, error) {
	l, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	all, err := m.loadAll()
	if err != nil {
		return nil, err
	}
	ats := attachmentsOf(all, containerID)
	if len(ats) == 0 {
		return nil, fmt.Errorf("publish ports of container %s: not attached to any network: %w", containerID, ErrNotFound)
	}
	recorded, err := m.loadBindings()
	if err != nil {
		return nil, err
	}
	if err := recordConflicts(recorded, reqs, containerNames(all)); err != nil {
		return nil, fmt.Errorf("publish ports of container %s: %w", containerID, err)
	}
	pub := &Published{}
	fail := func(err error) (*Published, error) {
		return nil, errors.Join(fmt.Errorf("publish ports of container %s: %w", containerID, err), pub.Close())
	}
	// Without a named network, ports go to the container's first network that is not internal
	// (internal networks are not reachable from outside), else its first.
	def := ats[0]
	for _, a := range ats {
		if i := slices.IndexFunc(all, func(n *Network) bool { return n.Name == a.Network }); i >= 0 && !all[i].Internal {
			def = a
			break
		}
	}
	for _, b := range reqs {
		b.ContainerID = containerID
		a := def
		if b.Network != "" {
			i := slices.IndexFunc(ats, func(a *Attachment) bool { return a.Network == b.Network })
			if i < 0 {
				return fail(fmt.Errorf("port %s: container is not on network %s: %w", b, b.Network, ErrNotFound))
			}
			a = ats[i]
		}
		b.Network, b.ContainerIP = a.Network, a.IPv4
		f, port, err := m.holdFree(b, recorded)
		if err != nil {
			return fail(err)
		}
		b.HostPort = port
		pub.Files = append(pub.Files, f)
		pub.Bindings = append(pub.Bindings, b)
		recorded = append(recorded, b)
	}
	if err := m.saveBindings(recorded); err != nil {
		return fail(err)
	}
	if err := m.applyFirewallLocked(m.hostOps()); err != nil {
		_, derr := m.dropBindings(func(b PortBinding) bool { return b.ContainerID == containerID })
		return fail(errors.Join(err, derr))
	}
	m.log.Debug("ports published", "container", containerID, "bindings", len(pub.Bindings))
	return pub, nil
}

// holdFree reserves b's host port; for port 0 it lets the kernel pick one and retries while the
// pick is recorded for another container (whose holder died: the record still stands).
func (m *Manager) holdFree(b PortBinding, recorded []PortBinding) (*os.File, uint16, error) {
	var rejected []*os.File
	defer func() {
		for _, f := range rejected {
			f.Close()
		}
	}()
	for range 64 {
		f, port, err := holdPort(m.netns, b)
		if err != nil {
			return nil, 0, err
		}
		c := b
		c.HostPort = port
		if b.HostPort != 0 || !slices.ContainsFunc(recorded, c.overlaps) {
			return f, port, nil
		}
		rejected = append(rejected, f) // kept open so the kernel does not offer it again
	}
	return nil, 0, fmt.Errorf("choose a free host port for %s: %w", b, ErrExhausted)
}

// UnpublishPorts removes every binding of a container and rebuilds the table. The caller closes
// the reserving sockets afterwards.
func (m *Manager) UnpublishPorts(ctx context.Context, containerID string) error {
	l, err := m.lock()
	if err != nil {
		return err
	}
	defer l.Unlock()
	changed, err := m.dropBindings(func(b PortBinding) bool { return b.ContainerID == containerID })
	if err != nil || !changed {
		return err
	}
	return m.applyFirewallLocked(m.hostOps())
}

// HoldPorts reserves again the host ports recorded for a container, for a container whose
// sockets were closed while its bindings stayed recorded: started again after it exited or
// was stopped, or adopted by a new monitor after its monitor died. A port another process
// bound meanwhile is a conflict naming that process; nothing is left reserved then.
func (m *Manager) HoldPorts(containerID string) (*Published, error) {
	l, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	recorded, err := m.Bindings(containerID)
	if err != nil {
		return nil, err
	}
	pub := &Published{}
	for _, b := range recorded {
		f, _, err := holdPort(m.netns, b)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("hold published ports of container %s: %w", containerID, err), pub.Close())
		}
		pub.Files = append(pub.Files, f)
		pub.Bindings = append(pub.Bindings, b)
	}
	return pub, nil
}
