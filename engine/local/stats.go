package local

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Process is one process of a container as the host sees it (`stack top`).
type Process struct {
	Pid     int    `json:"pid"`
	PPid    int    `json:"ppid"`
	UID     int    `json:"uid"`
	State   string `json:"state"`    // the letter of /proc/PID/stat (R, S, D, Z, ...)
	CPUTime string `json:"cpu_time"` // user+system time, [h:]mm:ss
	RSS     int64  `json:"rss_bytes"`
	Command string `json:"command"` // argv joined by spaces, or [comm] for kernel-ish ones
}

// Top lists the processes in container id's cgroup, read from /proc, sorted by pid.
func (h *Host) Top(ctx context.Context, id string) ([]Process, error) {
	pids, err := h.ContainerRuntime(id).Pids(ctx, id)
	if err != nil {
		return nil, err
	}
	sort.Ints(pids)
	out := make([]Process, 0, len(pids))
	for _, pid := range pids {
		p, err := readProcess(pid)
		if err != nil {
			continue // exited while we listed
		}
		out = append(out, p)
	}
	return out, nil
}

// clockTicks is USER_HZ, which Linux fixes at 100 for every architecture stack runs on.
const clockTicks = 100

func readProcess(pid int) (Process, error) {
	dir := "/proc/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return Process{}, err
	}
	f, comm, err := statFields(stat)
	if err != nil {
		return Process{}, err
	}
	p := Process{Pid: pid, State: f[0]}
	p.PPid, _ = strconv.Atoi(f[1])
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	p.CPUTime = cpuTime((ut + st) / clockTicks)
	rss, _ := strconv.ParseInt(f[21], 10, 64)
	p.RSS = rss * int64(os.Getpagesize())
	if status, err := os.ReadFile(dir + "/status"); err == nil {
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "Uid:"); ok {
				if fs := strings.Fields(v); len(fs) > 0 {
					p.UID, _ = strconv.Atoi(fs[0])
				}
			}
		}
	}
	cmdline, _ := os.ReadFile(dir + "/cmdline")
	if args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00"); len(cmdline) > 0 {
		p.Command = strings.Join(args, " ")
	} else {
		p.Command = "[" + comm + "]"
	}
	return p, nil
}

// statFields splits /proc/PID/stat after the command name (which may hold spaces and
// parentheses): f[0] is field 3 (state), f[i] is field i+3.
func statFields(b []byte) ([]string, string, error) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return nil, "", fmt.Errorf("parse /proc stat: no command name")
	}
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 22 {
		return nil, "", fmt.Errorf("parse /proc stat: %d fields", len(f))
	}
	return f, string(b[open+1 : end]), nil
}

func cpuTime(secs uint64) string {
	if secs >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", secs/3600, secs/60%60, secs%60)
	}
	return fmt.Sprintf("%02d:%02d", secs/60, secs%60)
}

// Sample is one reading of a running container's counters (`stack stats`). Counters are
// cumulative; rates come from the difference of two samples.
type Sample struct {
	Time        time.Time `json:"time"`
	CPUNanos    uint64    `json:"cpu_nanos"`
	MemoryUsage uint64    `json:"memory_bytes"`
	MemoryLimit uint64    `json:"memory_limit"` // 0: unlimited
	Pids        uint64    `json:"pids"`
	PidsLimit   uint64    `json:"pids_limit,omitempty"`
	NetRx       uint64    `json:"net_rx_bytes"`
	NetTx       uint64    `json:"net_tx_bytes"`
	BlockRead   uint64    `json:"block_read_bytes"`
	BlockWrite  uint64    `json:"block_write_bytes"`
}

// Stats samples container id: memory, cpu and pids from its cgroup, network from its
// namespace's /proc/PID/net/dev (every interface but lo), block I/O from the cgroup's io/blkio
// counters where the container has its own, else summed over its processes' /proc/PID/io.
func (h *Host) Stats(ctx context.Context, id string) (*Sample, error) {
	rt := h.ContainerRuntime(id)
	st, err := rt.State(ctx, id)
	if err != nil {
		return nil, err
	}
	if st.Pid <= 0 {
		return nil, fmt.Errorf("stats of container %s: not running", id)
	}
	cs, err := rt.Stats(ctx, id)
	if err != nil {
		return nil, err
	}
	s := &Sample{Time: time.Now(), CPUNanos: cs.CPUUsageNanos, MemoryUsage: cs.MemoryUsage, MemoryLimit: cs.MemoryLimit,
		Pids: cs.Pids, PidsLimit: cs.PidsLimit}
	if dev, err := os.ReadFile("/proc/" + strconv.Itoa(st.Pid) + "/net/dev"); err == nil {
		s.NetRx, s.NetTx = parseNetDev(dev)
	}
	if r, w, ok := cgroupIO(st.CgroupPaths); ok {
		s.BlockRead, s.BlockWrite = r, w
	} else if pids, err := rt.Pids(ctx, id); err == nil {
		for _, pid := range pids {
			if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/io"); err == nil {
				r, w := parseProcIO(b)
				s.BlockRead += r
				s.BlockWrite += w
			}
		}
	}
	return s, nil
}

// parseNetDev sums received and transmitted bytes of every interface but lo (proc(5)).
func parseNetDev(b []byte) (rx, tx uint64) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(name) == "lo" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 9 {
			continue
		}
		r, _ := strconv.ParseUint(f[0], 10, 64)
		t, _ := strconv.ParseUint(f[8], 10, 64)
		rx += r
		tx += t
	}
	return rx, tx
}

// parseProcIO reads read_bytes and write_bytes (storage I/O) of /proc/PID/io.
func parseProcIO(b []byte) (r, w uint64) {
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ": ")
		n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		switch k {
		case "read_bytes":
			r = n
		case "write_bytes":
			w = n
		}
	}
	return r, w
}

// cgroupIO reads the container's own block I/O counters: v2 io.stat (rbytes, wbytes), or v1
// blkio.throttle.io_service_bytes when the container has its own blkio cgroup.
func cgroupIO(paths map[string]string) (r, w uint64, ok bool) {
	if dir, v2 := paths[""]; v2 {
		b, err := os.ReadFile(filepath.Join(dir, "io.stat"))
		if err != nil {
			return 0, 0, false
		}
		r, w = parseIOStat(b)
		return r, w, true
	}
	dir, has := paths["blkio"]
	if !has {
		return 0, 0, false
	}
	b, err := os.ReadFile(filepath.Join(dir, "blkio.throttle.io_service_bytes"))
	if err != nil {
		return 0, 0, false
	}
	r, w = parseBlkio(b)
	return r, w, true
}

// parseIOStat sums rbytes= and wbytes= over the devices of a v2 io.stat.
func parseIOStat(b []byte) (r, w uint64) {
	for _, f := range strings.Fields(string(b)) {
		k, v, _ := strings.Cut(f, "=")
		n, _ := strconv.ParseUint(v, 10, 64)
		switch k {
		case "rbytes":
			r += n
		case "wbytes":
			w += n
		}
	}
	return r, w
}

// parseBlkio sums the Read and Write lines of a v1 blkio.throttle.io_service_bytes.
func parseBlkio(b []byte) (r, w uint64) {
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		n, _ := strconv.ParseUint(f[2], 10, 64)
		switch f[1] {
		case "Read":
			r += n
		case "Write":
			w += n
		}
	}
	return r, w
}
