package cgroups

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// cgroup v2 has no devices.allow: the kernel asks a BPF_PROG_TYPE_CGROUP_DEVICE program attached
// to the cgroup about every open and mknod of a device node, passing
//
//	struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
//
// where access_type holds the device type (BPF_DEVCG_DEV_*) in its low 16 bits and the access
// (BPF_DEVCG_ACC_* bits) in its high 16 bits; returning 1 allows, 0 denies (EPERM).
// See include/uapi/linux/bpf.h and Documentation/admin-guide/cgroup-v2.rst ("Device controller").
const (
	bpfDevBlock = 1 // BPF_DEVCG_DEV_BLOCK
	bpfDevChar  = 2 // BPF_DEVCG_DEV_CHAR

	bpfAccMknod = 1 // BPF_DEVCG_ACC_MKNOD
	bpfAccRead  = 2 // BPF_DEVCG_ACC_READ
	bpfAccWrite = 4 // BPF_DEVCG_ACC_WRITE
	bpfAccAll   = bpfAccMknod | bpfAccRead | bpfAccWrite
)

func bpfAccess(a string) int32 {
	var n int32
	for _, c := range a {
		switch c {
		case 'm':
			n |= bpfAccMknod
		case 'r':
			n |= bpfAccRead
		case 'w':
			n |= bpfAccWrite
		}
	}
	return n
}

// DeviceFilter compiles an ordered rule list (as DeviceRules returns it) into the cgroup v2
// device program. Like the v1 lists, a later rule overrides an earlier one, so the program tests
// the rules from last to first and returns at the first match; a request matching no rule is
// denied. An allow rule matches a request whose access bits all lie in the rule's; a deny rule
// matches a request that wants any of the rule's bits, so "deny w" also refuses opening for
// read+write.
func DeviceFilter(rules []specs.LinuxDeviceCgroup) (asm.Instructions, error) {
	// Registers: R1 ctx, R2 device type, R3 access, R4 major, R5 minor, R6 scratch.
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word),
		asm.And.Imm32(asm.R2, 0xffff),
		asm.LoadMem(asm.R3, asm.R1, 0, asm.Word),
		asm.RSh.Imm32(asm.R3, 16),
		asm.LoadMem(asm.R4, asm.R1, 4, asm.Word),
		asm.LoadMem(asm.R5, asm.R1, 8, asm.Word),
	}
	// The verifier rejects unreachable instructions, so nothing is emitted after a rule that
	// matches every request.
	for i := len(rules) - 1; i >= 0; i-- {
		r, err := normalizeRule(rules[i])
		if err != nil {
			return nil, fmt.Errorf("device rule %d: %w", i, err)
		}
		next := "rule" + strconv.Itoa(i-1)
		var block asm.Instructions
		switch r.Type {
		case "b":
			block = append(block, asm.JNE.Imm(asm.R2, bpfDevBlock, next))
		case "c":
			block = append(block, asm.JNE.Imm(asm.R2, bpfDevChar, next))
		}
		acc := bpfAccess(r.Access)
		switch {
		case acc == bpfAccAll:
		case r.Allow:
			// Any requested bit outside the rule's: not this rule.
			block = append(block, asm.JSet.Imm(asm.R3, bpfAccAll&^acc, next))
		default:
			block = append(block,
				asm.Mov.Reg(asm.R6, asm.R3),
				asm.And.Imm(asm.R6, acc),
				asm.JEq.Imm(asm.R6, 0, next))
		}
		if r.Major != nil {
			block = append(block, asm.JNE.Imm(asm.R4, int32(*r.Major), next))
		}
		if r.Minor != nil {
			block = append(block, asm.JNE.Imm(asm.R5, int32(*r.Minor), next))
		}
		ret := int32(0)
		if r.Allow {
			ret = 1
		}
		block = append(block, asm.Mov.Imm32(asm.R0, ret), asm.Return())
		block[0] = block[0].WithSymbol("rule" + strconv.Itoa(i))
		insns = append(insns, block...)
		if len(block) == 2 {
			return insns, nil // matched everything
		}
	}
	insns = append(insns,
		asm.Mov.Imm32(asm.R0, 0).WithSymbol("rule-1"),
		asm.Return())
	return insns, nil
}

// attachDeviceFilter loads the device program for rules and attaches it to the cgroup2
// directory dir, replacing whatever device programs stack attached there before (an update).
// Programs attached with BPF_F_ALLOW_MULTI all have to allow an access, so between attaching
// the new program and detaching the old ones the container gets the stricter of the two.
func attachDeviceFilter(dir string, rules []specs.LinuxDeviceCgroup) error {
	insns, err := DeviceFilter(rules)
	if err != nil {
		return err
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "stack_devices",
		Type:         ebpf.CGroupDevice,
		Instructions: insns,
		License:      "Apache-2.0",
	})
	if err != nil {
		return fmt.Errorf("load device program: %w", err)
	}
	defer prog.Close()

	f, err := os.OpenFile(dir, unix.O_DIRECTORY|os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fd := int(f.Fd())

	old, err := link.QueryPrograms(link.QueryOptions{Target: fd, Attach: ebpf.AttachCGroupDevice})
	if err != nil {
		return fmt.Errorf("query device programs of %s: %w", dir, err)
	}
	// The attachment keeps the program alive after prog is closed.
	if err := link.RawAttachProgram(link.RawAttachProgramOptions{
		Target:  fd,
		Program: prog,
		Attach:  ebpf.AttachCGroupDevice,
		Flags:   unix.BPF_F_ALLOW_MULTI,
	}); err != nil {
		return fmt.Errorf("attach device program to %s: %w", dir, err)
	}
	var errs []error
	for _, p := range old.Programs {
		errs = append(errs, detachProgram(fd, p.ID))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("detach previous device programs of %s: %w", dir, err)
	}
	return nil
}

func detachProgram(fd int, id ebpf.ProgramID) error {
	p, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return err
	}
	defer p.Close()
	return link.RawDetachProgram(link.RawDetachProgramOptions{
		Target:  fd,
		Program: p,
		Attach:  ebpf.AttachCGroupDevice,
	})
}
