package seccomp

import (
	"fmt"
	"sort"

	"golang.org/x/sys/unix"
)

//go:generate go run gen_syscalls.go

// syscallNr is one entry of a syscall table: tables are sorted by name (zsyscalls.go).
type syscallNr struct {
	name string
	nr   uint32
}

// archTable is one architecture: its audit arch and its syscall numbers.
type archTable struct {
	name  string
	id    uint32 // AUDIT_ARCH_*, as seccomp_data.arch reports it
	calls []syscallNr
	// x32: the x86_64 table, whose processes may also call through the x32 ABI.
	x32 bool
}

var (
	archX86_64  = &archTable{name: "x86_64", id: unix.AUDIT_ARCH_X86_64, calls: syscallsX86_64[:], x32: true}
	archAARCH64 = &archTable{name: "aarch64", id: unix.AUDIT_ARCH_AARCH64, calls: syscallsAARCH64[:]}
	archI386    = &archTable{name: "i386", id: unix.AUDIT_ARCH_I386, calls: syscalls386[:]}
	archARM     = &archTable{name: "arm", id: unix.AUDIT_ARCH_ARM, calls: syscallsARM[:]}
)

// archInfo maps GOARCH names to syscall tables.
func archInfo(goarch string) (*archTable, error) {
	switch goarch {
	case "amd64":
		return archX86_64, nil
	case "arm64":
		return archAARCH64, nil
	case "386":
		return archI386, nil
	case "arm":
		return archARM, nil
	}
	return nil, fmt.Errorf("seccomp: architecture %s is not supported", goarch)
}

// number returns the number of syscall name, or false when the architecture has none.
func (a *archTable) number(name string) (int, bool) {
	i := sort.Search(len(a.calls), func(i int) bool { return a.calls[i].name >= name })
	if i < len(a.calls) && a.calls[i].name == name {
		return int(a.calls[i].nr), true
	}
	return 0, false
}
