package network_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stackrun/stack/internal/testutil"
	"github.com/stackrun/stack/network"
)

// process starts a "container": busybox sleep in a fresh network namespace (unshare), and
// returns the command and its namespace path, /proc/PID/ns/net, as the engine would pass it.
func process(t *testing.T) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command("unshare", "--net", "--", "busybox", "sleep", "600")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
	})
	self, _ := os.Readlink("/proc/self/ns/net")
	path := fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid)
	testutil.Eventually(t, 5*time.Second, "unshared netns", func() error {
		if l, err := os.Readlink(path); err != nil || l == self {
			return fmt.Errorf("pid %d still in our netns: %v", cmd.Process.Pid, err)
		}
		return nil
	})
	return cmd, path
}

// Acceptance 5: 50 attach/detach cycles of a 3-container stack with a published port, then 10
// cycles where everything is abandoned half-way (containers killed with -9, nothing detached)
// and Reconcile plus RemoveNetwork clean up: no interface, no table, no record left.
func TestLeakCycles(t *testing.T) {
	s := newSandbox(t)
	testutil.RequireBinary(t, "unshare")
	ctx := context.Background()
	ids := []string{"web", "db", "cache"}
	var nss []string
	for range ids {
		nss = append(nss, s.container())
	}
	cycles := 50
	if testing.Short() {
		cycles = 5
	}
	for i := 0; i < cycles; i++ {
		n, err := s.m.EnsureNetwork(ctx, network.Spec{Project: "p", Name: "p_default"})
		if err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		for j, id := range ids {
			if _, err := s.m.Attach(ctx, n.Name, id, nss[j], network.AttachOptions{Aliases: []string{id}}); err != nil {
				t.Fatalf("cycle %d: %v", i, err)
			}
		}
		pub, err := s.m.PublishPorts(ctx, "web", []network.PortBinding{{ContainerPort: 80, Protocol: "tcp"}, {HostPort: 18085, ContainerPort: 53, Protocol: "udp"}})
		if err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		if err := s.m.UnpublishPorts(ctx, "web"); err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		pub.Close()
		for _, id := range ids {
			if err := s.m.Detach(ctx, n.Name, id); err != nil {
				t.Fatalf("cycle %d: %v", i, err)
			}
		}
		if err := s.m.RemoveNetwork(ctx, n.Name); err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
	}
	s.expectClean()
	for _, ns := range nss {
		if out := run(t, ns, "ip", "-o", "link"); strings.Count(strings.TrimSpace(out), "\n") != 0 {
			t.Fatalf("interfaces left in a container namespace:\n%s", out)
		}
	}

	for i := 0; i < 10; i++ {
		n, err := s.m.EnsureNetwork(ctx, network.Spec{Project: "p", Name: "p_default"})
		if err != nil {
			t.Fatal(err)
		}
		var cmds []*exec.Cmd
		for _, id := range ids {
			cmd, ns := process(t)
			cmds = append(cmds, cmd)
			if _, err := s.m.Attach(ctx, n.Name, id, ns, network.AttachOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		pub, err := s.m.PublishPorts(ctx, "db", []network.PortBinding{{HostPort: 18086, ContainerPort: 5432, Protocol: "tcp"}})
		if err != nil {
			t.Fatal(err)
		}
		pub.Close() // the holder (the container's monitor) dies too
		// kill -9 of everything; on even cycles one container survives until Reconcile.
		live := map[string]bool{}
		for j, cmd := range cmds {
			if i%2 == 0 && j == 0 {
				live[ids[j]] = true
				continue
			}
			_ = cmd.Process.Kill()
			_, _ = cmd.Process.Wait()
		}
		if err := s.m.Reconcile(ctx, live); err != nil {
			t.Fatal(err)
		}
		nrec, _ := s.m.Inspect(n.Name)
		if len(nrec.Attachments) != len(live) {
			t.Fatalf("cycle %d: %d allocations after reconcile, want %d", i, len(nrec.Attachments), len(live))
		}
		// Then `stack down`: the survivor is stopped too.
		if err := s.m.Reconcile(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if err := s.m.RemoveNetwork(ctx, n.Name); err != nil {
			t.Fatal(err)
		}
		for _, cmd := range cmds {
			_ = cmd.Process.Kill()
			_, _ = cmd.Process.Wait()
		}
	}
	s.expectClean()
}
