package cgroups

import (
	"fmt"
	"math"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Setting is one write into a cgroup: Value goes into File of the cgroup's directory in the
// hierarchy of Controller. On v2 all files share one directory and Controller names the
// controller that must be enabled in the parents' cgroup.subtree_control for File to exist.
type Setting struct {
	Controller string
	File       string
	Value      string
}

func (s Setting) String() string { return s.Controller + "/" + s.File + "=" + s.Value }

// Version selects the file names and value formats of Settings.
type Version int

const (
	V1 Version = 1
	V2 Version = 2
)

// Default CFS period (µs) the kernel uses and Compose's cpus option assumes.
const defaultCPUPeriod = 100000

// Settings computes, in the order they must be written, the file writes that apply res on a
// cgroup of version v. The device allowlist is not part of it: see DeviceRules. A nil res gives
// no settings.
func Settings(v Version, res *specs.LinuxResources) ([]Setting, error) {
	if res == nil {
		return nil, nil
	}
	var out []Setting
	var err error
	switch v {
	case V1:
		out, err = settingsV1(res)
	case V2:
		out, err = settingsV2(res)
	default:
		return nil, fmt.Errorf("cgroup version %d: %w", v, ErrInvalid)
	}
	if err != nil {
		return nil, fmt.Errorf("cgroup v%d settings: %w", v, err)
	}
	return out, nil
}

func settingsV1(res *specs.LinuxResources) ([]Setting, error) {
	var out []Setting
	add := func(ctrl, file, val string) { out = append(out, Setting{ctrl, file, val}) }

	if m := res.Memory; m != nil {
		if err := checkMemory(m); err != nil {
			return nil, err
		}
		// The kernel keeps memory.limit_in_bytes <= memory.memsw.limit_in_bytes at every
		// moment, so raising the pair (to unlimited) writes memsw first and lowering it writes
		// the plain limit first.
		limit := func() {
			if m.Limit != nil {
				add("memory", "memory.limit_in_bytes", v1Bytes(*m.Limit))
			}
		}
		if m.Swap != nil && *m.Swap == -1 {
			add("memory", "memory.memsw.limit_in_bytes", "-1")
			limit()
		} else {
			limit()
			if m.Swap != nil && *m.Swap > 0 {
				add("memory", "memory.memsw.limit_in_bytes", v1Bytes(*m.Swap))
			}
		}
		if m.Reservation != nil {
			add("memory", "memory.soft_limit_in_bytes", v1Bytes(*m.Reservation))
		}
		if m.Swappiness != nil {
			if *m.Swappiness > 100 {
				return nil, fmt.Errorf("memory swappiness %d: above 100: %w", *m.Swappiness, ErrInvalid)
			}
			add("memory", "memory.swappiness", strconv.FormatUint(*m.Swappiness, 10))
		}
		if m.DisableOOMKiller != nil && *m.DisableOOMKiller {
			add("memory", "memory.oom_control", "1")
		}
	}

	if c := res.CPU; c != nil {
		if c.Shares != nil && *c.Shares != 0 {
			add("cpu", "cpu.shares", strconv.FormatUint(*c.Shares, 10))
		}
		// The period goes first: the kernel checks a quota against the current period.
		if c.Period != nil && *c.Period != 0 {
			add("cpu", "cpu.cfs_period_us", strconv.FormatUint(*c.Period, 10))
		}
		if c.Quota != nil && *c.Quota != 0 {
			q := *c.Quota
			if q < 0 {
				q = -1
			}
			add("cpu", "cpu.cfs_quota_us", strconv.FormatInt(q, 10))
		}
		if c.Cpus != "" {
			add("cpuset", "cpuset.cpus", c.Cpus)
		}
		if c.Mems != "" {
			add("cpuset", "cpuset.mems", c.Mems)
		}
	}

	if p := res.Pids; p != nil && p.Limit != nil {
		add("pids", "pids.max", pidsMax(*p.Limit))
	}
	return out, nil
}

func settingsV2(res *specs.LinuxResources) ([]Setting, error) {
	var out []Setting
	add := func(ctrl, file, val string) { out = append(out, Setting{ctrl, file, val}) }

	if m := res.Memory; m != nil {
		if err := checkMemory(m); err != nil {
			return nil, err
		}
		if m.Limit != nil {
			add("memory", "memory.max", v2Max(*m.Limit))
		}
		// OCI's swap is memory+swap (the v1 meaning); v2 limits swap alone.
		if swap, ok := v2Swap(m); ok {
			add("memory", "memory.swap.max", swap)
		}
		if m.Reservation != nil {
			add("memory", "memory.low", v2Max(*m.Reservation))
		}
		// v2 has neither swappiness per cgroup nor a switch to disable the OOM killer;
		// runc ignores both there too.
	}

	if c := res.CPU; c != nil {
		if c.Shares != nil && *c.Shares != 0 {
			add("cpu", "cpu.weight", strconv.FormatUint(SharesToWeight(*c.Shares), 10))
		}
		quotaSet := c.Quota != nil && *c.Quota != 0
		periodSet := c.Period != nil && *c.Period != 0
		if quotaSet || periodSet {
			quota := "max"
			if quotaSet && *c.Quota > 0 {
				quota = strconv.FormatInt(*c.Quota, 10)
			}
			period := uint64(defaultCPUPeriod)
			if periodSet {
				period = *c.Period
			}
			add("cpu", "cpu.max", quota+" "+strconv.FormatUint(period, 10))
		}
		if c.Cpus != "" {
			add("cpuset", "cpuset.cpus", c.Cpus)
		}
		if c.Mems != "" {
			add("cpuset", "cpuset.mems", c.Mems)
		}
	}

	if p := res.Pids; p != nil && p.Limit != nil {
		add("pids", "pids.max", pidsMax(*p.Limit))
	}
	return out, nil
}

// checkMemory rejects combinations both versions refuse: a memory+swap total below the memory
// limit, or a swap total without a memory limit to subtract on v2.
func checkMemory(m *specs.LinuxMemory) error {
	for name, p := range map[string]*int64{"limit": m.Limit, "swap": m.Swap, "reservation": m.Reservation} {
		if p != nil && *p < -1 {
			return fmt.Errorf("memory %s %d: %w", name, *p, ErrInvalid)
		}
	}
	if m.Swap != nil && *m.Swap > 0 {
		if m.Limit == nil || *m.Limit == 0 {
			return fmt.Errorf("memory+swap limit %d without a memory limit: %w", *m.Swap, ErrInvalid)
		}
		if *m.Limit > 0 && *m.Swap < *m.Limit {
			return fmt.Errorf("memory+swap limit %d below memory limit %d: %w", *m.Swap, *m.Limit, ErrInvalid)
		}
	}
	return nil
}

// v2Swap converts OCI's memory+swap total into memory.swap.max.
func v2Swap(m *specs.LinuxMemory) (string, bool) {
	switch {
	case m.Swap == nil || *m.Swap == 0:
		// Unset swap with an unlimited memory limit means both unlimited, as on v1.
		if m.Limit != nil && *m.Limit == -1 {
			return "max", true
		}
		return "", false
	case *m.Swap == -1 || *m.Limit == -1:
		return v2Max(*m.Swap), true
	default:
		return strconv.FormatInt(*m.Swap-*m.Limit, 10), true
	}
}

func v1Bytes(n int64) string {
	if n < 0 {
		return "-1"
	}
	return strconv.FormatInt(n, 10)
}

func v2Max(n int64) string {
	if n < 0 {
		return "max"
	}
	return strconv.FormatInt(n, 10)
}

// pidsMax: OCI's limit 0 or below means no limit.
func pidsMax(n int64) string {
	if n <= 0 {
		return "max"
	}
	return strconv.FormatInt(n, 10)
}

// SharesToWeight converts v1 cpu shares [2, 262144] to a v2 cpu.weight [1, 10000] so that the
// ends of both ranges and the defaults (1024 and 100) meet: log10(weight) is a quadratic in
// log2(shares) through (1,0), (10,2) and (18,4), rounded up. This is the conversion runc
// (opencontainers/cgroups since mid-2025) and crun use; the older linear map sent 1024 to 39.
// 0 means unset and stays 0.
func SharesToWeight(shares uint64) uint64 {
	switch {
	case shares == 0:
		return 0
	case shares <= 2:
		return 1
	case shares >= 262144:
		return 10000
	}
	l := math.Log2(float64(shares))
	// Solving a*l^2 + b*l + c for the three points gives a = 1/612, b = 125/612, c = -7/34.
	exp := (l*l+125*l)/612 - 7.0/34
	return uint64(math.Ceil(math.Pow(10, exp)))
}

// plan is the describe step of Apply, the same for both versions: the device rules (deny all,
// the config's, the defaults) and the file values for the limits.
func plan(v Version, res *specs.LinuxResources) ([]specs.LinuxDeviceCgroup, []Setting, error) {
	var devs []specs.LinuxDeviceCgroup
	if res != nil {
		devs = res.Devices
	}
	rules, err := DeviceRules(devs)
	if err != nil {
		return nil, nil, err
	}
	settings, err := Settings(v, res)
	if err != nil {
		return nil, nil, err
	}
	return rules, settings, nil
}
