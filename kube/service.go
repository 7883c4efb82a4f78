package kube

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/stackrun/stack/spec"
)

// service renders one Compose service: its workload (Deployment or StatefulSet), its Service,
// and the findings for what does not carry over.
func (r *renderer) service(s *spec.Service) {
	name := r.svcNames[s.Name]
	if s.Build != nil && (s.Image == "" || s.Image == r.st.Name+"-"+s.Name) {
		r.fail(s.Name, "build", "a cluster cannot build from a local context: set image: to a pushed image")
		return
	}
	labels := map[string]string{LabelService: name}
	pod := r.podSpec(s, name)
	tmpl := PodTemplateSpec{ObjectMeta: ObjectMeta{Labels: r.meta(name, labels).Labels, Annotations: r.podAnnotations(s)}, Spec: pod}
	replicas := int32(max(s.Replicas, 0))
	if s.Replicas == 0 {
		replicas = 1
	}
	selector := &LabelSelector{MatchLabels: map[string]string{LabelProject: dnsLabel(r.st.Name), LabelService: name}}

	claims := r.claimTemplates(s)
	if r.opts.Volumes == VolumesStatefulSet && len(claims) > 0 {
		r.add(&StatefulSet{
			TypeMeta:   TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
			ObjectMeta: r.meta(name, labels),
			Spec: StatefulSetSpec{
				Replicas: &replicas, Selector: selector, Template: tmpl,
				ServiceName: name, VolumeClaimTemplates: claims,
			},
		})
	} else {
		if replicas > 1 && usesNamedVolume(s) {
			r.warn(s.Name, "volumes", "%d replicas share ReadWriteOnce claims: they must run on one node (or use --volumes statefulset)", replicas)
		}
		r.add(&Deployment{
			TypeMeta:   TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
			ObjectMeta: r.meta(name, labels),
			Spec:       DeploymentSpec{Replicas: &replicas, Selector: selector, Template: tmpl},
		})
	}
	r.add(r.kubeService(s, name, labels, selector.MatchLabels))
}

func usesNamedVolume(s *spec.Service) bool {
	return slices.ContainsFunc(s.Mounts, func(m spec.Mount) bool { return m.Type == spec.MountVolume && m.Source != "" })
}

func (r *renderer) podAnnotations(s *spec.Service) map[string]string {
	ann := map[string]string{}
	for k, v := range s.Labels {
		ann[k] = v
	}
	if deps := sortedKeys(s.DependsOn); len(deps) > 0 {
		parts := make([]string, len(deps))
		for i, d := range deps {
			parts[i] = d + " (" + s.DependsOn[d].Condition + ")"
		}
		ann[AnnDependsOn] = strings.Join(parts, ", ") + ": Kubernetes has no start order; init containers wait for each dependency's Service"
	}
	if len(ann) == 0 {
		return nil
	}
	return ann
}

func (r *renderer) podSpec(s *spec.Service, name string) PodSpec {
	c := Container{
		Name:       name,
		Image:      s.Image,
		Command:    s.Entrypoint,
		Args:       s.Command,
		WorkingDir: s.WorkingDir,
		TTY:        s.Tty,
		Stdin:      s.StdinOpen,
		Env:        envVars(s.Environment),
		Ports:      containerPorts(s),
		Resources:  r.resources(s),
	}
	c.SecurityContext = r.securityContext(s)
	if p := probe(s.Healthcheck); p != nil {
		c.ReadinessProbe = p
		live := *p
		c.LivenessProbe = &live
	}
	pod := PodSpec{Containers: []Container{c}, Hostname: dnsLabelOrEmpty(s.Hostname), Subdomain: dnsLabelOrEmpty(s.Domainname)}
	r.mounts(s, &pod)
	pod.InitContainers = r.waitContainers(s)
	if s.StopGracePeriod != nil {
		pod.TerminationGracePeriodSeconds = ptr(int64(math.Ceil(s.StopGracePeriod.Seconds())))
	}
	for _, h := range s.ExtraHosts {
		pod.HostAliases = appendHostAlias(pod.HostAliases, h)
	}
	if len(s.DNS) > 0 || len(s.DNSSearch) > 0 {
		pod.DNSConfig = &PodDNSConfig{Nameservers: s.DNS, Searches: s.DNSSearch}
	}
	if len(s.Sysctls) > 0 {
		psc := &PodSecurityContext{}
		for _, k := range sortedKeys(s.Sysctls) {
			psc.Sysctls = append(psc.Sysctls, Sysctl{Name: k, Value: s.Sysctls[k]})
		}
		pod.SecurityContext = psc
	}
	switch s.Restart.Name {
	case "", "always", "unless-stopped":
	default:
		r.warn(s.Name, "restart", "restart: %s has no Deployment equivalent: Pods are always restarted", s.Restart.Name)
	}
	r.unsupported(s)
	return pod
}

