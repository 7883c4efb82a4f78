package compose

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/schema"
	"github.com/compose-spec/compose-go/v2/tree"
)

// KeySupport says what stack does with a Compose key.
type KeySupport int

const (
	// KeyUnsupported keys change how a container runs and stack does not implement them: using
	// one is an error, so a stack never silently runs differently from what the file says.
	KeyUnsupported KeySupport = iota
	// KeyIgnored keys are informational or only mean something to another engine (swarm,
	// Windows): they are accepted with a warning.
	KeyIgnored
	// KeySupported keys are implemented.
	KeySupported
)

func (k KeySupport) String() string {
	switch k {
	case KeySupported:
		return "supported"
	case KeyIgnored:
		return "ignored (warning)"
	default:
		return "unsupported (error)"
	}
}

// KeyRule is stack's support for one Compose key path (tree.Path syntax: * any map key, [] any
// list item). A rule covers its descendants unless a longer rule says otherwise.
type KeyRule struct {
	Path    string
	Support KeySupport
	Note    string
	// Exact rules cover their own key only, not its descendants: a map of user-named entries
	// (services.*) is supported without its unknown children becoming supported.
	Exact bool
}

// KeyRules is the table of what stack implements. Every key of the Compose specification that
// no rule covers is unsupported: new keys in the specification are errors until stack decides.
func KeyRules() []KeyRule {
	const S, I, U = KeySupported, KeyIgnored, KeyUnsupported
	svc := func(path string, s KeySupport, note string) KeyRule {
		return KeyRule{Path: "services.*." + path, Support: s, Note: note}
	}
	exact := func(path string) KeyRule { return KeyRule{Path: path, Support: S, Exact: true} }
	return []KeyRule{
		{Path: "name", Support: S},
		{Path: "include", Support: S},
		{Path: "version", Support: I, Note: "obsolete"},
		exact("services"),
		exact("services.*"),
		svc("annotations", I, "OCI annotations are not set"),
		svc("attach", I, "logs of every service are always collected"),
		svc("blkio_config", U, ""),
		svc("build", S, "built by stack's image builder"),
		svc("build.additional_contexts", U, ""),
		svc("build.cache_from", I, "no external build cache"),
		svc("build.cache_to", I, "no external build cache"),
		svc("build.entitlements", U, ""),
		svc("build.extra_hosts", U, ""),
		svc("build.isolation", I, "Windows only"),
		svc("build.no_cache_filter", I, ""),
		svc("build.platforms", I, "builds for the host platform"),
		svc("build.privileged", U, ""),
		svc("build.provenance", I, "no attestations"),
		svc("build.sbom", I, "no attestations"),
		svc("build.secrets", U, "build secrets are not supported yet"),
		svc("build.shm_size", U, ""),
		svc("build.ssh", U, ""),
		svc("build.ulimits", U, ""),
		svc("cap_add", S, ""),
		svc("cap_drop", S, ""),
		svc("cgroup", U, ""),
		svc("cgroup_parent", U, ""),
		svc("command", S, ""),
		svc("configs", U, "configs are not supported yet"),
		svc("container_name", S, ""),
		svc("cpu_count", U, "use cpus"),
		svc("cpu_percent", U, "use cpus"),
		svc("cpu_period", U, "use cpus"),
		svc("cpu_quota", U, "use cpus"),
		svc("cpu_rt_period", U, ""),
		svc("cpu_rt_runtime", U, ""),
		svc("cpu_shares", S, ""),
		svc("cpus", S, ""),
		svc("cpuset", U, ""),
		svc("credential_spec", I, "Windows only"),
		svc("depends_on", S, ""),
		svc("deploy", S, ""),
		svc("deploy.endpoint_mode", I, "swarm only"),
		svc("deploy.labels", I, "swarm service labels; use labels"),
		svc("deploy.mode", S, "replicated only; global is ignored"),
		svc("deploy.placement", I, "single host"),
		svc("deploy.replicas", S, ""),
		svc("deploy.resources", S, ""),
		svc("deploy.resources.reservations.cpus", I, "no CPU reservations; use cpu_shares"),
		svc("deploy.resources.reservations.devices", U, "no device requests"),
		svc("deploy.resources.reservations.generic_resources", U, ""),
		svc("deploy.restart_policy", S, ""),
		svc("deploy.restart_policy.delay", I, "stack's restart backoff is used"),
		svc("deploy.restart_policy.window", I, "stack's restart backoff is used"),
		svc("deploy.rollback_config", I, "swarm only"),
		svc("deploy.update_config", I, "swarm only"),
		svc("develop", I, "no watch mode"),
		svc("device_cgroup_rules", U, ""),
		svc("devices", U, "device nodes are not supported yet"),
		svc("dns", S, ""),
		svc("dns_opt", S, ""),
		svc("dns_search", S, ""),
		svc("domainname", S, ""),
		svc("entrypoint", S, ""),
		svc("env_file", S, ""),
		svc("environment", S, ""),
		svc("expose", S, ""),
		svc("extends", S, ""),
		svc("external_links", U, ""),
		svc("extra_hosts", S, ""),
		svc("gpus", U, ""),
		svc("group_add", U, ""),
		svc("healthcheck", S, ""),
		svc("hostname", S, ""),
		svc("image", S, ""),
		svc("init", S, ""),
		svc("ipc", U, "containers always get a private IPC namespace"),
		svc("isolation", I, "Windows only"),
		svc("label_file", S, ""),
		svc("labels", S, ""),
		svc("links", I, "services reach each other by name; link aliases are not created"),
		svc("logging", S, "logs go to stack's log files; driver and options are informational"),
		svc("mac_address", U, ""),
		svc("mem_limit", S, ""),
		svc("mem_reservation", S, ""),
		svc("mem_swappiness", U, ""),
		svc("memswap_limit", S, ""),
		svc("models", U, ""),
		svc("network_mode", S, "none only"),
		svc("networks", S, ""),
		svc("networks.*.driver_opts", U, ""),
		svc("networks.*.gw_priority", I, ""),
		svc("networks.*.interface_name", U, ""),
		svc("networks.*.ipv6_address", U, "no IPv6"),
		svc("networks.*.link_local_ips", U, ""),
		svc("networks.*.mac_address", U, ""),
		svc("networks.*.priority", I, ""),
		svc("networks.*.use_service_name_alias", U, ""),
		svc("oom_kill_disable", U, ""),
		svc("oom_score_adj", U, ""),
		svc("pid", U, "containers always get a private PID namespace"),
		svc("pids_limit", S, ""),
		svc("platform", I, "images for the host platform are used"),
		svc("ports", S, ""),
		svc("ports.[].app_protocol", I, ""),
		svc("ports.[].name", I, ""),
		svc("post_start", U, "lifecycle hooks are not supported yet"),
		svc("pre_start", U, "lifecycle hooks are not supported yet"),
		svc("pre_stop", U, "lifecycle hooks are not supported yet"),
		svc("privileged", S, ""),
		svc("profiles", S, ""),
		svc("provider", U, ""),
		svc("pull_policy", S, ""),
		svc("pull_refresh_after", I, ""),
		svc("read_only", S, ""),
		svc("restart", S, ""),
		svc("runtime", U, "use stack's --runtime flag"),
		svc("scale", S, ""),
		svc("secrets", U, "secrets are not supported yet"),
		svc("security_opt", U, ""),
		svc("shm_size", S, ""),
		svc("stdin_open", S, ""),
		svc("stop_grace_period", S, ""),
		svc("stop_signal", S, ""),
		svc("storage_opt", U, ""),
		svc("sysctls", S, ""),
		svc("tmpfs", S, ""),
		svc("tty", S, ""),
		svc("ulimits", S, ""),
		svc("umask", U, ""),
		svc("use_api_socket", U, ""),
		svc("user", S, ""),
		svc("userns_mode", U, ""),
		svc("uts", U, ""),
		svc("volumes", S, ""),
		svc("volumes.[].bind.recursive", U, ""),
		svc("volumes.[].bind.selinux", U, "no SELinux relabeling"),
		svc("volumes.[].consistency", I, "macOS only"),
		svc("volumes.[].image", U, ""),
		svc("volumes.[].volume.labels", I, ""),
		svc("volumes.[].volume.subpath", U, ""),
		svc("volumes_from", U, ""),
		svc("working_dir", S, ""),
		exact("networks"),
		exact("networks.*"),
		{Path: "networks.*.attachable", Support: I, Note: "swarm only"},
		{Path: "networks.*.driver", Support: S, Note: "bridge only"},
		{Path: "networks.*.driver_opts", Support: U},
		{Path: "networks.*.enable_ipv4", Support: S},
		{Path: "networks.*.enable_ipv6", Support: S, Note: "false only"},
		{Path: "networks.*.external", Support: S},
		{Path: "networks.*.internal", Support: S},
		{Path: "networks.*.ipam", Support: S, Note: "one IPv4 subnet and gateway"},
		{Path: "networks.*.labels", Support: S},
		{Path: "networks.*.name", Support: S},
		{Path: "networks.*.ipam.config.[].aux_addresses", Support: U, Note: ""},
		{Path: "networks.*.ipam.config.[].ip_range", Support: U, Note: ""},
		{Path: "networks.*.ipam.driver", Support: S, Note: "default only"},
		{Path: "networks.*.ipam.options", Support: U, Note: ""},
		exact("volumes"),
		exact("volumes.*"),
		{Path: "volumes.*.driver", Support: S, Note: "local only"},
		{Path: "volumes.*.driver_opts", Support: U},
		{Path: "volumes.*.external", Support: S},
		{Path: "volumes.*.labels", Support: S},
		{Path: "volumes.*.name", Support: S},
		{Path: "secrets", Support: U, Note: "secrets are not supported yet"},
		{Path: "configs", Support: U, Note: "configs are not supported yet"},
		{Path: "models", Support: U, Note: ""},
		{Path: "jobs", Support: U, Note: "jobs are not supported yet"},
	}
}

