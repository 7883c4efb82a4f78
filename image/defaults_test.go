package image

import (
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
