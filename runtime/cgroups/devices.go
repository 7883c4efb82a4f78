package cgroups

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultDevices are the device rules every container gets after its config's own rules: mknod
// of any node (opening it is what the allowlist guards), the nodes the runtime creates in /dev
// (null, zero, full, random, urandom, tty, console, ptmx and the devpts ptys), and /dev/net/tun.
// This is the set runc and Docker allow by default. A fresh slice on every call.
func DefaultDevices() []specs.LinuxDeviceCgroup {
	rule := func(typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
		r := specs.LinuxDeviceCgroup{Allow: true, Type: typ, Access: access}
		if major >= 0 {
			r.Major = &major
		}
		if minor >= 0 {
			r.Minor = &minor
		}
		return r
	}
	return []specs.LinuxDeviceCgroup{
		rule("c", -1, -1, "m"),
		rule("b", -1, -1, "m"),
		rule("c", 1, 3, "rwm"),    // /dev/null
		rule("c", 1, 5, "rwm"),    // /dev/zero
		rule("c", 1, 7, "rwm"),    // /dev/full
		rule("c", 1, 8, "rwm"),    // /dev/random
		rule("c", 1, 9, "rwm"),    // /dev/urandom
		rule("c", 5, 0, "rwm"),    // /dev/tty
		rule("c", 5, 1, "rwm"),    // /dev/console
		rule("c", 5, 2, "rwm"),    // /dev/ptmx
		rule("c", 136, -1, "rwm"), // /dev/pts/*
		rule("c", 10, 200, "rwm"), // /dev/net/tun
	}
}

// DeviceRules is the complete, ordered device rule list for a container whose config asks for
// cfg: deny everything, then cfg in order, then DefaultDevices. Later rules win, so a config
// that allows all devices (privileged) stays allowed, and no config can take away /dev/null.
func DeviceRules(cfg []specs.LinuxDeviceCgroup) ([]specs.LinuxDeviceCgroup, error) {
	out := []specs.LinuxDeviceCgroup{{Allow: false, Type: "a", Access: "rwm"}}
	for i, r := range cfg {
		n, err := normalizeRule(r)
		if err != nil {
			return nil, fmt.Errorf("device rule %d: %w", i, err)
		}
		out = append(out, n)
	}
	return append(out, DefaultDevices()...), nil
}

// normalizeRule spells type "" as "a", access "" as "rwm", and a major/minor of -1 as nil
// (wildcard), and rejects anything else the kernel would not take.
func normalizeRule(r specs.LinuxDeviceCgroup) (specs.LinuxDeviceCgroup, error) {
	switch r.Type {
	case "":
		r.Type = "a"
	case "a", "b", "c":
	default:
		return r, fmt.Errorf("device type %q: %w", r.Type, ErrInvalid)
	}
	if r.Access == "" {
		r.Access = "rwm"
	}
	for _, c := range r.Access {
		if !strings.ContainsRune("rwm", c) {
			return r, fmt.Errorf("device access %q: %w", r.Access, ErrInvalid)
		}
	}
	r.Access = canonicalAccess(r.Access)
	for _, p := range []**int64{&r.Major, &r.Minor} {
		if *p == nil {
			continue
		}
		switch v := **p; {
		case v == -1:
			*p = nil
		case v < 0 || v > math.MaxInt32:
			return r, fmt.Errorf("device number %d: %w", v, ErrInvalid)
		default:
			n := v // copy: the caller's pointer is not ours to keep
			*p = &n
		}
	}
	return r, nil
}

func canonicalAccess(a string) string {
	var b strings.Builder
	for _, c := range "rwm" {
		if strings.ContainsRune(a, c) {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// v1DeviceLine formats a rule the way devices.allow/devices.deny take it: "c 1:3 rwm", with "*"
// for a wildcard number. The kernel reads the bare "a" as "all devices, all access".
func v1DeviceLine(r specs.LinuxDeviceCgroup) string {
	if r.Type == "a" && r.Major == nil && r.Minor == nil && r.Access == "rwm" {
		return "a"
	}
	num := func(p *int64) string {
		if p == nil {
			return "*"
		}
		return strconv.FormatInt(*p, 10)
	}
	return r.Type + " " + num(r.Major) + ":" + num(r.Minor) + " " + r.Access
}

// v1DeviceSettings turns the rule list into writes to devices.allow and devices.deny in order.
func v1DeviceSettings(rules []specs.LinuxDeviceCgroup) []Setting {
	out := make([]Setting, 0, len(rules))
	for _, r := range rules {
		file := "devices.deny"
		if r.Allow {
			file = "devices.allow"
		}
		out = append(out, Setting{"devices", file, v1DeviceLine(r)})
	}
	return out
}