// ruleFor returns the most specific rule covering path, and whether one does.
func ruleFor(rules []KeyRule, path tree.Path) (KeyRule, bool) {
	parts := path.Parts()
	best, bestLen := KeyRule{}, -1
	for _, r := range rules {
		rp := strings.Split(r.Path, ".")
		if len(rp) > len(parts) || len(rp) <= bestLen || r.Exact && len(rp) != len(parts) {
			continue
		}
		if matchParts(parts[:len(rp)], rp) {
			best, bestLen = r, len(rp)
		}
	}
	return best, bestLen >= 0
}

// matchParts is tree.Path.Matches on paths already split: each pattern part is the part
// itself or tree.PathMatchAll.
func matchParts(parts, pattern []string) bool {
	if len(parts) != len(pattern) {
		return false
	}
	for i, p := range pattern {
		if p != tree.PathMatchAll && p != parts[i] {
			return false
		}
	}
	return true
}

// supportOf is the support of path: its rule's, or unsupported when no rule covers it.
func supportOf(rules []KeyRule, path tree.Path) KeySupport {
	if r, ok := ruleFor(rules, path); ok {
		return r.Support
	}
	return KeyUnsupported
}

// supportedPaths is the allowlist given to compose-go: every attribute of the specification
// that stack implements. It is derived from two constant tables (KeyRules and compose-go's
// schema), so it is computed once per process; callers must not modify the slice.
var supportedPaths = sync.OnceValue(computeSupportedPaths)

