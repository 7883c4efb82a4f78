package cgroups

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/cilium/ebpf"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/stackrun/stack/internal/testutil"
)

// runDeviceProgram executes the marshalled bytecode of a device program on one request, with a
// small interpreter for the instructions such programs use. The kernel cannot run
// BPF_PROG_TYPE_CGROUP_DEVICE programs through BPF_PROG_TEST_RUN, so this is how the emitted
// bytes (not the builder calls) are checked; the root test below checks the verifier accepts
// them and the live tests check the kernel enforces them.
func runDeviceProgram(t *testing.T, code []byte, typ, acc, major, minor uint32) uint64 {
	t.Helper()
	ctx := make([]byte, 12)
	binary.LittleEndian.PutUint32(ctx[0:], typ|acc<<16)
	binary.LittleEndian.PutUint32(ctx[4:], major)
	binary.LittleEndian.PutUint32(ctx[8:], minor)
	var reg [11]uint64
	const ctxAddr = 1 << 40 // R1 points at ctx; any other base address is a bug
	reg[1] = ctxAddr
	n := len(code) / 8
	for pc, steps := 0, 0; ; pc, steps = pc+1, steps+1 {
		if pc < 0 || pc >= n || steps > 10000 {
			t.Fatalf("program counter %d out of [0,%d) or runaway after %d steps", pc, n, steps)
		}
		ins := code[pc*8 : pc*8+8]
		op, dst, src := ins[0], ins[1]&0x0f, ins[1]>>4
		off := int16(binary.LittleEndian.Uint16(ins[2:]))
		imm := int32(binary.LittleEndian.Uint32(ins[4:]))
		class := op & 0x07
		operand := uint64(int64(imm)) // K operands are sign-extended
		if op&0x08 != 0 {
			operand = reg[src]
		}
		switch class {
		case 0x01: // LDX
			if op != 0x61 { // BPF_LDX|BPF_MEM|BPF_W
				t.Fatalf("pc %d: unsupported load op %#x", pc, op)
			}
			addr := int64(reg[src]) - ctxAddr + int64(off)
			if addr < 0 || addr+4 > int64(len(ctx)) {
				t.Fatalf("pc %d: load outside ctx at %d", pc, addr)
			}
			reg[dst] = uint64(binary.LittleEndian.Uint32(ctx[addr:]))
		case 0x04, 0x07: // ALU (32-bit), ALU64
			var v uint64
			switch op & 0xf0 {
			case 0xb0: // MOV
				v = operand
			case 0x50: // AND
				v = reg[dst] & operand
			case 0x70: // RSH
				v = reg[dst] >> (operand & 63)
			default:
				t.Fatalf("pc %d: unsupported alu op %#x", pc, op)
			}
			if class == 0x04 {
				v = uint64(uint32(v)) // 32-bit ALU zero-extends
			}
			reg[dst] = v
		case 0x05: // JMP
			var taken bool
			switch op & 0xf0 {
			case 0x90: // EXIT
				return reg[0]
			case 0x10: // JEQ
				taken = reg[dst] == operand
			case 0x50: // JNE
				taken = reg[dst] != operand
			case 0x40: // JSET
				taken = reg[dst]&operand != 0
			case 0x00: // JA
				taken = true
			default:
				t.Fatalf("pc %d: unsupported jump op %#x", pc, op)
			}
			if taken {
				pc += int(off)
			}
		default:
			t.Fatalf("pc %d: unsupported instruction class %#x", pc, class)
		}
	}
}

// referenceAllowed is the rule semantics spelled out directly: the last matching rule decides,
// no match denies.
func referenceAllowed(rules []specs.LinuxDeviceCgroup, typ byte, acc uint32, major, minor int64) bool {
	for i := len(rules) - 1; i >= 0; i-- {
		r, _ := normalizeRule(rules[i])
		if r.Type != "a" && r.Type[0] != typ {
			continue
		}
		if r.Major != nil && *r.Major != major || r.Minor != nil && *r.Minor != minor {
			continue
		}
		ra := uint32(bpfAccess(r.Access))
		if r.Allow && acc&^ra != 0 || !r.Allow && acc&ra == 0 {
			continue
		}
		return r.Allow
	}
	return false
}

