package volumes

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stackrun/stack/spec"
)

func TestPrepareBindSources(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	project := filepath.Join(base, "project")
	stateRoot := filepath.Join(base, "state")
	if err := os.MkdirAll(filepath.Join(project, "existing"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Symlinks planted next to the project: one to the state root, one to /.
	if err := os.Symlink(stateRoot, filepath.Join(project, "to-state")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/", filepath.Join(project, "to-root")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(stateRoot, "planted"), filepath.Join(project, "dangling")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("existing", filepath.Join(project, "alias")); err != nil {
		t.Fatal(err)
	}
	// Inside the project: a dangling symlink that stays inside, and symlinks a container could
	// have planted in a bind-mounted directory, leading out of the project.
	if err := os.Symlink("made/by/link", filepath.Join(project, "dangling-in")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(project, "shared"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(base, "host-etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(base, "host-etc"), filepath.Join(project, "shared", "planted")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../elsewhere/dir", filepath.Join(project, "shared", "planted-dangling")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(base, "links"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(base, "host-etc"), filepath.Join(base, "links", "to-host-etc")); err != nil {
		t.Fatal(err)
	}
	s, err := Open(filepath.Join(stateRoot, Dir))
	if err != nil {
		t.Fatal(err)
	}
	o := PlanOptions{Project: "p", Container: "p-web-1", ProjectDir: project, StateRoot: stateRoot}

	for _, tc := range []struct {
		name  string
		mount spec.Mount
		allow bool
		want  string // source handed to the runtime; "" when an error is expected
		is    error
		says  string
	}{
		{name: "existing", mount: spec.Mount{Source: "./existing"}, want: filepath.Join(project, "existing")},
		{name: "symlink resolved", mount: spec.Mount{Source: "./alias"}, want: filepath.Join(project, "existing")},
		{name: "short syntax creates", mount: spec.Mount{Source: "./new/deep", CreateHostPath: true}, want: filepath.Join(project, "new", "deep")},
		{name: "long syntax missing", mount: spec.Mount{Source: "./absent"}, is: ErrNotFound, says: "create_host_path"},
		{name: "symlink to the state root", mount: spec.Mount{Source: "./to-state"}, is: ErrRefused, says: "resolves to " + stateRoot},
		{name: "symlink to /", mount: spec.Mount{Source: "./to-root"}, is: ErrRefused, says: LabelAllowHostMount},
		{name: "missing below a symlink to the state root", mount: spec.Mount{Source: "./to-state/new", CreateHostPath: true}, is: ErrRefused, says: "resolves to " + filepath.Join(stateRoot, "new")},
		{name: "dangling symlink into the state root", mount: spec.Mount{Source: "./dangling", CreateHostPath: true}, is: ErrRefused, says: "resolves to " + filepath.Join(stateRoot, "planted")},
		{name: "dangling symlink inside the project", mount: spec.Mount{Source: "./dangling-in", CreateHostPath: true}, want: filepath.Join(project, "made", "by", "link")},
		{name: "planted symlink out of the project", mount: spec.Mount{Source: "./shared/planted"}, is: ErrRefused, says: "outside it"},
		{name: "planted dangling symlink out of the project", mount: spec.Mount{Source: "./shared/planted-dangling", CreateHostPath: true}, is: ErrRefused, says: "outside it"},
		{name: "planted symlink when allowed", mount: spec.Mount{Source: "./shared/planted"}, allow: true, want: filepath.Join(base, "host-etc")},
		{name: "absolute source through a symlink is followed", mount: spec.Mount{Source: filepath.Join(base, "links", "to-host-etc")}, want: filepath.Join(base, "host-etc")},
		{name: "symlink to / when allowed", mount: spec.Mount{Source: "./to-root"}, allow: true, want: "/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.mount
			m.Type, m.Target = spec.MountBind, "/mnt"
			po := o
			po.AllowHostMounts = tc.allow
			plan, err := Plan([]spec.Mount{m}, po)
			if err != nil {
				t.Fatal(err)
			}
			mounts, err := s.Prepare(ctx, Container{ID: "c1"}, plan)
			if tc.want != "" {
				if err != nil {
					t.Fatal(err)
				}
				if mounts[0].Source != tc.want {
					t.Errorf("source = %s, want %s", mounts[0].Source, tc.want)
				}
				if fi, err := os.Stat(tc.want); err != nil || !fi.IsDir() {
					t.Errorf("source %s not a directory: %v", tc.want, err)
				}
				return
			}
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("Prepare = %v, want %v saying %q", err, tc.is, tc.says)
			}
		})
	}
	for _, p := range []string{filepath.Join(project, "absent"), filepath.Join(stateRoot, "new"), filepath.Join(stateRoot, "planted"), filepath.Join(base, "elsewhere")} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s was created: %v", p, err)
		}
	}
}

func TestPrepareReleasesOnFailure(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	o := testPlanOptions()
	o.StateRoot = filepath.Dir(s.Root())
	o.ProjectDir = t.TempDir()
	plan, err := Plan([]spec.Mount{
		{Type: spec.MountVolume, Source: "data", Target: "/data"},
		{Type: spec.MountVolume, Source: "ext", Target: "/ext"}, // external, missing
	}, o)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Prepare(ctx, Container{ID: "c1"}, plan)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `external volume "outside"`) {
		t.Fatalf("Prepare = %v, want the missing external volume", err)
	}
	v, err := s.Inspect("shop_data")
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Users) != 0 {
		t.Errorf("users after a failed Prepare = %v, want none", v.Users)
	}
}

