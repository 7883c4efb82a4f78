package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stackrun/stack/engine/local"
	"github.com/stackrun/stack/runtime/monitor"
	"github.com/stackrun/stack/state"
)

// rebootStack: a web server with a published port and restart: always, and two sleepers, all on
// the default network.
const rebootStack = `
services:
  web:
    image: busybox:latest
    command: ["sh", "-c", "echo up > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"]
    restart: always
    ports:
      - "127.0.0.1:${REBOOT_PORT}:8080"
  a:
    image: busybox:latest
    command: ["sleep", "3600"]
  b:
    image: busybox:latest
    command: ["sleep", "3600"]
`

// statusPath is the monitor record of container id under e's state root.
func (e *env) statusPath(id string) string {
	return filepath.Join(e.root, "containers", id, "monitor", "status.json")
}

// procStart is the start time of pid (/proc/PID/stat field 22), 0 when it is gone.
func procStart(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0
	}
	n, _ := strconv.ParseUint(f[19], 10, 64)
	return n
}

// unmountRoots undoes every mount under e's roots, deepest first, as a reboot would.
func unmountRoots(t *testing.T, e *env) {
	t.Helper()
	unmountUnder(t, e.root, e.runRoot)
}

// unmountUnder undoes every mount below the given directories, deepest first.
func unmountUnder(t *testing.T, dirs ...string) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	var mounts []string
	for _, l := range strings.Split(string(b), "\n") {
		fl := strings.Fields(l)
		if len(fl) < 2 {
			continue
		}
		for _, d := range dirs {
			if strings.HasPrefix(fl[1], d+"/") {
				mounts = append(mounts, fl[1])
				break
			}
		}
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		if err := syscall.Unmount(mounts[i], syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", mounts[i], err)
		}
	}
}

// simulateReboot does to e's project what a power cut and a reboot do: every monitor and
// container process it recorded is SIGKILLed (by pid, checked against the recorded start
// time), its mounts go, the run root is emptied (unless keepRunRoot: a run root on disk
// outlives a reboot), and the kernel objects stack made (the bridges its network records
// name, the nftables table of its root) are gone.
func simulateReboot(t *testing.T, e *env, own ownLinks, keepRunRoot bool) {
	t.Helper()
	files, _ := filepath.Glob(e.statusPath("*"))
	if len(files) == 0 {
		t.Fatalf("no monitor records under %s", e.root)
	}
	var killed []int
	for _, f := range files {
		var st monitor.Status
		if err := state.ReadJSON(f, &st); err != nil {
			t.Fatalf("monitor record %s: %v", f, err)
		}
		for _, p := range []struct {
			pid   int
			start uint64
		}{{st.MonitorPid, st.MonitorStartTime}, {st.ContainerPid, st.ContainerStartTime}} {
			if p.pid > 0 && procStart(p.pid) == p.start {
				if err := syscall.Kill(p.pid, syscall.SIGKILL); err != nil {
					t.Fatalf("kill %d: %v", p.pid, err)
				}
				killed = append(killed, p.pid)
			}
		}
	}
	for _, pid := range killed {
		waitGone(t, pid)
	}
	unmountRoots(t, e)
	if !keepRunRoot {
		if err := os.RemoveAll(e.runRoot); err != nil {
			t.Fatal(err)
		}
	}
	own.sample(t, e)
	files, _ = filepath.Glob(filepath.Join(e.root, "networks", "networks", "*.json"))
	for _, f := range files {
		var rec struct {
			Project string `json:"project"`
			Bridge  string `json:"bridge"`
		}
		if err := state.ReadJSON(f, &rec); err != nil || rec.Project != e.project {
			continue
		}
		if out, err := exec.Command("ip", "link", "del", rec.Bridge).CombinedOutput(); err != nil {
			t.Logf("ip link del %s: %v %s", rec.Bridge, err, out)
		}
	}
	table := local.TableFor(e.root)
	if exec.Command("nft", "list", "table", "ip", table).Run() == nil {
		if out, err := exec.Command("nft", "delete", "table", "ip", table).CombinedOutput(); err != nil {
			t.Fatalf("nft delete table %s: %v %s", table, err, out)
		}
	}
}