func TestDeviceFilter(t *testing.T) {
	configs := map[string][]specs.LinuxDeviceCgroup{
		"default": nil,
		"oci deny all then a disk read-only": {
			{Allow: false, Access: "rwm"},
			{Allow: true, Type: "b", Major: i64(8), Minor: i64(0), Access: "r"},
		},
		"privileged": {{Allow: true, Access: "rwm"}},
		"deny write to full, wildcard minors": {
			{Allow: true, Type: "c", Major: i64(1), Access: "rw"},
			{Allow: false, Type: "c", Major: i64(1), Minor: i64(7), Access: "w"},
		},
		"empty type and access": {{Allow: true, Type: "", Major: i64(4), Minor: i64(-1)}},
		"partial deny after allow": {
			{Allow: true, Type: "c", Major: i64(4), Access: "rw"},
			{Allow: false, Type: "c", Major: i64(4), Minor: i64(64), Access: "w"},
			{Allow: false, Type: "b", Access: "m"},
		},
	}
	type req struct {
		typ          byte
		acc          uint32
		major, minor int64
	}
	var reqs []req
	for _, typ := range []byte{'b', 'c'} {
		for acc := uint32(1); acc <= 7; acc++ {
			for _, mm := range [][2]int64{{1, 3}, {1, 7}, {1, 9}, {5, 2}, {136, 4}, {8, 0}, {8, 1}, {4, 64}, {10, 200}, {7, 0}} {
				reqs = append(reqs, req{typ, acc, mm[0], mm[1]})
			}
		}
	}
	check := func(t *testing.T, rules []specs.LinuxDeviceCgroup) {
		insns, err := DeviceFilter(rules)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := insns.Marshal(&buf, binary.LittleEndian); err != nil {
			t.Fatal(err)
		}
		for _, r := range reqs {
			typ := uint32(bpfDevChar)
			if r.typ == 'b' {
				typ = bpfDevBlock
			}
			got := runDeviceProgram(t, buf.Bytes(), typ, r.acc, uint32(r.major), uint32(r.minor)) == 1
			if want := referenceAllowed(rules, r.typ, r.acc, r.major, r.minor); got != want {
				t.Errorf("%c %d:%d access %03b: program says %v, rules say %v\n%v", r.typ, r.major, r.minor, r.acc, got, want, insns)
			}
		}
	}
	for name, cfg := range configs {
		// The config's rules alone (so no default rule shadows them), and as a container
		// gets them.
		t.Run(name+"/alone", func(t *testing.T) { check(t, cfg) })
		t.Run(name+"/container", func(t *testing.T) {
			rules, err := DeviceRules(cfg)
			if err != nil {
				t.Fatal(err)
			}
			check(t, rules)
		})
	}

	// Spot checks of what the reference model itself promises.
	rules, _ := DeviceRules(nil)
	for _, c := range []struct {
		typ          byte
		acc          uint32
		major, minor int64
		want         bool
	}{
		{'c', bpfAccRead | bpfAccWrite, 1, 3, true},  // open /dev/null rw
		{'c', bpfAccRead, 136, 9, true},              // a pty
		{'b', bpfAccMknod, 8, 0, true},               // mknod of a disk
		{'b', bpfAccRead, 8, 0, false},               // but not opening it
		{'c', bpfAccRead, 4, 1, false},               // a tty outside the list
		{'c', bpfAccWrite | bpfAccMknod, 1, 5, true}, // zero
	} {
		if got := referenceAllowed(rules, c.typ, c.acc, c.major, c.minor); got != c.want {
			t.Errorf("default rules: %c %d:%d %03b allowed=%v, want %v", c.typ, c.major, c.minor, c.acc, got, c.want)
		}
	}
	deny := []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}, {Allow: false, Type: "c", Major: i64(1), Minor: i64(7), Access: "w"}}
	if referenceAllowed(deny, 'c', bpfAccRead|bpfAccWrite, 1, 7) {
		t.Error("deny w must refuse opening for read+write")
	}
	if !referenceAllowed(deny, 'c', bpfAccRead, 1, 7) {
		t.Error("deny w must leave read alone")
	}
}

func TestDeviceFilterStopsAfterCatchAll(t *testing.T) {
	insns, err := DeviceFilter([]specs.LinuxDeviceCgroup{
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},
		{Allow: true, Type: "a", Access: "rwm"},
	})
	if err != nil {
		t.Fatal(err)
	}
	// 6 loads/shifts, then "r0 = 1; exit": the /dev/null rule is unreachable and left out,
	// since the verifier refuses unreachable instructions.
	if len(insns) != 8 {
		t.Errorf("got %d instructions:\n%v", len(insns), insns)
	}
}

// TestDeviceFilterVerifier loads every program of TestDeviceFilter into the kernel, which runs
// the verifier on it.
func TestDeviceFilterVerifier(t *testing.T) {
	testutil.RequireRoot(t)
	for i, cfg := range [][]specs.LinuxDeviceCgroup{
		nil,
		{{Allow: true, Access: "rwm"}},
		{{Allow: false, Access: "rwm"}, {Allow: true, Type: "b", Major: i64(8), Access: "r"}, {Allow: false, Type: "c", Major: i64(1), Minor: i64(7), Access: "w"}},
	} {
		rules, err := DeviceRules(cfg)
		if err != nil {
			t.Fatal(err)
		}
		insns, err := DeviceFilter(rules)
		if err != nil {
			t.Fatal(err)
		}
		prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.CGroupDevice, Instructions: insns, License: "Apache-2.0"})
		if err != nil {
			t.Fatalf("config %d: %v", i, fmt.Errorf("load: %w", err))
		}
		prog.Close()
	}
}
