// Package seccomp owns one translation and one syscall: an OCI seccomp config (specs.LinuxSeccomp)
// compiled into a classic BPF program for one architecture, and the installation of that program
// in the calling process. It also holds stack's default profile (Default). Compile is pure and is
// tested by running the program in a BPF interpreter; it knows nothing of containers.
//
// Semantics follow the OCI runtime spec as libseccomp reads it, with these documented limits:
// the conditions of one rule are ANDed (libseccomp ORs several conditions on the same argument;
// runc splits those into separate rules, which a config can do itself); syscall names unknown on
// the target architecture are skipped, as runc does; the x32 ABI and architectures other than the
// target one get the bad-architecture action (ENOSYS), so a filter cannot be bypassed through
// int 0x80 or x32 numbers; SCMP_ACT_NOTIFY and filter flags are refused.
package seccomp

import (
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Offsets in struct seccomp_data (linux/seccomp.h): int nr; __u32 arch; __u64 ip; __u64 args[6].
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// x32Bit marks x32-ABI syscall numbers on x86_64.
const x32Bit = 0x40000000

// badArchRet is returned for a syscall made through an ABI the filter was not compiled for.
const badArchRet = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)

// Program is a compiled filter, ready for Install. It marshals to JSON as is.
type Program []bpf.RawInstruction

// Compile returns the BPF program enforcing cfg for processes of architecture goarch (a GOARCH
// name, normally runtime.GOARCH).
func Compile(cfg *specs.LinuxSeccomp, goarch string) (Program, error) {
	if cfg == nil {
		return nil, errors.New("seccomp: no config")
	}
	if len(cfg.Flags) > 0 {
		return nil, fmt.Errorf("seccomp: flags %v are not supported", cfg.Flags)
	}
	info, err := archInfo(goarch)
	if err != nil {
		return nil, err
	}
	defRet, err := action(cfg.DefaultAction, cfg.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("seccomp: default action: %w", err)
	}
	a := &assembler{}
	// Wrong architecture (or ABI): refuse before looking at numbers, which differ per ABI.
	// The bad-architecture returns sit right after their tests: a jump to the end of a long
	// program would not fit in a conditional jump's 8-bit offset.
	a.emit(bpf.LoadAbsolute{Off: offArch, Size: 4})
	a.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: info.id, SkipTrue: 1})
	a.emit(bpf.RetConstant{Val: badArchRet})
	a.emit(bpf.LoadAbsolute{Off: offNr, Size: 4})
	if info.x32 {
		a.emit(bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: x32Bit, SkipFalse: 1})
		a.emit(bpf.RetConstant{Val: badArchRet})
	}
	for i, sc := range cfg.Syscalls {
		ret, err := action(sc.Action, sc.ErrnoRet)
		if err != nil {
			return nil, fmt.Errorf("seccomp: syscalls[%d] %v: %w", i, sc.Names, err)
		}
		for _, name := range sc.Names {
			nr, ok := info.number(name)
			if !ok {
				continue
			}
			if err := a.rule(uint32(nr), sc.Args, ret); err != nil {
				return nil, fmt.Errorf("seccomp: syscalls[%d] %s: %w", i, name, err)
			}
		}
	}
	a.emit(bpf.RetConstant{Val: defRet})
	insts, err := a.resolve()
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	if len(insts) > 4096 { // BPF_MAXINSNS
		return nil, fmt.Errorf("seccomp: program has %d instructions, more than the kernel's 4096", len(insts))
	}
	raw, err := bpf.Assemble(insts)
	if err != nil {
		return nil, fmt.Errorf("seccomp: assemble: %w", err)
	}
	return raw, nil
}

func action(act specs.LinuxSeccompAction, errnoRet *uint) (uint32, error) {
	errno := uint32(unix.EPERM)
	if errnoRet != nil {
		if *errnoRet > 0xffff {
			return 0, fmt.Errorf("errnoRet %d out of range", *errnoRet)
		}
		errno = uint32(*errnoRet)
	}
	switch act {
	case specs.ActKill, specs.ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD, nil
	case specs.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS, nil
	case specs.ActTrap:
		return unix.SECCOMP_RET_TRAP, nil
	case specs.ActErrno:
		return unix.SECCOMP_RET_ERRNO | errno, nil
	case specs.ActTrace:
		return unix.SECCOMP_RET_TRACE | errno, nil
	case specs.ActAllow:
		return unix.SECCOMP_RET_ALLOW, nil
	case specs.ActLog:
		return unix.SECCOMP_RET_LOG, nil
	}
	return 0, fmt.Errorf("action %q is not supported", act)
}

