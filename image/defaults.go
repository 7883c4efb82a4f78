package image

import (
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Overrides are a service's settings that take precedence over the image config. For
// Entrypoint and Command nil means "not set" and an empty non-nil slice "explicitly empty"
// (spec.Service uses the same convention).
type Overrides struct {
	Entrypoint  []string
	Command     []string
	Environment map[string]string // merged over the image's Env, by key
	WorkingDir  string
	User        string
}

// Defaults are a container's settings after applying Overrides to the image config.
type Defaults struct {
	Entrypoint   []string
	Cmd          []string
	Args         []string // Entrypoint + Cmd: the process to run
	Env          []string // KEY=value, image order first, then new service keys sorted
	WorkingDir   string   // "/" when neither sets one
	User         string   // as written ("name", "uid:gid", "name:group"); runtime.ResolveUser makes it numeric
	ExposedPorts []string // "80/tcp", sorted
	Labels       map[string]string
	StopSignal   string
	Healthcheck  *v1.HealthConfig
}

// ContainerDefaults applies Compose's override rules to an image config: a service command
// replaces Cmd; a service entrypoint replaces Entrypoint and clears the image's Cmd (a service
// command given with it still applies); environment is merged by key, the service winning.
func ContainerDefaults(cfg *v1.ConfigFile, o Overrides) Defaults {
	var c v1.Config
	if cfg != nil {
		c = cfg.Config
	}
	d := Defaults{
		Entrypoint:  clone(c.Entrypoint),
		Cmd:         clone(c.Cmd),
		WorkingDir:  c.WorkingDir,
		User:        c.User,
		StopSignal:  c.StopSignal,
		Healthcheck: c.Healthcheck,
	}
	if o.Entrypoint != nil {
		d.Entrypoint = clone(o.Entrypoint)
		d.Cmd = nil
	}
	if o.Command != nil {
		d.Cmd = clone(o.Command)
	}
	d.Args = append(clone(d.Entrypoint), d.Cmd...)
	if o.WorkingDir != "" {
		d.WorkingDir = o.WorkingDir
	}
	if d.WorkingDir == "" {
		d.WorkingDir = "/"
	}
	if o.User != "" {
		d.User = o.User
	}
	d.Env = mergeEnv(c.Env, o.Environment)
	for p := range c.ExposedPorts {
		if !strings.Contains(p, "/") {
			p += "/tcp"
		}
		d.ExposedPorts = append(d.ExposedPorts, p)
	}
	sort.Strings(d.ExposedPorts)
	if len(c.Labels) > 0 {
		d.Labels = make(map[string]string, len(c.Labels))
		for k, v := range c.Labels {
			d.Labels[k] = v
		}
	}
	return d
}

func clone(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string{}, s...)
}

func mergeEnv(image []string, service map[string]string) []string {
	out := make([]string, 0, len(image)+len(service))
	seen := map[string]bool{}
	for _, kv := range image {
		k, _, _ := strings.Cut(kv, "=")
		if v, ok := service[k]; ok {
			kv = k + "=" + v
		}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, kv)
	}
	keys := make([]string, 0, len(service))
	for k := range service {
		if !seen[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, k+"="+service[k])
	}
	return out
}
