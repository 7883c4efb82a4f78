package enginenet_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stackrun/stack/engine"
	"github.com/stackrun/stack/internal/testutil"
	"github.com/stackrun/stack/network"
	"github.com/stackrun/stack/network/enginenet"
	"github.com/stackrun/stack/spec"
)

// startContainer runs busybox sleep in a new network namespace and returns its pid.
func startContainer(t *testing.T) int {
	cmd := exec.Command("unshare", "--net", "--", "busybox", "sleep", "600")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	self, _ := os.Readlink("/proc/self/ns/net")
	testutil.Eventually(t, 5*time.Second, "unshared netns", func() error {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid)); err != nil || l == self {
			return fmt.Errorf("not yet: %v", err)
		}
		return nil
	})
	return cmd.Process.Pid
}

// TestEngineView drives the adapter the way the engine does: ensure, attach, publish (twice),
// detach, remove; all inside a sandbox namespace playing the host.
func TestEngineView(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireBinary(t, "busybox")
	testutil.RequireBinary(t, "unshare")
	_, host := testutil.NetNS(t)
	dir := t.TempDir()
	m := network.New(filepath.Join(dir, network.Dir), nil, network.WithNetNS(host))
	stack := map[string]*spec.Network{"default": {Key: "default"}, "back": {Key: "back", Internal: true}}
	files := t.TempDir()
	var held [][]*os.File
	n := &enginenet.Networks{M: m, Stack: stack,
		NameFiles: func(id string) (string, string) {
			return filepath.Join(files, id+".hosts"), filepath.Join(files, id+".resolv")
		},
		Hold: func(id string, f []*os.File) { held = append(held, f) },
	}
	t.Cleanup(func() {
		for _, fs := range held {
			for _, f := range fs {
				f.Close()
			}
		}
	})
	ctx := context.Background()
	for _, k := range []string{"back", "default"} {
		if err := n.Ensure(ctx, "shop", stack[k]); err != nil {
			t.Fatal(err)
		}
	}
	web := &spec.Service{Name: "web", Networks: map[string]*spec.ServiceNetwork{"default": {Aliases: []string{"www"}}, "back": nil},
		Ports: []spec.Port{{Target: 80, Protocol: "tcp"}}}
	db := &spec.Service{Name: "db", Networks: map[string]*spec.ServiceNetwork{"back": nil}}
	if err := n.Attach(ctx, "shop", engine.Endpoint{ContainerID: "web1", Service: web, Number: 1, NetNS: fmt.Sprintf("/proc/%d/ns/net", startContainer(t))}); err != nil {
		t.Fatal(err)
	}
	if err := n.Attach(ctx, "shop", engine.Endpoint{ContainerID: "db1", Service: db, Number: 1, NetNS: fmt.Sprintf("/proc/%d/ns/net", startContainer(t))}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := n.Publish(ctx, "shop", engine.Endpoint{ContainerID: "web1", Service: web, Number: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if len(held) != 1 {
		t.Fatalf("second Publish of the same ports re-published: %d holds", len(held))
	}
	bs, _ := m.Bindings("web1")
	if len(bs) != 1 || bs[0].HostPort == 0 || bs[0].Network != "shop_default" {
		t.Fatalf("bindings %+v: ports go to the first non-internal network", bs)
	}
	hosts, _ := os.ReadFile(filepath.Join(files, "db1.hosts"))
	if !strings.Contains(string(hosts), "\tweb shop-web-1\n") || strings.Contains(string(hosts), "www") {
		t.Fatalf("hosts of db1 (shares only back with web):\n%s", hosts)
	}
	nets, err := n.List(ctx, "shop")
	if err != nil || len(nets) != 2 || nets[0].Key != "back" || nets[1].Name != "shop_default" {
		t.Fatalf("List = %+v, %v", nets, err)
	}
	for _, id := range []string{"web1", "db1"} {
		if err := n.Detach(ctx, "shop", id); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"back", "default"} {
		if err := n.Remove(ctx, "shop", stack[k]); err != nil {
			t.Fatal(err)
		}
	}
	if nets, _ := m.List(); len(nets) != 0 {
		t.Fatalf("networks left: %v", nets)
	}
	out, err := testutil.RunInNetNS(host, 5*time.Second, "ip", "-o", "link")
	if err != nil || strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Fatalf("links left in the host namespace: %v\n%s", err, out)
	}
}