func dnsLabelOrEmpty(s string) string {
	if s == "" {
		return ""
	}
	return dnsLabel(s)
}

func appendHostAlias(list []HostAlias, h spec.ExtraHost) []HostAlias {
	for i := range list {
		if list[i].IP == h.IP {
			list[i].Hostnames = append(list[i].Hostnames, h.Host)
			return list
		}
	}
	return append(list, HostAlias{IP: h.IP, Hostnames: []string{h.Host}})
}

// unsupported reports the keys that change how a container runs under stack but have no
// Kubernetes field; the workload is still rendered.
func (r *renderer) unsupported(s *spec.Service) {
	if s.Resources.PidsLimit > 0 {
		r.warn(s.Name, "pids_limit", "no per-Pod field: the kubelet's --pod-max-pids applies instead")
	}
	if s.Resources.MemorySwap != 0 {
		r.warn(s.Name, "memswap_limit", "swap is configured per node, not per Pod")
	}
	if len(s.Ulimits) > 0 {
		r.warn(s.Name, "ulimits", "Kubernetes has no per-container rlimits: the container runtime's defaults apply")
	}
	if s.StopSignal != "" {
		r.warn(s.Name, "stop_signal", "Pods are stopped with SIGTERM unless the image's STOPSIGNAL says otherwise; set it in the image")
	}
	if s.Init {
		r.warn(s.Name, "init", "no init process is injected: use an image with its own init (tini) if the process does not reap children")
	}
	if s.ShmSize > 0 {
		r.warn(s.Name, "shm_size", "rendered as a memory-backed emptyDir at /dev/shm with this size limit")
	}
	if s.Logging != nil && s.Logging.Driver != "" && s.Logging.Driver != "json-file" {
		r.warn(s.Name, "logging", "logging driver %q: the cluster's log collection applies", s.Logging.Driver)
	}
	if s.ContainerName != "" {
		r.warn(s.Name, "container_name", "Pod names are generated; the Service name %q stays stable", r.svcNames[s.Name])
	}
	for _, n := range sortedKeys(s.Networks) {
		sn := s.Networks[n]
		if sn == nil {
			continue
		}
		if len(sn.Aliases) > 0 {
			r.warn(s.Name, "networks."+n+".aliases", "aliases are not rendered: only the Service name %q resolves", r.svcNames[s.Name])
		}
		if sn.IPv4Address != "" {
			r.warn(s.Name, "networks."+n+".ipv4_address", "Pod addresses are assigned by the cluster")
		}
	}
	if len(s.Networks) > 1 {
		r.warn(s.Name, "networks", "all networks are flattened into the namespace's one Pod network")
	}
}

func envVars(env map[string]string) []EnvVar {
	var out []EnvVar
	for _, k := range sortedKeys(env) {
		out = append(out, EnvVar{Name: k, Value: env[k]})
	}
	return out
}

// containerPorts lists every port the container listens on: published targets and expose.
func containerPorts(s *spec.Service) []ContainerPort {
	seen := map[string]bool{}
	var out []ContainerPort
	for _, p := range append(slices.Clone(s.Ports), s.Expose...) {
		key := portName(p.Protocol, p.Target)
		if seen[key] || p.Target == 0 {
			continue
		}
		seen[key] = true
		out = append(out, ContainerPort{Name: shortPortName(p), ContainerPort: int32(p.Target), Protocol: protocol(p.Protocol)})
	}
	return out
}

