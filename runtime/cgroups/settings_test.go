package cgroups

import (
	"errors"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }
func boolp(v bool) *bool   { return &v }
func render(s []Setting) string {
	var lines []string
	for _, x := range s {
		lines = append(lines, x.String())
	}
	return strings.Join(lines, "\n")
}

func TestSharesToWeight(t *testing.T) {
	for _, tc := range []struct{ shares, want uint64 }{
		{0, 0}, // unset stays unset
		{1, 1}, // below the v1 range: clamped
		{2, 1},
		{3, 2},
		{512, 59},
		{1024, 100}, // the defaults meet
		{2000, 170}, // runc 1.4 reports 170 where the old linear map gave 77
		{10000, 627},
		{262143, 10000},
		{262144, 10000},
		{1 << 20, 10000}, // above the range: clamped
	} {
		if got := SharesToWeight(tc.shares); got != tc.want {
			t.Errorf("SharesToWeight(%d) = %d, want %d", tc.shares, got, tc.want)
		}
	}
	// Monotonic over the whole v1 range, and always a valid weight.
	prev := uint64(0)
	for s := uint64(2); s <= 262144; s++ {
		w := SharesToWeight(s)
		if w < prev || w < 1 || w > 10000 {
			t.Fatalf("SharesToWeight(%d) = %d after %d", s, w, prev)
		}
		prev = w
	}
}

func TestSettings(t *testing.T) {
	for _, tc := range []struct {
		name   string
		res    *specs.LinuxResources
		v1, v2 string
	}{
		{name: "nil", res: nil},
		{
			name: "memory limit reservation swap",
			res: &specs.LinuxResources{Memory: &specs.LinuxMemory{
				Limit: i64(32 << 20), Reservation: i64(16 << 20), Swap: i64(64 << 20),
			}},
			v1: "memory/memory.limit_in_bytes=33554432\nmemory/memory.memsw.limit_in_bytes=67108864\nmemory/memory.soft_limit_in_bytes=16777216",
			v2: "memory/memory.max=33554432\nmemory/memory.swap.max=33554432\nmemory/memory.low=16777216",
		},
		{
			name: "memory limit equal to swap total means no swap",
			res:  &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(100), Swap: i64(100)}},
			v1:   "memory/memory.limit_in_bytes=100\nmemory/memory.memsw.limit_in_bytes=100",
			v2:   "memory/memory.max=100\nmemory/memory.swap.max=0",
		},
		{
			name: "unlimited swap is raised before the limit on v1",
			res:  &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(100), Swap: i64(-1)}},
			v1:   "memory/memory.memsw.limit_in_bytes=-1\nmemory/memory.limit_in_bytes=100",
			v2:   "memory/memory.max=100\nmemory/memory.swap.max=max",
		},
		{
			name: "unlimited memory without swap unlimits both",
			res:  &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(-1)}},
			v1:   "memory/memory.limit_in_bytes=-1",
			v2:   "memory/memory.max=max\nmemory/memory.swap.max=max",
		},
		{
			name: "swappiness and oom killer are v1 only",
			res:  &specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: u64(10), DisableOOMKiller: boolp(true)}},
			v1:   "memory/memory.swappiness=10\nmemory/memory.oom_control=1",
		},
		{
			name: "cpu shares and cpus",
			res:  &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(512), Quota: i64(50000), Period: u64(100000)}},
			v1:   "cpu/cpu.shares=512\ncpu/cpu.cfs_period_us=100000\ncpu/cpu.cfs_quota_us=50000",
			v2:   "cpu/cpu.weight=59\ncpu/cpu.max=50000 100000",
		},
		{
			name: "quota without period uses the default period on v2",
			res:  &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(150000)}},
			v1:   "cpu/cpu.cfs_quota_us=150000",
			v2:   "cpu/cpu.max=150000 100000",
		},
		{
			name: "negative quota is unlimited",
			res:  &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(-5), Period: u64(20000)}},
			v1:   "cpu/cpu.cfs_period_us=20000\ncpu/cpu.cfs_quota_us=-1",
			v2:   "cpu/cpu.max=max 20000",
		},
		{
			name: "zero shares are unset",
			res:  &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(0)}},
		},
		{
			name: "cpuset",
			res:  &specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "0", Mems: "0"}},
			v1:   "cpuset/cpuset.cpus=0\ncpuset/cpuset.mems=0",
			v2:   "cpuset/cpuset.cpus=0\ncpuset/cpuset.mems=0",
		},
		{
			name: "pids",
			res:  &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(20)}},
			v1:   "pids/pids.max=20",
			v2:   "pids/pids.max=20",
		},
		{
			name: "pids zero or below is unlimited",
			res:  &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(-1)}},
			v1:   "pids/pids.max=max",
			v2:   "pids/pids.max=max",
		},
		{
			name: "devices are not settings",
			res:  &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range []struct {
				ver  Version
				want string
			}{{V1, tc.v1}, {V2, tc.v2}} {
				got, err := Settings(v.ver, tc.res)
				if err != nil {
					t.Fatalf("v%d: %v", v.ver, err)
				}
				if r := render(got); r != v.want {
					t.Errorf("v%d settings:\n%s\nwant:\n%s", v.ver, r, v.want)
				}
			}
		})
	}
}

