package compose

import (
	"maps"

	"github.com/stackrun/stack/spec"

	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// MinMemory is the smallest memory limit stack accepts: below it the container init itself
// cannot start (Docker uses the same floor).
const MinMemory = 6 << 20

// hostLabel is one DNS label (RFC 1123): what a service name must be so that other services can
// resolve it.
var hostLabel = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$`)

// validate checks what compose-go does not (or what stack checks itself to report every
// problem at once instead of the first).
func validate(st *spec.Stack, p *types.Project, c *collector, numCPU int) {
	if numCPU <= 0 {
		numCPU = runtime.NumCPU()
	}
	for _, name := range st.ServiceNames() {
		svc := st.Services[name]
		sc := p.Services[name]
		key := "services." + name
		if !hostLabel.MatchString(name) {
			c.errorf(key, "service name %q cannot be a hostname: use letters, digits and '-', at most 63, not starting or ending with '-'", name)
		}
		if svc.Hostname != "" && !validHostname(svc.Hostname) {
			c.errorf(key+".hostname", "%q is not a valid hostname", svc.Hostname)
		}
		if sc.Image == "" && sc.Build == nil {
			c.errorf(key, "service has neither image nor build")
		}
		if sc.Build != nil && sc.Build.Dockerfile != "" && sc.Build.DockerfileInline != "" {
			c.errorf(key+".build", "dockerfile and dockerfile_inline are mutually exclusive")
		}
		if sc.ContainerName != "" && svc.Replicas > 1 {
			c.errorf(key+".container_name", "container_name %q cannot be used with %d replicas: names must be unique", sc.ContainerName, svc.Replicas)
		}
		if sc.Scale != nil && sc.Deploy != nil && sc.Deploy.Replicas != nil && *sc.Scale != *sc.Deploy.Replicas {
			c.errorf(key+".scale", "scale (%d) and deploy.replicas (%d) differ", *sc.Scale, *sc.Deploy.Replicas)
		}
		if svc.Replicas < 0 {
			c.errorf(key+".scale", "replicas must be >= 0")
		}
		validateResources(svc, sc, key, c, numCPU)
		validateNetworks(st, svc, sc, key, c)
		validateDepends(p, svc, key, c)
		if h := sc.HealthCheck; h != nil && len(h.Test) > 0 {
			switch h.Test[0] {
			case "CMD", "CMD-SHELL", "NONE":
			default:
				c.errorf(key+".healthcheck.test", "healthcheck test must start with CMD, CMD-SHELL or NONE")
			}
		}
		for i, eh := range svc.ExtraHosts {
			if eh.IP == "host-gateway" {
				continue
			}
			if _, err := netip.ParseAddr(strings.Trim(eh.IP, "[]")); err != nil {
				c.errorf(key+".extra_hosts["+strconv.Itoa(i)+"]", "extra host %s: %q is not an IP address", eh.Host, eh.IP)
			}
		}
	}
	validateCycles(st, c)
	validatePublished(st, c)
	validateUnique(st, c)
	validateNames(st, c)
	for _, name := range slices.Sorted(maps.Keys(st.Networks)) {
		validateNetwork(st.Networks[name], c)
	}
}

func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, l := range strings.Split(h, ".") {
		if !hostLabel.MatchString(l) {
			return false
		}
	}
	return true
}

// writtenKey returns the first of keys written in the files, for problems whose value may come
// from either of two spellings (mem_limit or deploy.resources.limits.memory).
func writtenKey(c *collector, keys ...string) string {
	for _, k := range keys {
		if _, ok := c.pos.exact(k, 0); ok {
			return k
		}
	}
	return keys[0]
}

func validateResources(svc *spec.Service, sc types.ServiceConfig, key string, c *collector, numCPU int) {
	r := svc.Resources
	memKey := writtenKey(c, key+".deploy.resources.limits.memory", key+".mem_limit")
	if r.MemoryLimit < 0 {
		c.errorf(memKey, "memory limit must not be negative")
	} else if r.MemoryLimit > 0 && r.MemoryLimit < MinMemory {
		c.errorf(memKey, "memory limit %s is below the minimum of 6 MiB", humanBytes(r.MemoryLimit))
	}
	if r.MemoryReservation > 0 && r.MemoryLimit > 0 && r.MemoryReservation > r.MemoryLimit {
		c.errorf(writtenKey(c, key+".deploy.resources.reservations.memory", key+".mem_reservation"),
			"memory reservation %s is above the memory limit %s", humanBytes(r.MemoryReservation), humanBytes(r.MemoryLimit))
	}
	if r.MemorySwap != 0 && r.MemorySwap != -1 {
		switch {
		case r.MemoryLimit == 0:
			c.errorf(key+".memswap_limit", "memswap_limit needs a memory limit (mem_limit)")
		case r.MemorySwap < r.MemoryLimit:
			c.errorf(key+".memswap_limit", "memswap_limit %s is below the memory limit %s (it counts memory plus swap)", humanBytes(r.MemorySwap), humanBytes(r.MemoryLimit))
		}
	}
	if sc.MemLimit != 0 && sc.Deploy != nil && sc.Deploy.Resources.Limits != nil && sc.Deploy.Resources.Limits.MemoryBytes != 0 &&
		sc.MemLimit != sc.Deploy.Resources.Limits.MemoryBytes {
		c.errorf(key+".mem_limit", "mem_limit and deploy.resources.limits.memory differ")
	}
	cpuKey := writtenKey(c, key+".deploy.resources.limits.cpus", key+".cpus")
	switch {
	case r.CPUs < 0:
		c.errorf(cpuKey, "cpus must not be negative")
	case r.CPUs > float64(numCPU):
		c.errorf(cpuKey, "cpus %g is more than the %d CPUs of this host", r.CPUs, numCPU)
	}
	if sc.CPUS != 0 && sc.Deploy != nil && sc.Deploy.Resources.Limits != nil && sc.Deploy.Resources.Limits.NanoCPUs != 0 &&
		sc.CPUS != float32(sc.Deploy.Resources.Limits.NanoCPUs) {
		c.errorf(key+".cpus", "cpus and deploy.resources.limits.cpus differ")
	}
	if r.CPUShares < 0 || r.CPUShares == 1 || r.CPUShares > 262144 {
		c.errorf(key+".cpu_shares", "cpu_shares %d is not in 2-262144", r.CPUShares)
	}
	if r.PidsLimit < -1 {
		c.errorf(writtenKey(c, key+".deploy.resources.limits.pids", key+".pids_limit"), "pids limit %d is not -1 (unlimited) or positive", r.PidsLimit)
	}
	if svc.ShmSize < 0 {
		c.errorf(key+".shm_size", "shm_size must not be negative")
	}
}

func humanBytes(b int64) string {
	switch {
	case b >= 1<<30 && b%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", b>>30)
	case b >= 1<<20 && b%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", b>>20)
	case b >= 1<<10 && b%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", b>>10)
	}
	return fmt.Sprintf("%dB", b)
}

func validateNetworks(st *spec.Stack, svc *spec.Service, sc types.ServiceConfig, key string, c *collector) {
	if sc.NetworkMode != "" && len(sc.Networks) > 0 {
		c.errorf(key+".network_mode", "network_mode and networks are mutually exclusive")
	}
	for _, name := range slices.Sorted(maps.Keys(svc.Networks)) {
		nkey := key + ".networks." + name
		n, ok := st.Networks[name]
		if !ok {
			c.errorf(nkey, "network %q is not defined in the top-level networks", name)
			continue
		}
		sn := svc.Networks[name]
		for i, a := range sn.Aliases {
			if !validHostname(a) {
				c.errorf(nkey+".aliases["+strconv.Itoa(i)+"]", "alias %q is not a valid hostname", a)
			}
		}
		if sn.IPv4Address == "" {
			continue
		}
		akey := nkey + ".ipv4_address"
		addr, err := netip.ParseAddr(sn.IPv4Address)
		if err != nil || !addr.Is4() {
			c.errorf(akey, "%q is not an IPv4 address", sn.IPv4Address)
			continue
		}
		if svc.Replicas > 1 {
			c.errorf(akey, "a fixed address cannot be given to %d replicas", svc.Replicas)
		}
		if n.External {
			continue
		}
		pfx, err := netip.ParsePrefix(n.Subnet)
		if err != nil {
			c.errorf(akey, "a fixed address needs a subnet on network %s (networks.%s.ipam.config[0].subnet)", name, name)
			continue
		}
		if !pfx.Contains(addr) {
			c.errorf(akey, "address %s is not in the subnet %s of network %s", addr, pfx, name)
		}
	}
}

func validateNetwork(n *spec.Network, c *collector) {
	key := "networks." + n.Key
	if n.Subnet == "" {
		if n.Gateway != "" {
			c.errorf(key+".ipam.config[0].gateway", "gateway needs a subnet")
		}
		return
	}
	pfx, err := netip.ParsePrefix(n.Subnet)
	if err != nil || !pfx.Addr().Is4() {
		c.errorf(key+".ipam.config[0].subnet", "subnet %q is not an IPv4 CIDR (like 10.5.0.0/24)", n.Subnet)
		return
	}
	if pfx.Masked() != pfx {
		c.errorf(key+".ipam.config[0].subnet", "subnet %s has host bits set (did you mean %s?)", pfx, pfx.Masked())
	}
	if pfx.Bits() > 30 {
		c.errorf(key+".ipam.config[0].subnet", "subnet %s is too small: /30 at most", pfx)
	}
	if n.Gateway != "" {
		gw, err := netip.ParseAddr(n.Gateway)
		if err != nil || !pfx.Contains(gw) {
			c.errorf(key+".ipam.config[0].gateway", "gateway %s is not in the subnet %s", n.Gateway, pfx)
		}
	}
}

// checkBindEscape rejects a bind source written as a relative path that climbs out of the
// project directory with "..": a stack file checked out from git must not reach into the rest of
// the host by accident. An absolute source is an explicit choice and is accepted.
func checkBindEscape(workingDir string, m spec.Mount, mkey string, c *collector) {
	key := mkey + ".source"
	raw, ok := c.pos.raw(key)
	if !ok {
		key = mkey
		raw, ok = c.pos.raw(key)
		if ok {
			raw, _, _ = strings.Cut(raw, ":")
		}
	}
	if !ok || raw == "" || filepath.IsAbs(raw) || strings.HasPrefix(raw, "~") || strings.Contains(raw, "$") {
		return
	}
	if !slices.Contains(strings.Split(filepath.ToSlash(raw), "/"), "..") {
		return
	}
	rel, err := filepath.Rel(workingDir, m.Source)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		c.errorf(key, "bind source %s escapes the project directory %s; write an absolute path if that is intended", raw, workingDir)
	}
}

func validateDepends(p *types.Project, svc *spec.Service, key string, c *collector) {
	for _, dep := range slices.Sorted(maps.Keys(svc.DependsOn)) {
		d := svc.DependsOn[dep]
		dkey := key + ".depends_on." + dep
		if _, ok := p.Services[dep]; ok {
			switch d.Condition {
			case spec.ConditionStarted, spec.ConditionHealthy, spec.ConditionCompletedSuccessful:
			default:
				c.errorf(dkey, "condition %q is not one of %s, %s, %s", d.Condition, spec.ConditionStarted, spec.ConditionHealthy, spec.ConditionCompletedSuccessful)
			}
			continue
		}
		if !d.Required {
			delete(svc.DependsOn, dep) // an optional dependency on a service that is not there
			continue
		}
		if _, ok := p.DisabledServices[dep]; ok {
			c.errorf(dkey, "depends on service %q, which is not enabled by the active profiles", dep)
			continue
		}
		c.errorf(dkey, "depends on service %q, which is not defined", dep)
	}
}

// validateCycles reports each depends_on cycle once, naming it (a -> b -> a), at the first edge.
func validateCycles(st *spec.Stack, c *collector) {
	const (
		unvisited = iota
		active
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(n string)
	visit = func(n string) {
		state[n] = active
		stack = append(stack, n)
		svc := st.Services[n]
		for _, dep := range slices.Sorted(maps.Keys(svc.DependsOn)) {
			if _, ok := st.Services[dep]; !ok {
				continue
			}
			switch state[dep] {
			case active:
				i := slices.Index(stack, dep)
				cycle := append(slices.Clone(stack[i:]), dep)
				c.errorf("services."+n+".depends_on."+dep, "dependency cycle: %s", strings.Join(cycle, " -> "))
			case unvisited:
				visit(dep)
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
	}
	for _, n := range st.ServiceNames() {
		if state[n] == unvisited {
			visit(n)
		}
	}
}

// validatePublished reports a host port published twice on overlapping addresses (the same IP,
// or either on all addresses), and a fixed host port on a service with several replicas.
func validatePublished(st *spec.Stack, c *collector) {
	type owner struct {
		service string
		ip      string
	}
	taken := map[string][]owner{} // "8080/tcp" -> owners
	for _, name := range st.ServiceNames() {
		svc := st.Services[name]
		for i, p := range svc.Ports {
			if p.Published == 0 {
				continue
			}
			k := c.portRefs[name][i]
			if svc.Replicas > 1 {
				c.portErrorf(k, "host port %d cannot be published by %d replicas: leave the host port out or use one replica", p.Published, svc.Replicas)
			}
			pk := strconv.Itoa(int(p.Published)) + "/" + p.Protocol
			for _, o := range taken[pk] {
				if o.ip == p.HostIP || isWildcard(o.ip) || isWildcard(p.HostIP) {
					what := fmt.Sprintf("host port %d", p.Published)
					if p.Protocol != "tcp" {
						what += "/" + p.Protocol
					}
					c.portErrorf(k, "%s already published by services.%s", what, o.service)
					break
				}
			}
			taken[pk] = append(taken[pk], owner{service: name, ip: p.HostIP})
		}
	}
}

// validateUnique reports container names and fixed addresses used by two services, and a fixed
// address equal to its network's gateway.
func validateUnique(st *spec.Stack, c *collector) {
	names := map[string]string{}
	addrs := map[string]string{} // network/address -> service
	for _, name := range st.ServiceNames() {
		svc := st.Services[name]
		if cn := svc.ContainerName; cn != "" {
			if other, ok := names[cn]; ok {
				c.errorf("services."+name+".container_name", "container_name %q is already used by services.%s", cn, other)
			}
			names[cn] = name
		}
		for _, net := range slices.Sorted(maps.Keys(svc.Networks)) {
			ip := svc.Networks[net].IPv4Address
			if ip == "" {
				continue
			}
			key := "services." + name + ".networks." + net + ".ipv4_address"
			if n, ok := st.Networks[net]; ok && n.Gateway != "" && n.Gateway == ip {
				c.errorf(key, "address %s is the gateway of network %s", ip, net)
			}
			if other, ok := addrs[net+"/"+ip]; ok {
				c.errorf(key, "address %s on network %s is already given to services.%s", ip, net, other)
			}
			addrs[net+"/"+ip] = name
		}
	}
}

func isWildcard(ip string) bool { return ip == "" || ip == "0.0.0.0" || ip == "::" }