// shortPortName fits IANA_SVC_NAME (at most 15 characters), which container port names must be.
func shortPortName(p spec.Port) string {
	proto := "tcp"
	if strings.EqualFold(p.Protocol, "udp") {
		proto = "udp"
	}
	return proto + strconv.Itoa(int(p.Target))
}

// kubeService gives every Compose service a Service of the same name, so service names keep
// resolving: published ports as NodePort or LoadBalancer, other ports as ClusterIP, and a
// headless Service when the service declares no port at all.
func (r *renderer) kubeService(s *spec.Service, name string, labels, selector map[string]string) *Service {
	svc := &Service{
		TypeMeta:   TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: r.meta(name, labels),
		Spec:       ServiceSpec{Selector: selector, Type: ServiceTypeClusterIP},
	}
	published := false
	seen := map[string]bool{}
	for _, p := range s.Ports {
		port := p.Published
		if port == 0 {
			port = p.Target
		}
		key := portName(p.Protocol, port)
		if seen[key] {
			continue
		}
		seen[key] = true
		published = true
		if p.HostIP != "" {
			r.warn(s.Name, "ports", "host IP %s is not rendered: the Service listens on every node address", p.HostIP)
		}
		svc.Spec.Ports = append(svc.Spec.Ports, ServicePort{
			Name: shortPortNameFor(p.Protocol, port), Port: int32(port), TargetPort: int32(p.Target), Protocol: protocol(p.Protocol),
		})
	}
	for _, p := range s.Expose {
		key := portName(p.Protocol, p.Target)
		if seen[key] {
			continue
		}
		seen[key] = true
		svc.Spec.Ports = append(svc.Spec.Ports, ServicePort{
			Name: shortPortName(p), Port: int32(p.Target), TargetPort: int32(p.Target), Protocol: protocol(p.Protocol),
		})
	}
	switch {
	case published && r.opts.Publish == PublishLoadBalancer:
		svc.Spec.Type = ServiceTypeLoadBalancer
	case published:
		svc.Spec.Type = ServiceTypeNodePort
		r.warn(s.Name, "ports", "published ports become a NodePort Service: the node port is chosen by the cluster (30000-32767), not the published number")
	case len(svc.Spec.Ports) == 0:
		svc.Spec.ClusterIP = ClusterIPNone
	}
	return svc
}

func shortPortNameFor(proto string, port uint16) string {
	return shortPortName(spec.Port{Protocol: proto, Target: port})
}

func (r *renderer) resources(s *spec.Service) ResourceRequirements {
	var rr ResourceRequirements
	set := func(l *ResourceList, n string, q Quantity) {
		if *l == nil {
			*l = ResourceList{}
		}
		(*l)[n] = q
	}
	res := s.Resources
	if res.MemoryLimit > 0 {
		set(&rr.Limits, ResourceMemory, bytesQuantity(res.MemoryLimit))
	}
	if res.CPUs > 0 {
		set(&rr.Limits, ResourceCPU, milliCPU(int64(math.Round(res.CPUs*1000))))
	}
	if res.MemoryReservation > 0 {
		set(&rr.Requests, ResourceMemory, bytesQuantity(res.MemoryReservation))
	}
	if res.CPUShares > 0 {
		// cpu_shares is relative weight, 1024 = one cpu's worth; a request expresses the same
		// weight to the scheduler and the kernel (the kubelet turns requests back into shares).
		set(&rr.Requests, ResourceCPU, milliCPU(max(res.CPUShares*1000/1024, 1)))
	}
	return rr
}