func TestSettingsInvalid(t *testing.T) {
	for name, res := range map[string]*specs.LinuxResources{
		"swap below limit":     {Memory: &specs.LinuxMemory{Limit: i64(200), Swap: i64(100)}},
		"swap without limit":   {Memory: &specs.LinuxMemory{Swap: i64(100)}},
		"negative limit":       {Memory: &specs.LinuxMemory{Limit: i64(-2)}},
		"swappiness above 100": {Memory: &specs.LinuxMemory{Swappiness: u64(101)}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err1 := Settings(V1, res)
			_, err2 := Settings(V2, res)
			if name == "swappiness above 100" {
				err2 = ErrInvalid // v2 has no swappiness to refuse
			}
			if !errors.Is(err1, ErrInvalid) || !errors.Is(err2, ErrInvalid) {
				t.Fatalf("want ErrInvalid on both versions, got v1 %v, v2 %v", err1, err2)
			}
		})
	}
	if _, err := Settings(3, &specs.LinuxResources{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("version 3: got %v", err)
	}
}

func TestDeviceRules(t *testing.T) {
	rules, err := DeviceRules([]specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"}, // OCI configs usually start by denying all
		{Allow: true, Type: "b", Major: i64(7), Minor: i64(-1), Access: "mr"},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := render(v1DeviceSettings(rules))
	want := strings.Join([]string{
		"devices/devices.deny=a",
		"devices/devices.deny=a",
		"devices/devices.allow=b 7:* rm",
		"devices/devices.allow=c *:* m",
		"devices/devices.allow=b *:* m",
		"devices/devices.allow=c 1:3 rwm",
		"devices/devices.allow=c 1:5 rwm",
		"devices/devices.allow=c 1:7 rwm",
		"devices/devices.allow=c 1:8 rwm",
		"devices/devices.allow=c 1:9 rwm",
		"devices/devices.allow=c 5:0 rwm",
		"devices/devices.allow=c 5:1 rwm",
		"devices/devices.allow=c 5:2 rwm",
		"devices/devices.allow=c 136:* rwm",
		"devices/devices.allow=c 10:200 rwm",
	}, "\n")
	if got != want {
		t.Errorf("v1 device writes:\n%s\nwant:\n%s", got, want)
	}

	for name, bad := range map[string]specs.LinuxDeviceCgroup{
		"type":   {Type: "x"},
		"access": {Access: "rwx"},
		"major":  {Type: "c", Major: i64(-7)},
	} {
		if _, err := DeviceRules([]specs.LinuxDeviceCgroup{bad}); !errors.Is(err, ErrInvalid) {
			t.Errorf("bad %s: got %v", name, err)
		}
	}
}