// bystander starts a process of the test's own, unrelated to stack, and stops it (by pid) at
// the end of the test.
func bystander(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "1000")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

// stillAlive reports whether cmd's process runs (not a zombie) and nothing signalled it.
func stillAlive(cmd *exec.Cmd) error {
	var st syscall.WaitStatus
	pid, err := syscall.Wait4(cmd.Process.Pid, &st, syscall.WNOHANG, nil)
	switch {
	case err != nil:
		return err
	case pid == cmd.Process.Pid:
		return fmt.Errorf("it ended: %v (signal %v)", st, st.Signal())
	case procStart(cmd.Process.Pid) == 0:
		return fmt.Errorf("it is gone from /proc")
	}
	return nil
}

// rewritePid makes the monitor record of container id name the bystander's pid, as if the
// pid had been reused after the reboot. Without otherBoot the record keeps its start times:
// only they tell the processes apart (the boot id is the current one). With otherBoot it gets
// the bystander's own start time and another boot id: only the boot id tells them apart.
func rewritePid(t *testing.T, e *env, id string, by *exec.Cmd, otherBoot bool) {
	t.Helper()
	var st monitor.Status
	if err := state.ReadJSON(e.statusPath(id), &st); err != nil {
		t.Fatal(err)
	}
	pid := by.Process.Pid
	st.ContainerPid, st.MonitorPid = pid, pid
	if otherBoot {
		start := procStart(pid)
		st.ContainerStartTime, st.MonitorStartTime = start, start
		st.BootID = "00000000-0000-4000-8000-000000000000"
	}
	if err := state.WriteJSON(e.statusPath(id), &st); err != nil {
		t.Fatal(err)
	}
}

// TestHardenRebootReusedPid: issue 11 acceptance 6. A running stack loses its monitors,
// containers, mounts, run root, bridge and nftables table as in a reboot, and an unrelated
// process gets the pids the records name (same boot with the old start time; or another boot
// id with the new process's own start time). ps shows every container exited; up brings all of
// them back on their recorded addresses (no "address in use" from the address records that
// survived), reachable by name and through the published port; after a second reboot, stop and
// down never signal the unrelated process; nothing is left on the host.
func TestHardenRebootReusedPid(t *testing.T) {
	e := newEnv(t)
	e.busyboxImage()
	port := freePort(t)
	e.extra = []string{fmt.Sprintf("REBOOT_PORT=%d", port)}
	f := e.stackFile(rebootStack)
	own := ownLinks{}
	e.must(append(f, "up", "-d", "--wait")...)
	own.sample(t, e)
	get(t, fmt.Sprintf("http://127.0.0.1:%d/index.html", port))
	before := e.ps(f...)
	if len(before.Containers) != 3 {
		t.Fatalf("up made %d containers: %+v", len(before.Containers), before)
	}
	addrs := map[string][]string{}
	var ids []string
	for _, c := range before.Containers {
		addrs[c.Service] = c.Addresses
		ids = append(ids, c.ID)
	}
	slices.Sort(ids)
	by := bystander(t)

	simulateReboot(t, e, own, false)
	rewritePid(t, e, ids[0], by, false)
	rewritePid(t, e, ids[1], by, true) // ids[2] keeps its stale pids
	for svc, c := range e.lifePs(f) {
		if c.State != "exited" || c.Pid != 0 || c.MonitorPid != 0 {
			t.Errorf("after the reboot ps says %s is %s (pid %d, monitor %d), want exited", svc, c.State, c.Pid, c.MonitorPid)
		}
	}
	if out := e.must(append(f, "ps", "-a")...); strings.Contains(out, "running") || strings.Contains(out, "unsupervised") {
		t.Errorf("after the reboot the ps table shows a live container:\n%s", out)
	}

	out, err := e.run(append(f, "up", "-d", "--wait")...)
	if err != nil || strings.Contains(strings.ToLower(out), "in use") {
		t.Fatalf("up after the reboot: %v\n%s", err, out)
	}
	own.sample(t, e)
	if err := stillAlive(by); err != nil {
		t.Fatalf("the unrelated process with a recorded pid, after up: %v", err)
	}
	checkAddresses(t, e, f, addrs)
	get(t, fmt.Sprintf("http://127.0.0.1:%d/index.html", port))
	if out, err := e.run(append(f, "exec", "a", "sh", "-c", "ping -c 1 -W 5 b && wget -q -O - http://web:8080/index.html")...); err != nil || !strings.Contains(out, "up") {
		t.Errorf("a reaches b and web by name after the reboot: %v\n%s", err, out)
	}

	// A second reboot: stop and down meet only dead records, one of them naming the
	// unrelated process.
	simulateReboot(t, e, own, false)
	rewritePid(t, e, ids[0], by, false)
	rewritePid(t, e, ids[1], by, true) // ids[2] keeps its stale pids
	for _, cmd := range [][]string{{"stop", "-t", "1"}, {"down", "-t", "1"}} {
		if out, err := e.run(append(f, cmd...)...); err != nil {
			t.Fatalf("%s after the second reboot: %v\n%s", cmd[0], err, out)
		}
		if err := stillAlive(by); err != nil {
			t.Fatalf("%s signalled the unrelated process %d: %v", cmd[0], by.Process.Pid, err)
		}
	}
	if n := len(e.ps(f...).Containers); n != 0 {
		t.Errorf("%d containers after down", n)
	}
	if d := leaks(t, e, own); d != "" {
		t.Errorf("after down:\n%s", d)
	}
}