func (r *renderer) securityContext(s *spec.Service) *SecurityContext {
	sc := &SecurityContext{}
	used := false
	if s.User != "" {
		user, group, _ := strings.Cut(s.User, ":")
		if uid, err := strconv.ParseInt(user, 10, 64); err == nil {
			sc.RunAsUser = ptr(uid)
			used = true
		} else {
			r.warn(s.Name, "user", "user %q is a name: Kubernetes needs a numeric uid, the image's default user applies", user)
		}
		if group != "" {
			if gid, err := strconv.ParseInt(group, 10, 64); err == nil {
				sc.RunAsGroup = ptr(gid)
				used = true
			} else {
				r.warn(s.Name, "user", "group %q is a name: Kubernetes needs a numeric gid", group)
			}
		}
	}
	if s.Privileged {
		sc.Privileged = ptr(true)
		used = true
	}
	if s.ReadOnly {
		sc.ReadOnlyRootFilesystem = ptr(true)
		used = true
	}
	if len(s.CapAdd) > 0 || len(s.CapDrop) > 0 {
		sc.Capabilities = &Capabilities{Add: capNames(s.CapAdd), Drop: capNames(s.CapDrop)}
		used = true
	}
	if !used {
		return nil
	}
	return sc
}

func capNames(caps []string) []string {
	var out []string
	for _, c := range caps {
		out = append(out, strings.TrimPrefix(strings.ToUpper(c), "CAP_"))
	}
	return out
}

// probe turns a healthcheck into an exec probe; the same probe serves readiness (so a
// Service only sends traffic to healthy Pods, as service_healthy gates dependents) and liveness.
func probe(h *spec.Healthcheck) *Probe {
	if h == nil || h.Disable || len(h.Test) == 0 {
		return nil
	}
	var cmd []string
	switch h.Test[0] {
	case "CMD":
		cmd = h.Test[1:]
	case "CMD-SHELL":
		cmd = []string{"/bin/sh", "-c", strings.Join(h.Test[1:], " ")}
	default:
		cmd = h.Test
	}
	p := &Probe{Exec: &ExecAction{Command: cmd}}
	if h.Interval > 0 {
		p.PeriodSeconds = seconds(h.Interval)
	}
	if h.Timeout > 0 {
		p.TimeoutSeconds = seconds(h.Timeout)
	}
	if h.Retries > 0 {
		p.FailureThreshold = int32(h.Retries)
	}
	if h.StartPeriod > 0 {
		p.InitialDelaySeconds = seconds(h.StartPeriod)
	}
	return p
}

// waitContainers makes one init container per dependency that waits until the dependency's
// Service answers: Kubernetes starts all Pods at once, and readiness (from the healthcheck) is
// what makes a Service answer, so this carries service_started and service_healthy over.
func (r *renderer) waitContainers(s *spec.Service) []Container {
	var out []Container
	for _, dep := range sortedKeys(s.DependsOn) {
		d := s.DependsOn[dep]
		target, ok := r.st.Services[dep]
		if !ok {
			continue // not enabled (profiles); compose-go already checked required ones
		}
		if d.Condition == spec.ConditionCompletedSuccessful {
			r.warn(s.Name, "depends_on."+dep, "service_completed_successfully has no Pod equivalent: run %s as a Job before applying", dep)
			continue
		}
		host := r.svcNames[dep]
		script := fmt.Sprintf("until nslookup %s >/dev/null 2>&1; do echo waiting for %s; sleep 2; done", host, host)
		if ports := containerPorts(target); len(ports) > 0 && ports[0].Protocol == ProtocolTCP {
			script = fmt.Sprintf("until nc -z %s %d; do echo waiting for %s; sleep 2; done", host, servicePort(target), host)
		}
		out = append(out, Container{
			Name:    "wait-for-" + host,
			Image:   r.opts.WaitImage,
			Command: []string{"sh", "-c", script},
		})
	}
	return out
}

// servicePort is the first port the dependency's Service listens on (published port when
// published, as kubeService renders it).
func servicePort(s *spec.Service) uint16 {
	for _, p := range s.Ports {
		if p.Published != 0 {
			return p.Published
		}
		return p.Target
	}
	return s.Expose[0].Target
}
