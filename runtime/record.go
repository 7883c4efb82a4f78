package runtime

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/stackrun/stack/runtime/seccomp"
)

// record is the on-disk state of one container, Root/<id>/state.json. The live status is not
// stored: it is derived from whether the recorded process still exists.
type record struct {
	ID          string            `json:"id"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Pid         int               `json:"pid,omitempty"`
	StartTime   uint64            `json:"startTime,omitempty"` // field 22 of /proc/PID/stat
	BootID      string            `json:"bootId,omitempty"`    // the boot Pid belongs to ("" in older records)
	Created     time.Time         `json:"created"`
	Ready       bool              `json:"ready"` // the init finished its setup
	Cgroup      string            `json:"cgroup"`
	CgroupPaths map[string]string `json:"cgroupPaths,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Exit        *ExitStatus       `json:"exit,omitempty"`
	Seccomp     seccomp.Program   `json:"seccomp,omitempty"` // also applied to exec'd processes
}

// ExitStatus says how a container's process ended.
type ExitStatus struct {
	Code      int       `json:"code"`             // exit code, or 128+signal
	Signal    string    `json:"signal,omitempty"` // set when killed by a signal
	OOMKilled bool      `json:"oomKilled,omitempty"`
	At        time.Time `json:"at"`
}

func (e ExitStatus) String() string {
	switch {
	case e.OOMKilled:
		return fmt.Sprintf("oom-killed (exit %d)", e.Code)
	case e.Signal != "":
		return fmt.Sprintf("killed by %s", e.Signal)
	}
	return fmt.Sprintf("exited %d", e.Code)
}

// procStartTime reads the start time of pid (clock ticks after boot). Together with the pid it
// identifies a process: a pid reused by another process has another start time.
func procStartTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStartTime(b)
}

// bootID identifies the running kernel boot (random per boot); read once per process.
var bootID = sync.OnceValue(func() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return string(bytes.TrimSpace(b))
})

// parseStartTime takes field 22 of a /proc/PID/stat line. The command name (field 2) may hold
// spaces and parentheses, so fields are counted from the last ')'.
func parseStartTime(stat []byte) (uint64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc stat: no ')'")
	}
	f := bytes.Fields(stat[i+1:])
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 {
		return 0, fmt.Errorf("parse /proc stat: %d fields", len(f)+2)
	}
	return strconv.ParseUint(string(f[19]), 10, 64)
}

// procState returns the one-letter state of pid ("Z" for a zombie).
func procState(stat []byte) string {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+3 > len(stat) {
		return ""
	}
	return string(stat[i+2 : i+3])
}
