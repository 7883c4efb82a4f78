package runtime

// The container init: the first process of a container, before it becomes the user process.
//
//	caller (Create)                          init (stack re-executed in InitArg mode)
//	  |  clone(/proc/self/exe InitArg,            |
//	  |        new pid/mnt/uts/ipc/net ns) -----> |  Go runtime starts, locks its thread
//	  |  add pid to the container cgroup          |  blocks reading fd $_STACK_INIT_SOCK
//	  |  initConfig as JSON, then shut down ----> |
//	  |                                           |  join ns by path, unshare cgroup ns,
//	  |                                           |  rootfs plan, pivot_root, sysctls,
//	  |                                           |  hostname, masks, rlimits, oom score,
//	  |                                           |  credentials, capabilities,
//	  |                                           |  session keyring, credentials,
//	  |                                           |  capabilities, no_new_privs, cwd (checked
//	  |                                           |  inside), fds close-on-exec, seccomp
//	  |  <--------- {"ready":true}  or             |
//	  |  <--------- {"step":..., "error":...}     |  (and exits 1)
//	  |  record state "created", return           |  opens exec.fifo for writing: blocks
//	  :                                           :
//	Start: opens exec.fifo for reading, --------> |  writes one byte, execs the process
//	  reads the byte, removes the fifo            |  (or the tiny init, which forks it)
//
// Everything runs on one locked OS thread: setns, capabilities and no_new_privs are per
// thread in Linux, and the exec at the end keeps only the calling thread.

import (
	"encoding/json"
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/runtime/seccomp"
)

// Hidden argv[1] values under which stack (or a test binary) runs the runtime's child sides.
const (
	InitArg = "__stack_runtime_init"
	ExecArg = "__stack_runtime_exec"
)

// Env vars naming inherited fds of the init.
const (
	envInitSock = "_STACK_INIT_SOCK"
	envInitFifo = "_STACK_INIT_FIFO"
)

// HiddenModes lists the runtime's re-exec entry points by argv[1]. cmd/stack's dispatch and
// the TestMain of runtime integration tests hand off through it. Entries never return.
func HiddenModes() map[string]func() {
	return map[string]func(){
		InitArg: InitMain,
		ExecArg: ExecMain,
	}
}

// initConfig is what the caller sends the init: everything already resolved and validated.
type initConfig struct {
	Process    *specs.Process    `json:"process"`
	Hostname   string            `json:"hostname,omitempty"`
	Domainname string            `json:"domainname,omitempty"`
	Plan       *rootfsPlan       `json:"plan"`
	Join       map[string]string `json:"join,omitempty"`
	CgroupNS   bool              `json:"cgroupns,omitempty"`
	Sysctl     map[string]string `json:"sysctl,omitempty"`
	Caps       capSets           `json:"caps"`
	ExtraFDs   int               `json:"extraFDs"` // fds 3..3+ExtraFDs-1 stay open
	TinyInit   bool              `json:"tinyInit,omitempty"`
	Terminal   bool              `json:"terminal,omitempty"`
	Seccomp    seccomp.Program   `json:"seccomp,omitempty"`
}

// childReply is the init's (or exec helper's) one message back.
type childReply struct {
	Ready bool `json:"ready,omitempty"`
	*StepError
}

// InitMain is the container init's entry point (argv[1] == InitArg). It never returns.
func InitMain() {
	goruntime.LockOSThread()
	sock, err := fdFromEnv(envInitSock)
	if err != nil {
		fmt.Fprintln(os.Stderr, "stack init:", err)
		os.Exit(1)
	}
	var cfg initConfig
	if err := json.NewDecoder(sock).Decode(&cfg); err != nil {
		// The caller went away before sending the config (killed mid-create): nothing to do.
		os.Exit(1)
	}
	err = runInit(&cfg, sock)
	reply(sock, err)
	os.Exit(1)
}

func reply(sock *os.File, err error) {
	se, ok := err.(*StepError) //nolint:errorlint // runInit returns *StepError unwrapped
	if !ok {
		se = &StepError{Step: "init", Msg: err.Error()}
	}
	_ = json.NewEncoder(sock).Encode(childReply{StepError: se})
}

func fdFromEnv(name string) (*os.File, error) {
	n, err := strconv.Atoi(os.Getenv(name))
	if err != nil || n < 3 {
		return nil, fmt.Errorf("%s=%q: not an inherited fd", name, os.Getenv(name))
	}
	unix.CloseOnExec(n)
	return os.NewFile(uintptr(n), name), nil
}

// fail names the step that failed.
func fail(step string, err error) *StepError { return &StepError{Step: step, Msg: err.Error()} }