// rule emits: if nr matches and every condition holds, return ret; else fall through with A
// holding the syscall number again.
func (a *assembler) rule(nr uint32, args []specs.LinuxSeccompArg, ret uint32) error {
	skip := a.label()
	a.jump(bpf.JumpEqual, nr, next, skip)
	for _, c := range args {
		if c.Index > 5 {
			return fmt.Errorf("argument index %d out of range", c.Index)
		}
		if err := a.cond(c, skip); err != nil {
			return err
		}
	}
	a.emit(bpf.RetConstant{Val: ret})
	a.mark(skip)
	if len(args) > 0 {
		a.emit(bpf.LoadAbsolute{Off: offNr, Size: 4})
	}
	return nil
}

// cond emits the 64-bit comparison of one argument (little-endian: low word first), jumping to
// fail when it does not hold and falling through when it does.
func (a *assembler) cond(c specs.LinuxSeccompArg, fail int) error {
	lo := uint32(offArgs + 8*c.Index)
	hi := lo + 4
	vlo, vhi := uint32(c.Value), uint32(c.Value>>32)
	pass := a.label()
	switch c.Op {
	case specs.OpEqualTo:
		a.emit(bpf.LoadAbsolute{Off: hi, Size: 4})
		a.jump(bpf.JumpEqual, vhi, next, fail)
		a.emit(bpf.LoadAbsolute{Off: lo, Size: 4})
		a.jump(bpf.JumpEqual, vlo, next, fail)
	case specs.OpNotEqual:
		a.emit(bpf.LoadAbsolute{Off: hi, Size: 4})
		a.jump(bpf.JumpEqual, vhi, next, pass)
		a.emit(bpf.LoadAbsolute{Off: lo, Size: 4})
		a.jump(bpf.JumpEqual, vlo, fail, next)
	case specs.OpMaskedEqual:
		wlo, whi := uint32(c.ValueTwo), uint32(c.ValueTwo>>32)
		a.emit(bpf.LoadAbsolute{Off: hi, Size: 4})
		a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: vhi})
		a.jump(bpf.JumpEqual, whi, next, fail)
		a.emit(bpf.LoadAbsolute{Off: lo, Size: 4})
		a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: vlo})
		a.jump(bpf.JumpEqual, wlo, next, fail)
	case specs.OpGreaterThan, specs.OpGreaterEqual:
		a.emit(bpf.LoadAbsolute{Off: hi, Size: 4})
		a.jump(bpf.JumpGreaterThan, vhi, pass, next)
		a.jump(bpf.JumpEqual, vhi, next, fail)
		a.emit(bpf.LoadAbsolute{Off: lo, Size: 4})
		cmp := bpf.JumpGreaterThan
		if c.Op == specs.OpGreaterEqual {
			cmp = bpf.JumpGreaterOrEqual
		}
		a.jump(cmp, vlo, pass, fail)
	case specs.OpLessThan, specs.OpLessEqual:
		a.emit(bpf.LoadAbsolute{Off: hi, Size: 4})
		a.jump(bpf.JumpGreaterThan, vhi, fail, next)
		a.jump(bpf.JumpEqual, vhi, next, pass)
		a.emit(bpf.LoadAbsolute{Off: lo, Size: 4})
		cmp := bpf.JumpGreaterOrEqual // lo >= v fails LT
		if c.Op == specs.OpLessEqual {
			cmp = bpf.JumpGreaterThan
		}
		a.jump(cmp, vlo, fail, pass)
	default:
		return fmt.Errorf("operator %q is not supported", c.Op)
	}
	a.mark(pass)
	return nil
}

// next, as a jump target, is the following instruction.
const next = -1

// assembler collects instructions whose conditional jumps name labels, resolved at the end.
type assembler struct {
	insts  []bpf.Instruction
	labels []int // label -> instruction index
	jumps  []pendingJump
}

type pendingJump struct {
	at       int
	cond     bpf.JumpTest
	val      uint32
	onT, onF int
}

func (a *assembler) emit(i bpf.Instruction) { a.insts = append(a.insts, i) }

func (a *assembler) label() int {
	a.labels = append(a.labels, -1)
	return len(a.labels) - 1
}

func (a *assembler) mark(l int) {
	a.labels[l] = len(a.insts)
}

func (a *assembler) jump(cond bpf.JumpTest, val uint32, onT, onF int) {
	a.jumps = append(a.jumps, pendingJump{at: len(a.insts), cond: cond, val: val, onT: onT, onF: onF})
	a.emit(nil)
}

func (a *assembler) resolve() ([]bpf.Instruction, error) {
	skip := func(at, l int) (uint8, error) {
		if l == next {
			return 0, nil
		}
		d := a.labels[l] - at - 1
		if a.labels[l] < 0 || d < 0 || d > 255 {
			return 0, fmt.Errorf("jump from %d to label %d out of range", at, l)
		}
		return uint8(d), nil
	}
	for _, j := range a.jumps {
		st, err := skip(j.at, j.onT)
		if err != nil {
			return nil, err
		}
		sf, err := skip(j.at, j.onF)
		if err != nil {
			return nil, err
		}
		a.insts[j.at] = bpf.JumpIf{Cond: j.cond, Val: j.val, SkipTrue: st, SkipFalse: sf}
	}
	return a.insts, nil
}
