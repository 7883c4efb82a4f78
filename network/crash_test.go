package network_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/stackrun/stack/network"
)

// TestHelperChurn is not a test: TestSIGKILLMidway runs the test binary as a child in this mode
// (STACK_NET_CHURN set), where it attaches, publishes and detaches in a loop, printing one line
// per step, until it is killed.
func TestHelperChurn(t *testing.T) {
	if os.Getenv("STACK_NET_CHURN") == "" {
		t.Skip("helper process for TestSIGKILLMidway")
	}
	f := strings.Fields(os.Getenv("STACK_NET_CHURN")) // state dir, host ns, container ns...
	m := network.New(f[0], nil, network.WithNetNS(f[1]))
	ctx := context.Background()
	step := func(what string, err error) {
		if err != nil {
			fmt.Println("error", what, err)
			os.Exit(1)
		}
		fmt.Println("done", what)
	}
	for {
		_, err := m.EnsureNetwork(ctx, network.Spec{Project: "p", Name: "p_default"})
		step("ensure", err)
		for i, ns := range f[2:] {
			_, err := m.Attach(ctx, "p_default", fmt.Sprintf("c%d", i), ns, network.AttachOptions{})
			step("attach", err)
		}
		_, err = m.PublishPorts(ctx, "c0", []network.PortBinding{{ContainerPort: 80, Protocol: "tcp"}})
		step("publish", err)
		for i := range f[2:] {
			step("detach", m.Detach(ctx, "p_default", fmt.Sprintf("c%d", i)))
		}
		step("remove", m.RemoveNetwork(ctx, "p_default"))
	}
}

// Acceptance 5, second half: `stack up` SIGKILLed mid-way, 10 times, at a different step each
// time; afterwards reconcile (no container is alive) and down leave nothing behind.
func TestSIGKILLMidway(t *testing.T) {
	s := newSandbox(t)
	ctx := context.Background()
	nss := []string{s.container(), s.container(), s.container()}
	for i := 0; i < 10; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperChurn$")
		cmd.Env = append(os.Environ(), "STACK_NET_CHURN="+strings.Join(append([]string{s.dir, s.host}, nss...), " "))
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAt := 1 + rand.IntN(20)
		sc := bufio.NewScanner(out)
		for n := 0; n < killAt && sc.Scan(); n++ {
			if strings.HasPrefix(sc.Text(), "error") {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("helper: %s", sc.Text())
			}
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()

		// The next command: nothing of this project is running.
		if err := s.m.Reconcile(ctx, nil); err != nil {
			t.Fatalf("cycle %d (killed after %d steps): reconcile: %v", i, killAt, err)
		}
		if err := s.m.RemoveNetwork(ctx, "p_default"); err != nil {
			t.Fatalf("cycle %d: down: %v", i, err)
		}
		s.expectClean()
		for _, ns := range nss {
			if out := run(t, ns, "ip", "-o", "link"); strings.Count(strings.TrimSpace(out), "\n") != 0 {
				t.Fatalf("cycle %d: interfaces left in a container namespace:\n%s", i, out)
			}
		}
	}
}
