package image

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestContainerDefaults(t *testing.T) {
	img := &v1.ConfigFile{Config: v1.Config{
		Entrypoint: []string{"/entry.sh"}, Cmd: []string{"serve", "--port=80"},
		Env:        []string{"PATH=/usr/bin:/bin", "MODE=image"},
		WorkingDir: "/srv", User: "app",
		ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}, "8080": {}},
		Labels:       map[string]string{"a": "b"}, StopSignal: "SIGQUIT",
		Healthcheck: &v1.HealthConfig{Test: []string{"CMD", "true"}},
	}}
	cases := []struct {
		name string
		o    Overrides
		args []string
	}{
		{"image defaults", Overrides{}, []string{"/entry.sh", "serve", "--port=80"}},
		{"command replaces cmd", Overrides{Command: []string{"migrate"}}, []string{"/entry.sh", "migrate"}},
		{"entrypoint replaces entrypoint and clears cmd", Overrides{Entrypoint: []string{"/bin/sh", "-c"}}, []string{"/bin/sh", "-c"}},
		{"entrypoint and command", Overrides{Entrypoint: []string{"/bin/sh", "-c"}, Command: []string{"echo hi"}}, []string{"/bin/sh", "-c", "echo hi"}},
		{"empty entrypoint", Overrides{Entrypoint: []string{}}, []string{}},
		{"empty entrypoint with command", Overrides{Entrypoint: []string{}, Command: []string{"ls"}}, []string{"ls"}},
		{"empty command keeps entrypoint", Overrides{Command: []string{}}, []string{"/entry.sh"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := ContainerDefaults(img, c.o)
			if !reflect.DeepEqual(d.Args, c.args) && !(len(d.Args) == 0 && len(c.args) == 0) {
				t.Errorf("args = %q, want %q", d.Args, c.args)
			}
		})
	}
	d := ContainerDefaults(img, Overrides{Environment: map[string]string{"MODE": "svc", "EXTRA": "1"}, WorkingDir: "/work", User: "1000:1000"})
	if want := []string{"PATH=/usr/bin:/bin", "MODE=svc", "EXTRA=1"}; !reflect.DeepEqual(d.Env, want) {
		t.Errorf("env = %q, want %q", d.Env, want)
	}
	if d.WorkingDir != "/work" || d.User != "1000:1000" || d.StopSignal != "SIGQUIT" || d.Healthcheck == nil || d.Labels["a"] != "b" {
		t.Errorf("defaults = %+v", d)
	}
	if want := []string{"53/udp", "80/tcp", "8080/tcp"}; !reflect.DeepEqual(d.ExposedPorts, want) {
		t.Errorf("ports = %q, want %q", d.ExposedPorts, want)
	}
	if d := ContainerDefaults(&v1.ConfigFile{}, Overrides{}); d.WorkingDir != "/" {
		t.Errorf("default working dir = %q", d.WorkingDir)
	}
}

func TestResolveUser(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:App:/home/app:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\napp:x:1001:\nwheel:x:10:app,other\naudio:x:29:app\n"), 0o644)
	cases := []struct {
		user string
		want User
		err  bool
	}{
		{"", User{UID: 0, GID: 0, Home: "/root"}, false},
		{"app", User{UID: 1000, GID: 1001, AdditionalGids: []uint32{10, 29}, Home: "/home/app"}, false},
		{"1000", User{UID: 1000, GID: 1001, AdditionalGids: []uint32{10, 29}, Home: "/home/app"}, false},
		{"app:wheel", User{UID: 1000, GID: 10, AdditionalGids: []uint32{29}, Home: "/home/app"}, false},
		{"4242:4343", User{UID: 4242, GID: 4343, Home: "/"}, false},
		{"nobody", User{}, true},
		{"app:nogroup", User{}, true},
	}
	for _, c := range cases {
		got, err := ResolveUser(root, c.user)
		if (err != nil) != c.err {
			t.Errorf("ResolveUser(%q) err = %v", c.user, err)
			continue
		}
		if !c.err && !reflect.DeepEqual(got, c.want) {
			t.Errorf("ResolveUser(%q) = %+v, want %+v", c.user, got, c.want)
		}
	}
	// A passwd symlinked to a host path is resolved inside the rootfs (and so is absent).
	evil := t.TempDir()
	os.MkdirAll(filepath.Join(evil, "etc"), 0o755)
	hostFile := filepath.Join(t.TempDir(), "passwd")
	os.WriteFile(hostFile, []byte("host:x:7:7::/:/bin/sh\n"), 0o644)
	os.Symlink(hostFile, filepath.Join(evil, "etc/passwd"))
	if _, err := ResolveUser(evil, "host"); err == nil {
		t.Error("user resolved through a symlink to a host file")
	}
}
