package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stackrun/stack/engine/local"
)

// stackFile writes a stack file for the test and returns the -f/-p arguments that use it.
func (e *env) stackFile(yaml string) []string {
	e.t.Helper()
	path := filepath.Join(e.t.TempDir(), "stack.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return []string{"-f", path, "-p", e.project}
}

// decode runs stack and decodes its JSON output into v.
func (e *env) decode(v any, args ...string) {
	e.t.Helper()
	out := e.must(args...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		e.t.Fatalf("stack %s: decode JSON: %v\n%s", strings.Join(args, " "), err, out)
	}
}

const sleeperStack = `
services:
  app:
    image: stack-example:latest
    command: ["sleep", "3600"]
    mem_limit: 64m
    environment:
      GREETING: hello
    volumes:
      - data:/data
  idle:
    image: stack-example:latest
    command: ["sleep", "3600"]
volumes:
  data:
`

// TestInspectAndInfo: inspect by service, name and id prefix decodes into ContainerInfo with
// the resolved config, running state, mounts, addresses, cgroup paths, monitor pid and log
// path; info decodes into HostInfo with the counts of this root.
func TestInspectAndInfo(t *testing.T) {
	e := newEnv(t)
	e.exampleImage()
	f := e.stackFile(sleeperStack)
	e.must(append(f, "up", "-d", "--wait")...)

	var byService []local.ContainerInfo
	e.decode(&byService, append(f, "inspect", "app")...)
	if len(byService) != 1 {
		t.Fatalf("inspect app: %d containers", len(byService))
	}
	ci := byService[0]
	if ci.Service != "app" || ci.Number != 1 || ci.Project != e.project || ci.Image != "stack-example:latest" || ci.ImageID == "" {
		t.Errorf("identity: %+v", ci)
	}
	if ci.Config == nil || ci.Config.Environment["GREETING"] != "hello" {
		t.Errorf("config: %+v", ci.Config)
	}
	if !ci.State.Running || ci.State.Status != "running" || ci.State.Pid <= 0 || ci.MonitorPid <= 0 {
		t.Errorf("state: %+v, monitor pid %d", ci.State, ci.MonitorPid)
	}
	if ci.Process == nil || strings.Join(ci.Process.Args, " ") != "sleep 3600" {
		t.Errorf("process: %+v", ci.Process)
	}
	var data bool
	for _, m := range ci.Mounts {
		if m.Destination == "/data" && strings.Contains(m.Source, "volumes") {
			data = true
		}
	}
	if !data {
		t.Errorf("no /data volume mount in %+v", ci.Mounts)
	}
	if len(ci.Networks) != 1 || ci.Networks[0].IPv4 == "" || ci.Networks[0].IfName != "eth0" {
		t.Errorf("networks: %+v", ci.Networks)
	}
	if len(ci.CgroupPaths) == 0 {
		t.Errorf("no cgroup paths")
	}
	for ctrl, dir := range ci.CgroupPaths {
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("cgroup %s: %v", ctrl, err)
		}
		if ctrl == "memory" {
			b, _ := os.ReadFile(filepath.Join(dir, "memory.limit_in_bytes"))
			if strings.TrimSpace(string(b)) != "67108864" {
				t.Errorf("memory limit in %s: %q", dir, b)
			}
		}
	}
	if _, err := os.Stat(ci.LogPath); err != nil {
		t.Errorf("log path: %v", err)
	}
	if ci.NetNS == "" || !strings.HasPrefix(ci.Rootfs, e.root) {
		t.Errorf("netns %q rootfs %q", ci.NetNS, ci.Rootfs)
	}

	// By name and by id prefix: the same container; several arguments give several entries.
	var byName []local.ContainerInfo
	e.decode(&byName, append(f, "inspect", ci.Name, ci.ID[:10], "idle")...)
	if len(byName) != 2 || byName[0].ID != ci.ID || byName[1].Service != "idle" {
		t.Errorf("inspect by name, id, service: %+v", byName)
	}
	if _, err := e.run(append(f, "inspect", "nosuch")...); err == nil {
		t.Errorf("inspect of an unknown container succeeded")
	}

	// A stopped container: exited state, no pid, no monitor.
	e.must(append(f, "stop", "-t", "1", "idle")...)
	var stopped []local.ContainerInfo
	e.decode(&stopped, append(f, "inspect", "idle")...)
	if s := stopped[0].State; s.Running || s.Pid != 0 || s.Status != "stopped" || stopped[0].MonitorPid != 0 {
		t.Errorf("stopped: %+v monitor %d", s, stopped[0].MonitorPid)
	}

	var hi local.HostInfo
	e.decode(&hi, "info", "--format", "json")
	if hi.Kernel == "" || hi.CgroupVersion == 0 || hi.CgroupDriver == "" || hi.Runtime != "builtin" || hi.CPUs == 0 {
		t.Errorf("info host: %+v", hi)
	}
	if hi.StorageRoot != e.root || hi.Images != 1 || hi.Containers != 2 || hi.Running != 1 || hi.Networks != 1 || hi.Volumes != 1 {
		t.Errorf("info counts: %+v", hi)
	}
	if hi.StorageBytes <= 0 || hi.ImagesBytes <= 0 || hi.ImagesBytes > hi.StorageBytes || len(hi.Projects) != 1 || hi.Projects[0] != e.project {
		t.Errorf("info storage: %+v", hi)
	}
	if out := e.must("info"); !strings.Contains(out, "Cgroups:") {
		t.Errorf("info text:\n%s", out)
	}
}
