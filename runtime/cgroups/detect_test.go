package cgroups

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The test host of this project: v1 controllers each on their own mount, cgroup2 (without
// controllers) at /sys/fs/cgroup/unified, and memory nested at /process_api/<id>.
const hybridMountinfo = `22 1 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
33 30 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
35 30 0:32 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
36 30 0:33 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
37 30 0:34 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

const hybridProcCgroup = `9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/9b3f
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
`

func TestDetectLayout(t *testing.T) {
	for _, tc := range []struct {
		name, mountinfo, proc string
		want                  layout
	}{
		{
			name: "hybrid host is v1", mountinfo: hybridMountinfo, proc: hybridProcCgroup,
			want: layout{version: V1,
				v1Mounts: map[string]string{
					"cpu": "/sys/fs/cgroup/cpu", "cpuacct": "/sys/fs/cgroup/cpuacct", "cpuset": "/sys/fs/cgroup/cpuset",
					"memory": "/sys/fs/cgroup/memory", "devices": "/sys/fs/cgroup/devices",
					"freezer": "/sys/fs/cgroup/freezer", "pids": "/sys/fs/cgroup/pids",
				},
				v1Own: map[string]string{
					"cpu": "", "cpuacct": "", "cpuset": "", "memory": "process_api/9b3f",
					"devices": "", "freezer": "", "pids": "",
				}},
		},
		{
			name: "co-mounted controllers and a container's nested mount root",
			mountinfo: `1 0 0:1 / / rw - overlay overlay rw
5 1 0:28 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid - cgroup cgroup rw,cpu,cpuacct
6 1 0:31 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory
`,
			proc: "4:memory:/docker/abc/sub\n2:cpu,cpuacct:/docker/abc\n",
			want: layout{version: V1,
				v1Mounts: map[string]string{"cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct", "memory": "/sys/fs/cgroup/memory"},
				v1Own:    map[string]string{"cpu": "", "cpuacct": "", "memory": "sub"}},
		},
		{
			name:      "unified host",
			mountinfo: "24 22 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n",
			proc:      "0::/user.slice/user-1000.slice/session-2.scope\n",
			want:      layout{version: V2, v2Mount: "/sys/fs/cgroup", v2Own: "user.slice/user-1000.slice/session-2.scope"},
		},
		{
			name:      "unified inside a cgroup namespace",
			mountinfo: "24 22 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
			proc:      "0::/\n",
			want:      layout{version: V2, v2Mount: "/sys/fs/cgroup", v2Own: ""},
		},
		{
			name:      "escaped mountpoint",
			mountinfo: `24 22 0:22 / /mnt/cg\040two rw - cgroup2 cgroup2 rw` + "\n",
			proc:      "0::/a\n",
			want:      layout{version: V2, v2Mount: "/mnt/cg two", v2Own: "a"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := detectLayout(strings.NewReader(tc.mountinfo), strings.NewReader(tc.proc))
			if err != nil {
				t.Fatal(err)
			}
			if tc.want.version == V2 {
				tc.want.v1Mounts, tc.want.v1Own = got.v1Mounts, got.v1Own // empty maps, not compared
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestDetectLayoutErrors(t *testing.T) {
	for name, tc := range map[string][2]string{
		"nothing mounted":                  {"1 0 0:1 / / rw - ext4 /dev/vda rw\n", "0::/\n"},
		"own outside the mount":            {"6 1 0:31 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n", "4:memory:/other\n"},
		"no line for a mounted controller": {"6 1 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n", "1:cpu:/\n"},
		"garbled proc cgroup":              {"6 1 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n", "nonsense\n"},
		"garbled mountinfo":                {"6 1 0:31 / /sys/fs/cgroup/memory rw cgroup cgroup rw,memory\n", "0::/\n"},
	} {
		if _, err := detectLayout(strings.NewReader(tc[0]), strings.NewReader(tc[1])); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestLayoutDriverParent(t *testing.T) {
	l, err := detectLayout(strings.NewReader(hybridMountinfo), strings.NewReader(hybridProcCgroup))
	if err != nil {
		t.Fatal(err)
	}
	d, err := l.driver("stack")
	if err != nil {
		t.Fatal(err)
	}
	p := d.Paths("c1")
	if p["memory"] != "/sys/fs/cgroup/memory/process_api/9b3f/stack/c1" || p["pids"] != "/sys/fs/cgroup/pids/stack/c1" {
		t.Errorf("Paths = %v", p)
	}
	if _, ok := p["blkio"]; ok {
		t.Errorf("unmanaged blkio in Paths: %v", p)
	}
}

// TestNewFollowsOwnCgroup checks, on whatever host runs the tests, that every directory New("")
// would use is a child of this process's own cgroup as /proc/self/cgroup names it.
func TestNewFollowsOwnCgroup(t *testing.T) {
	d, err := New("")
	if err != nil {
		t.Skipf("no usable cgroup layout: %v", err)
	}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	own, err := parseProcCgroup(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	paths := d.Paths("child")
	if len(paths) == 0 {
		t.Fatal("no paths")
	}
	for c, dir := range paths {
		if filepath.Base(dir) != "child" {
			t.Errorf("%s: %s", c, dir)
		}
		parent := filepath.Dir(dir)
		if st, err := os.Stat(parent); err != nil || !st.IsDir() {
			t.Errorf("%s: own cgroup %s: %v", c, parent, err)
		}
		if !strings.HasSuffix(parent, strings.TrimSuffix(own[c], "/")) {
			t.Errorf("%s: %s is not below own cgroup %q", c, dir, own[c])
		}
	}
}
