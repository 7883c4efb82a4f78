package volumes

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/stackrun/stack/internal/testutil"
	"github.com/stackrun/stack/spec"
)

// runcContainer runs one container with runc (an OCI runtime this package does not depend on)
// from rootfs, the mounts Prepare returned and a shell script run as testUID:testGID, with a
// read-only root filesystem; it returns the script's output.
func runcContainer(t *testing.T, runc, rootfs string, mounts []specs.Mount, script string) string {
	t.Helper()
	bundle := t.TempDir()
	id := testutil.UniqueName()
	cfg := &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			User:            specs.User{UID: testUID, GID: testGID},
			Args:            []string{"/bin/busybox", "sh", "-c", script},
			Env:             []string{"PATH=/bin"},
			Cwd:             "/",
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: rootfs, Readonly: true}, // read_only: true; volumes stay writable
		Hostname: id,
		Mounts: append([]specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		}, mounts...),
		Linux: &specs.Linux{
			// Relative: runc puts it below its own cgroup in every hierarchy.
			CgroupsPath: id,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.NetworkNamespace},
			},
		},
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	t.Cleanup(func() {
		// `runc run` deletes the container when it exits; this is for a test that failed midway.
		_ = exec.Command(runc, "--root", state, "delete", "--force", id).Run()
	})
	cmd := exec.Command(runc, "--root", state, "run", "--bundle", bundle, id)
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("runc run: %v\n%s", err, out)
	}
	left, _ := filepath.Glob("/sys/fs/cgroup/*/" + id)
	deeper, _ := filepath.Glob("/sys/fs/cgroup/*/*/*/" + id)
	if left = append(left, deeper...); len(left) > 0 {
		t.Errorf("cgroups left after the container exited: %v", left)
	}
	return string(out)
}

func copyBusybox(t *testing.T, rootfs string) {
	t.Helper()
	src, err := os.Open("/bin/busybox")
	if err != nil {
		t.Skipf("needs /bin/busybox (busybox-static): %v", err)
	}
	defer src.Close()
	if err := os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	dst, err := os.OpenFile(filepath.Join(rootfs, "bin", "busybox"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRuncContainersWithPreparedMounts runs real containers on the mounts Prepare returns: the
// first sees the image's seed file copied into the volume and writes as its uid; a second
// container finds the data, and no second copy-up; read-only binds refuse writes; the rootfs
// is read-only yet the volume, the read-write bind and the tmpfs are writable.
func TestRuncContainersWithPreparedMounts(t *testing.T) {
	testutil.RequireRoot(t)
	runc := testutil.RequireBinary(t, "runc")
	ctx := context.Background()
	base := t.TempDir()
	traversable(t, base)
	rootfs := imageRootfs(t)
	traversable(t, rootfs)
	copyBusybox(t, rootfs)
	project := filepath.Join(base, "project")
	for _, d := range []string{"ro", "rw"} {
		if err := os.MkdirAll(filepath.Join(project, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(project, "ro", "config"), []byte("original\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(project, "ro", "config"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(project, "rw"), testUID, testGID); err != nil {
		t.Fatal(err)
	}
	stateRoot := filepath.Join(base, "state")
	s, err := Open(filepath.Join(stateRoot, Dir))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Plan([]spec.Mount{
		{Type: spec.MountVolume, Source: "data", Target: "/data"},
		{Type: spec.MountBind, Source: "./ro", Target: "/ro", ReadOnly: true},
		{Type: spec.MountBind, Source: "./rw", Target: "/rw"},
		{Type: spec.MountTmpfs, Target: "/scratch"},
	}, PlanOptions{
		Project: "shop", Container: "shop-app-1", ProjectDir: project, StateRoot: stateRoot,
		Volumes: map[string]*spec.Volume{"data": {Key: "data", Name: "shop_data"}},
	})
	if err != nil {
		t.Fatal(err)
	}

	mounts, err := s.Prepare(ctx, Container{ID: "c1", Rootfs: rootfs}, plan)
	if err != nil {
		t.Fatal(err)
	}
	out := runcContainer(t, runc, rootfs, mounts, `
cat /data/seed.txt
echo written > /data/new.txt && echo data-ok
echo hello > /rw/w.txt && echo rw-ok
if echo changed > /ro/config 2>/dev/null; then echo ro-WRITABLE; else echo ro-ok; fi
if touch /rootfs-write 2>/dev/null; then echo rootfs-WRITABLE; else echo rootfs-ro; fi
touch /scratch/t && echo tmpfs-ok
`)
	for _, want := range []string{"seed", "data-ok", "rw-ok", "ro-ok", "rootfs-ro", "tmpfs-ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("container output lacks %q:\n%s", want, out)
		}
	}
	if err := s.ReleaseContainer("c1"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(s.DataPath("shop_data"), "new.txt"), filepath.Join(project, "rw", "w.txt")} {
		if f := facts(t, p); f.uid != testUID || f.gid != testGID {
			t.Errorf("%s owned by %d:%d, want the container's %d:%d", p, f.uid, f.gid, testUID, testGID)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(project, "ro", "config")); string(b) != "original\n" {
		t.Errorf("read-only bind source changed: %q", b)
	}

	// A new image version adds a file; the recreated container keeps the volume's data and
	// gets no second copy.
	if err := os.WriteFile(filepath.Join(rootfs, "data", "v2.txt"), []byte("v2"), 0o644); err != nil {
		t.Fatal(err)
	}
	mounts, err = s.Prepare(ctx, Container{ID: "c2", Rootfs: rootfs}, plan)
	if err != nil {
		t.Fatal(err)
	}
	out = runcContainer(t, runc, rootfs, mounts, `cat /data/new.txt; ls /data`)
	if !strings.Contains(out, "written") || strings.Contains(out, "v2.txt") {
		t.Errorf("second container sees:\n%s\nwant the data written before and no v2.txt", out)
	}
	if err := s.ReleaseContainer("c2"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(rootfs, "rootfs-write")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("write into the read-only rootfs landed: %v", err)
	}
}
