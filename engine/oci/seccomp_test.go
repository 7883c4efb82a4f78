package oci

import (
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/stackrun/stack/spec"
)

// denies reports whether the profile has an unconditional rule denying name.
func denies(p *specs.LinuxSeccomp, name string) bool {
	for _, r := range p.Syscalls {
		if r.Action == specs.ActErrno && len(r.Args) == 0 && slices.Contains(r.Names, name) {
			return true
		}
	}
	return false
}

func TestSeccompDefault(t *testing.T) {
	tests := []struct {
		name        string
		svc         spec.Service
		none        bool // no filter at all
		mountDenied bool
	}{
		{name: "default", svc: spec.Service{Name: "web"}, mountDenied: true},
		{name: "cap_add SYS_ADMIN", svc: spec.Service{Name: "web", CapAdd: []string{"SYS_ADMIN"}}},
		{name: "cap_add ALL", svc: spec.Service{Name: "web", CapAdd: []string{"ALL"}}},
		{name: "privileged", svc: spec.Service{Name: "web", Privileged: true}, none: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Build(input(&tt.svc))
			if err != nil {
				t.Fatal(err)
			}
			p := cfg.Linux.Seccomp
			if tt.none {
				if p != nil {
					t.Fatalf("privileged container got a seccomp profile")
				}
				return
			}
			if p == nil {
				t.Fatal("no seccomp profile")
			}
			if !denies(p, "keyctl") || !denies(p, "add_key") || !denies(p, "request_key") {
				t.Errorf("keyring syscalls must always be denied")
			}
			for _, n := range []string{"mount", "unshare", "setns"} {
				if got := denies(p, n); got != tt.mountDenied {
					t.Errorf("%s denied = %v, want %v", n, got, tt.mountDenied)
				}
			}
		})
	}
}