func computeSupportedPaths() []tree.Path {
	type split struct {
		parts []string
		rule  KeyRule
	}
	var rules []split
	for _, r := range KeyRules() {
		rules = append(rules, split{strings.Split(r.Path, "."), r})
	}
	var out []tree.Path
	for _, p := range schema.AttributePaths() {
		parts := p.Parts()
		support, bestLen := KeyUnsupported, -1
		for _, r := range rules {
			n := len(r.parts)
			if n > len(parts) || n <= bestLen || r.rule.Exact && n != len(parts) {
				continue
			}
			if matchParts(parts[:n], r.parts) {
				support, bestLen = r.rule.Support, n
			}
		}
		if support == KeySupported {
			out = append(out, p)
		}
	}
	return out
}

// valueRule flags a supported key whose value stack does not implement.
type valueRule struct {
	Path    string
	Support KeySupport // KeyUnsupported (error) or KeyIgnored (warning) when Flag is true
	Flag    func(v any) (message string, flagged bool)
}

func valueRules() []valueRule {
	str := func(v any) string { s, _ := v.(string); return s }
	notIn := func(what string, allowed ...string) func(v any) (string, bool) {
		return func(v any) (string, bool) {
			s := str(v)
			for _, a := range allowed {
				if s == a {
					return "", false
				}
			}
			return fmt.Sprintf("%s %q is not supported (supported: %s)", what, s, strings.Join(allowed[1:], ", ")), true
		}
	}
	return []valueRule{
		{"services.*.network_mode", KeyUnsupported, notIn("network_mode", "", "none", "default")},
		{"services.*.deploy.mode", KeyIgnored, func(v any) (string, bool) {
			return "deploy.mode global is ignored: one host, replicas as given", str(v) == "global"
		}},
		{"services.*.ports.[].mode", KeyIgnored, func(v any) (string, bool) {
			return "port mode host is ignored: ports are published on this host", str(v) == "host"
		}},
		{"services.*.volumes.[].type", KeyUnsupported, notIn("volume type", "", "volume", "bind", "tmpfs")},
		{"services.*.logging.driver", KeyIgnored, func(v any) (string, bool) {
			s := str(v)
			return fmt.Sprintf("logging driver %q is ignored: logs go to stack's log files", s), s != "" && s != "json-file" && s != "local"
		}},
		{"networks.*.driver", KeyUnsupported, notIn("network driver", "", "bridge")},
		{"networks.*.enable_ipv6", KeyUnsupported, func(v any) (string, bool) {
			b, _ := v.(bool)
			return "IPv6 networks are not supported", b
		}},
		{"networks.*.enable_ipv4", KeyUnsupported, func(v any) (string, bool) {
			b, ok := v.(bool)
			return "networks without IPv4 are not supported", ok && !b
		}},
		{"networks.*.ipam.driver", KeyUnsupported, notIn("ipam driver", "", "default")},
		{"volumes.*.driver", KeyUnsupported, notIn("volume driver", "", "local")},
	}
}