// checkAddresses checks that every container runs with the addresses it had (want, by
// service), each inside its network's subnet, neither the network, gateway nor broadcast
// address, and no address given twice.
func checkAddresses(t *testing.T, e *env, f []string, want map[string][]string) {
	t.Helper()
	var nets []struct {
		Project string `json:"project"`
		Subnet  string `json:"subnet"`
		Gateway string `json:"gateway"`
	}
	e.decode(&nets, "network", "ls", "--format", "json")
	var subnets []netip.Prefix
	var gateways []string
	for _, n := range nets {
		if n.Project != e.project {
			continue
		}
		p, err := netip.ParsePrefix(n.Subnet)
		if err != nil {
			t.Fatalf("network subnet %q: %v", n.Subnet, err)
		}
		subnets = append(subnets, p)
		gateways = append(gateways, n.Gateway)
	}
	seen := map[string]string{}
	ps := e.ps(f...)
	if len(ps.Containers) != len(want) {
		t.Errorf("%d containers, want %d: %+v", len(ps.Containers), len(want), ps)
	}
	for _, c := range ps.Containers {
		if c.State != "running" {
			t.Errorf("%s is %s, want running", c.Service, c.State)
		}
		if !slices.Equal(c.Addresses, want[c.Service]) {
			t.Errorf("%s has addresses %v, had %v", c.Service, c.Addresses, want[c.Service])
		}
		for _, a := range c.Addresses {
			ip, err := netip.ParseAddr(a)
			if err != nil {
				t.Errorf("%s: address %q: %v", c.Service, a, err)
				continue
			}
			in := false
			for _, p := range subnets {
				if p.Contains(ip) && ip != p.Masked().Addr() && ip != broadcast(p) {
					in = true
				}
			}
			if !in || slices.Contains(gateways, a) {
				t.Errorf("%s: address %s is not a host address of the subnets %v (gateways %v)", c.Service, a, subnets, gateways)
			}
			if other, ok := seen[a]; ok {
				t.Errorf("address %s given to %s and %s", a, other, c.Service)
			}
			seen[a] = c.Service
		}
	}
	// The addresses are those the containers really have.
	for svc, a := range want {
		if len(a) == 0 {
			t.Errorf("%s had no address before the reboot", svc)
			continue
		}
		out, err := e.run(append(f, "exec", svc, "ip", "-4", "-o", "addr", "show", "eth0")...)
		if err != nil || !strings.Contains(out, " "+a[0]+"/") {
			t.Errorf("%s: eth0 does not have %s: %v\n%s", svc, a[0], err, out)
		}
	}
}

