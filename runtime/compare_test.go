package runtime_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stackrun/stack/internal/testutil"
	"github.com/stackrun/stack/runtime"
	"github.com/stackrun/stack/runtime/cgroups"
	"github.com/stackrun/stack/runtime/runtimetest"
)

// Acceptance 7: the same bundles under runc and under stack give the same observable results.
func TestSameAsRunc(t *testing.T) {
	testutil.RequireRoot(t)
	runc := runtimetest.Binary(t, "runc")
	// Both runtimes read a relative cgroupsPath as below their own cgroup; the test's parent
	// cgroup holds both and is removed at the end.
	parent := testutil.UniqueName()
	drv, err := cgroups.New("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := drv.Remove(parent); err != nil {
			t.Errorf("remove cgroup %s: %v", parent, err)
		}
		if err := runtimetest.RemoveCgroupTree(parent); err != nil {
			t.Errorf("remove cgroup %s: %v", parent, err)
		}
	})
	stack := runtimetest.Stack(runtime.New(runtime.Options{Root: t.TempDir()}))
	rootfs := t.TempDir()
	runtimetest.BusyboxRootfs(t, rootfs)

	probes := map[string]string{
		"status":   `grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status`,
		"identity": `hostname; cat /etc/hostname; id; pwd; umask; ulimit -n; ulimit -u`,
		"env":      `env | sort`,
		"dev":      `cd /dev && stat -c '%n %A %u %g %t %T' * | sort`,
		"mounts":   `awk '{ for (i = 7; $i != "-"; i++); print $5, $(i+1), $6 }' /proc/self/mountinfo | sort`,
		"masked":   `for f in /proc/kcore /proc/keys /proc/timer_list /proc/acpi /sys/firmware; do [ -e $f ] && echo $f $(ls -A $f 2>/dev/null | wc -l) $(cat $f 2>/dev/null | wc -c); done`,
		"writable": `for f in /proc/sys/kernel/domainname /proc/sysrq-trigger /tmp/x /dev/shm/x; do (echo x > $f) 2>/dev/null && echo $f rw || echo $f ro; done`,
		"cgroup":   `cat /proc/self/cgroup | cut -d: -f2- | sort`,
		"net":      `cat /proc/net/dev | tail -n +3 | cut -d: -f1; ls /sys/class/net`,
		"exit":     `exit 42`,
	}
	i := 0
	for name, script := range probes {
		i++
		t.Run(name, func(t *testing.T) {
			var got [2]runtimetest.Result
			for j, rt := range []runtimetest.Runner{stack, runc} {
				b := &runtimetest.Bundle{Dir: t.TempDir(), Spec: runtimetest.Spec("sh", "-c", script)}
				b.Spec.Root.Path = rootfs
				id := fmt.Sprintf("cmp-%d-%s", i, rt.Name())
				b.Spec.Linux.CgroupsPath = filepath.Join(parent, id)
				got[j] = rt.Run(t, id, b.Write(t))
			}
			if got[0] != got[1] {
				t.Errorf("stack and runc differ:\nstack: %+v\nrunc:  %+v", got[0], got[1])
			}
		})
	}
}