// valuePatterns turns valueRules into compose-go detection patterns.
func valuePatterns() []loader.UnsupportedAttributePattern {
	var out []loader.UnsupportedAttributePattern
	for _, r := range valueRules() {
		out = append(out, loader.UnsupportedAttributePattern{
			Path:   tree.Path(r.Path),
			Detect: func(v any) bool { _, bad := r.Flag(v); return bad },
		})
	}
	return out
}

// reportUnsupported turns compose-go's findings into problems: errors for keys that change how a
// container runs, warnings for informational ones.
func (l *load) reportUnsupported() {
	rules := KeyRules()
	vrules := valueRules()
	used := map[string]bool{}
	for _, f := range l.found {
		key := l.listKey(f.Path, used)
		handled := false
		for _, vr := range vrules {
			if !f.Path.Matches(tree.Path(vr.Path)) {
				continue
			}
			if msg, bad := vr.Flag(f.Value); bad {
				l.report(vr.Support, key, "%s", msg)
				handled = true
				break
			}
		}
		if handled {
			continue
		}
		r, _ := ruleFor(rules, f.Path)
		name := f.Path.Last()
		msg := fmt.Sprintf("%s is not supported by stack", name)
		if r.Support == KeyIgnored {
			msg = fmt.Sprintf("%s is ignored by stack", name)
		}
		if r.Note != "" {
			msg += ": " + r.Note
		}
		sup := r.Support
		if sup == KeySupported { // a supported parent, but this child is not covered
			sup = KeyUnsupported
			msg = fmt.Sprintf("%s is not supported by stack", name)
		}
		l.report(sup, key, "%s", msg)
	}
}

func (l *load) report(sup KeySupport, key, format string, args ...any) {
	if sup == KeyIgnored {
		l.c.warnf(key, format, args...)
	} else {
		l.c.errorf(key, format, args...)
	}
}

// listKey turns a compose-go path (services.web.volumes.[].bind.selinux) into a stack key path
// with list indexes, choosing the first index whose key is written in the files and not used yet.
func (l *load) listKey(p tree.Path, used map[string]bool) string {
	parts := p.Parts()
	key := ""
	for i, part := range parts {
		if part != tree.PathMatchList {
			if key != "" {
				key += "."
			}
			key += part
			continue
		}
		rest := strings.Join(parts[i+1:], ".")
		for n := 0; n < 1000; n++ {
			cand := key + "[" + strconv.Itoa(n) + "]"
			full := cand
			if rest != "" {
				full += "." + rest
			}
			if _, ok := l.pos.exact(full, 0); !ok {
				if _, ok := l.pos.exact(cand, 0); !ok {
					break
				}
				continue
			}
			if !used[full] {
				used[full] = true
				key = cand
				goto next
			}
		}
		// No written index found: the problem goes on the list itself.
		return key
	next:
	}
	return key
}

// SupportedKeys lists the support of every key of the Compose specification, collapsed: every
// top-level key and every key of a service, network or volume is listed, and a deeper key only
// when its support differs from its parent's. It is the source of the README's supported-keys
// table (stack config --supported-keys).
func SupportedKeys() []KeyRule {
	rules := KeyRules()
	exactRule := map[string]KeyRule{}
	for _, r := range rules {
		exactRule[r.Path] = r
	}
	var out []KeyRule
	for _, p := range schema.AttributePaths() {
		parts := p.Parts()
		if parts[len(parts)-1] == tree.PathMatchAll || parts[0] == "jobs" && len(parts) > 1 {
			continue
		}
		sup := supportOf(rules, p)
		show := len(parts) == 1
		if len(parts) == 3 && parts[1] == tree.PathMatchAll {
			if r, ok := exactRule[parts[0]+".*"]; ok && r.Exact {
				show = true
			}
		}
		if !show {
			show = supportOf(rules, p.Parent()) != sup
			for q := p.Parent(); show && q != ""; q = q.Parent() {
				if supportOf(rules, q) != KeySupported {
					show = false
				}
			}
		}
		if show {
			out = append(out, KeyRule{Path: p.String(), Support: sup, Note: exactRule[p.String()].Note})
		}
	}
	return out
}