// broadcast is the last address of p (IPv4).
func broadcast(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	n := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// TestHardenRebootKeptRunRoot: issue 11 acceptance 6 with a run root on disk, which a reboot
// does not empty: the runtime's records of the containers survive, and after the reboot their
// pids name an unrelated process that even has the recorded start time (only the boot id
// tells it apart). ps shows the containers exited, and neither up (which deletes what the
// runtime recorded before starting afresh) nor down signals the unrelated process.
func TestHardenRebootKeptRunRoot(t *testing.T) {
	e := newEnv(t)
	e.busyboxImage()
	f := e.stackFile("services:\n  a:\n    image: busybox:latest\n    command: [\"sleep\", \"3600\"]\n")
	own := ownLinks{}
	e.must(append(f, "up", "-d", "--wait")...)
	own.sample(t, e)
	ps := e.ps(f...)
	if len(ps.Containers) != 1 {
		t.Fatalf("up made %d containers", len(ps.Containers))
	}
	id := ps.Containers[0].ID
	by := bystander(t)
	for round, step := range [][]string{{"up", "-d", "--wait"}, {"down", "-t", "1"}} {
		simulateReboot(t, e, own, true)
		records, _ := filepath.Glob(filepath.Join(e.runRoot, "*", "*", "runtime", id, "state.json"))
		if len(records) != 1 {
			t.Fatalf("round %d: runtime records of %s under the run root: %v", round, id, records)
		}
		pid, start := by.Process.Pid, procStart(by.Process.Pid)
		var rec map[string]any
		if err := state.ReadJSON(records[0], &rec); err != nil {
			t.Fatal(err)
		}
		if _, ok := rec["bootId"]; !ok {
			t.Errorf("the runtime record %s has no boot id", records[0])
		}
		rec["pid"], rec["startTime"], rec["bootId"] = pid, start, "00000000-0000-4000-8000-000000000000"
		if err := state.WriteJSON(records[0], rec); err != nil {
			t.Fatal(err)
		}
		rewritePid(t, e, id, by, true)

		if c := e.lifePs(f)["a"]; c.State != "exited" {
			t.Errorf("round %d: after the reboot ps says %s, want exited", round, c.State)
		}
		if out, err := e.run(append(f, step...)...); err != nil {
			t.Fatalf("%s after the reboot: %v\n%s", step[0], err, out)
		}
		if err := stillAlive(by); err != nil {
			t.Fatalf("%s signalled the unrelated process %d: %v", step[0], pid, err)
		}
	}
	if d := leaks(t, e, own); d != "" {
		t.Errorf("after down:\n%s", d)
	}
}

// TestDownAfterRunRootLost: the run root is lost while a container runs and its monitor is
// dead (not a reboot: the processes live on). down still stops the container, through the
// init the monitor recorded (pid, start time and boot id checked), and leaves nothing.
func TestDownAfterRunRootLost(t *testing.T) {
	e := newEnv(t)
	f, c := tickerWithKilledMonitor(t, e)
	waitGone(t, c.MonitorPid)
	unmountUnder(t, e.runRoot)
	if err := os.RemoveAll(e.runRoot); err != nil {
		t.Fatal(err)
	}
	if !alive(c.Pid) {
		t.Fatalf("the container %d died with its run root", c.Pid)
	}
	e.must(append(f, "ps", "-a")...)
	e.downLeavesNothing(f, c.Pid, c.MonitorPid)
}
