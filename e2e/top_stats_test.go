package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stackrun/stack/engine/local"
)

const busyStack = `
services:
  app:
    image: stack-example:latest
    command: ["sh", "-c", "dd if=/dev/zero of=/data/blob bs=1024 count=2048 conv=fsync 2>/dev/null; while :; do :; done"]
    mem_limit: 64m
    pids_limit: 50
    volumes:
      - data:/data
  idle:
    image: stack-example:latest
    command: ["sleep", "3600"]
volumes:
  data:
`

type topEntry struct {
	Name      string          `json:"name"`
	Service   string          `json:"service"`
	ID        string          `json:"id"`
	Processes []local.Process `json:"processes"`
}

type statsLine struct {
	Name        string  `json:"name"`
	Service     string  `json:"service"`
	CPUPercent  float64 `json:"cpu_percent"`
	MemoryBytes uint64  `json:"memory_bytes"`
	MemoryLimit uint64  `json:"memory_limit"`
	Pids        uint64  `json:"pids"`
	PidsLimit   uint64  `json:"pids_limit"`
	NetRx       uint64  `json:"net_rx_bytes"`
	NetTx       uint64  `json:"net_tx_bytes"`
	BlockWrite  uint64  `json:"block_write_bytes"`
}

// TestTopAndStats: top shows each container's processes with host pids (the init is the
// container's pid from inspect); stats reports the busy container's CPU, its memory against
// mem_limit, its pids, the bytes it wrote to its volume and the network bytes it sent.
func TestTopAndStats(t *testing.T) {
	e := newEnv(t)
	e.exampleImage()
	f := e.stackFile(busyStack)
	e.must(append(f, "up", "-d", "--wait")...)

	var ci []local.ContainerInfo
	e.decode(&ci, append(f, "inspect", "app")...)
	var top []topEntry
	e.decode(&top, append(f, "top", "--format", "json")...)
	if len(top) != 2 || top[0].Service != "app" || top[1].Service != "idle" {
		t.Fatalf("top: %+v", top)
	}
	var initFound bool
	for _, p := range top[0].Processes {
		if p.Pid == ci[0].State.Pid && strings.HasPrefix(p.Command, "sh -c dd") && p.UID == 0 {
			initFound = true
		}
	}
	if !initFound {
		t.Errorf("top app: no init pid %d in %+v", ci[0].State.Pid, top[0].Processes)
	}
	if len(top[1].Processes) != 1 || top[1].Processes[0].Command != "sleep 3600" {
		t.Errorf("top idle: %+v", top[1].Processes)
	}
	if out := e.must(append(f, "top", "idle")...); !strings.Contains(out, "PID") || !strings.Contains(out, "sleep 3600") {
		t.Errorf("top table:\n%s", out)
	}

	// Traffic out of the container's eth0: a connection attempt to its gateway.
	e.run(append(f, "exec", "app", "wget", "-q", "-T", "1", "-O", "/dev/null", "http://"+ci[0].Networks[0].Gateway+":9/")...)

	// The dd runs at start; poll until its bytes are seen (writeback is asynchronous only
	// without fsync, but the first reading may come before dd finished).
	var app statsLine
	deadline := 20
	for i := 0; ; i++ {
		out := e.must(append(f, "stats", "--no-stream", "--format", "json", "--interval", "500ms")...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 {
			t.Fatalf("stats: want 2 lines:\n%s", out)
		}
		if err := json.Unmarshal([]byte(lines[0]), &app); err != nil {
			t.Fatalf("stats json: %v\n%s", err, out)
		}
		if app.BlockWrite >= 2<<20 || i == deadline {
			break
		}
	}
	if app.Service != "app" || app.CPUPercent < 10 || app.MemoryBytes == 0 || app.MemoryLimit != 64<<20 ||
		app.Pids < 1 || app.PidsLimit != 50 || app.NetTx == 0 || app.BlockWrite < 2<<20 {
		t.Errorf("stats app: %+v", app)
	}
	if out := e.must(append(f, "stats", "--no-stream", "idle")...); !strings.Contains(out, "MEM USAGE") || !strings.Contains(out, "-idle-1") {
		t.Errorf("stats table:\n%s", out)
	}
}