func runInit(cfg *initConfig, sock *os.File) error {
	fifo, err := fdFromEnv(envInitFifo)
	if err != nil {
		return fail("exec fifo", err)
	}
	// Namespaces given by path: the netns of a network the caller prepared, for instance.
	for _, typ := range []string{"ipc", "uts", "network"} {
		p, ok := cfg.Join[typ]
		if !ok {
			continue
		}
		if err := joinNamespace(p, nsFlags[specs.LinuxNamespaceType(typ)]); err != nil {
			return fail("join "+typ+" namespace "+p, err)
		}
	}
	if cfg.CgroupNS {
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fail("unshare cgroup namespace", err)
		}
	}
	if err := applyRootfs(cfg.Plan); err != nil {
		return err
	}
	for k, v := range cfg.Sysctl {
		p := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			return fail("set sysctl "+k, err)
		}
	}
	if cfg.Hostname != "" {
		if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
			return fail("set hostname", err)
		}
	}
	if cfg.Domainname != "" {
		if err := unix.Setdomainname([]byte(cfg.Domainname)); err != nil {
			return fail("set domainname", err)
		}
	}
	if err := applyMasks(cfg.Plan); err != nil {
		return err
	}
	p := cfg.Process
	for _, rl := range p.Rlimits {
		lim := syscall.Rlimit{Cur: rl.Soft, Max: rl.Hard}
		// syscall.Setrlimit (not unix's) so Go does not restore its own NOFILE soft limit at exec.
		if err := syscall.Setrlimit(rlimitNames[rl.Type], &lim); err != nil {
			return fail("set "+rl.Type, err)
		}
	}
	if p.OOMScoreAdj != nil {
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*p.OOMScoreAdj)), 0o644); err != nil {
			return fail("set oom_score_adj", err)
		}
	}
	if cfg.Terminal {
		// The pty slave is fd 0; make it our controlling terminal in the new session.
		if _, err := unix.Setsid(); err != nil {
			return fail("setsid", err)
		}
		if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
			return fail("set controlling terminal", err)
		}
	}
	path, err := lookPath(p.Args[0], p.Env)
	if err != nil {
		return fail("find executable", err)
	}
	if err := joinSessionKeyring(); err != nil {
		return err
	}
	if err := finishProcess(p, cfg.Caps, cfg.ExtraFDs, cfg.Seccomp); err != nil {
		return err
	}
	if err := json.NewEncoder(sock).Encode(childReply{Ready: true}); err != nil {
		return fail("report ready", err)
	}
	sock.Close()

	// Wait for Start: opening a fifo for writing blocks until someone opens it for reading.
	// The O_PATH fd is reopened through /proc because the fifo's directory is out of reach
	// after pivot_root.
	w, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", fifo.Fd()), os.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "stack init: open exec fifo:", err)
		os.Exit(1)
	}
	if _, err := w.Write([]byte{0}); err != nil {
		fmt.Fprintln(os.Stderr, "stack init: write exec fifo:", err)
		os.Exit(1)
	}
	// w stays open until the exec closes it (O_CLOEXEC): Start reads on to EOF, so it returns
	// only once the user's process has replaced this Go init. A signal sent right after Start
	// (a stop) then reaches the user's process, not this init, which would exit on it.
	fifo.Close()

	env := withHome(p.Env, p.User.UID)
	if cfg.TinyInit {
		w.Close() // the tiny init stays pid 1 and handles signals itself
		runTinyInit(path, p.Args, env, cfg.ExtraFDs)
	}
	err = syscall.Exec(path, p.Args, env)
	fmt.Fprintf(os.Stderr, "stack init: exec %s: %v\n", p.Args[0], err)
	os.Exit(127)
	return nil
}

func joinNamespace(path string, flag uintptr) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Setns(fd, int(flag))
}

// finishProcess does the last steps of both init and exec, in this order: groups, gid, uid
// (keeping capabilities across the switch), capability sets, ambient set, umask, cwd,
// no_new_privs, close-on-exec for every fd the process is not meant to have.
func finishProcess(p *specs.Process, caps capSets, extraFDs int, filter seccomp.Program) error {
	u := p.User
	if err := installSeccomp(filter, true, p.NoNewPrivileges); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fail("keep capabilities", err)
	}
	last, err := lastCap()
	if err != nil {
		return fail("read cap_last_cap", err)
	}
	for c := 0; c <= last; c++ {
		if caps.Bounding&(1<<uint(c)) == 0 {
			if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
				return fail("drop bounding capability "+strconv.Itoa(c), err)
			}
		}
	}
	groups := make([]int, len(u.AdditionalGids))
	for i, g := range u.AdditionalGids {
		groups[i] = int(g)
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fail("set additional groups", err)
	}
	if err := syscall.Setresgid(int(u.GID), int(u.GID), int(u.GID)); err != nil {
		return fail("set gid", err)
	}
	if err := syscall.Setresuid(int(u.UID), int(u.UID), int(u.UID)); err != nil {
		return fail("set uid", err)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fail("clear keep capabilities", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(caps.Effective), Permitted: uint32(caps.Permitted), Inheritable: uint32(caps.Inheritable)},
		{Effective: uint32(caps.Effective >> 32), Permitted: uint32(caps.Permitted >> 32), Inheritable: uint32(caps.Inheritable >> 32)},
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fail("set capabilities", err)
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fail("clear ambient capabilities", err)
	}
	// The kernel only raises an ambient capability that is permitted and inheritable; like
	// runc, skip the others rather than fail (runc's own `runc spec` asks for such ones).
	ambient := caps.Ambient & caps.Permitted & caps.Inheritable
	for c := 0; c <= last; c++ {
		if ambient&(1<<uint(c)) != 0 {
			if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(c), 0, 0); err != nil {
				return fail("raise ambient capability "+strconv.Itoa(c), err)
			}
		}
	}
	umask := 0o022
	if u.Umask != nil {
		umask = int(*u.Umask)
	}
	unix.Umask(umask)
	cwd := p.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if err := chdirInside(cwd); err != nil {
		return err
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fail("set no_new_privs", err)
		}
	}
	if err := unix.CloseRange(uint(3+extraFDs), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fail("mark fds close-on-exec", err)
	}
	return installSeccomp(filter, false, p.NoNewPrivileges)
}

func lastCap() (int, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// lookPath finds file in the PATH of env, inside the container's root.
func lookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		return file, checkExecutable(file)
	}
	pathEnv := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			pathEnv = v
		}
	}
	for _, dir := range strings.Split(pathEnv, ":") {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + file
		if checkExecutable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q: executable file not found in $PATH", file)
}

func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s: permission denied (not an executable file)", p)
	}
	return nil
}