func TestPrepareChecksTargetsBelowEarlierMounts(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	project := filepath.Join(base, "project")
	rootfs := filepath.Join(base, "rootfs")
	for _, d := range []string{filepath.Join(project, "conf"), rootfs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Open(filepath.Join(base, "state", Dir))
	if err != nil {
		t.Fatal(err)
	}
	o := PlanOptions{
		Project: "shop", Container: "shop-web-1", ProjectDir: project, StateRoot: filepath.Join(base, "state"),
		Volumes: map[string]*spec.Volume{"data": {Key: "data", Name: "shop_data"}},
	}
	plan, err := Plan([]spec.Mount{
		{Type: spec.MountBind, Source: "./conf", Target: "/data/conf"},
		{Type: spec.MountVolume, Source: "data", Target: "/data"},
	}, o)
	if err != nil {
		t.Fatal(err)
	}
	// First run: fine. Then a container writes a symlink into the volume where the bind goes.
	if _, err := s.Prepare(ctx, Container{ID: "c1", Rootfs: rootfs}, plan); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseContainer("c1"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(s.DataPath("shop_data"), "conf")); err != nil {
		t.Fatal(err)
	}
	_, err = s.Prepare(ctx, Container{ID: "c2", Rootfs: rootfs}, plan)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "below the mount at /data") {
		t.Fatalf("Prepare with a planted symlink in the volume = %v, want ErrRefused below /data", err)
	}
	if v, err := s.Inspect("shop_data"); err != nil || len(v.Users) != 0 {
		t.Errorf("users after the refusal = %v, %v; want none", v.Users, err)
	}

	// Below a tmpfs there is nothing a container could have planted.
	plan, err = Plan([]spec.Mount{
		{Type: spec.MountTmpfs, Target: "/data"},
		{Type: spec.MountBind, Source: "./conf", Target: "/data/conf"},
	}, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prepare(ctx, Container{ID: "c3", Rootfs: rootfs}, plan); err != nil {
		t.Errorf("bind below a tmpfs: %v", err)
	}
}

func TestPrepareFailureKeepsEarlierUse(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	o := testPlanOptions()
	o.StateRoot = filepath.Dir(s.Root())
	ok, err := Plan([]spec.Mount{{Type: spec.MountVolume, Source: "data", Target: "/data"}}, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prepare(ctx, Container{ID: "c1"}, ok); err != nil {
		t.Fatal(err)
	}
	// The same container prepared again (a restart) with a mount that fails: its earlier use of
	// shop_data must stay recorded.
	bad, err := Plan([]spec.Mount{
		{Type: spec.MountVolume, Source: "data", Target: "/data"},
		{Type: spec.MountVolume, Source: "ext", Target: "/ext"},
	}, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prepare(ctx, Container{ID: "c1"}, bad); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Prepare = %v, want ErrNotFound", err)
	}
	v, err := s.Inspect("shop_data")
	if err != nil || len(v.Users) != 1 || v.Users[0] != "c1" {
		t.Errorf("users = %v, %v; want [c1]", v.Users, err)
	}
}
