package image

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
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
	User         string   // as written ("name", "uid:gid", "name:group"); see ResolveUser
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

// User is a resolved container user.
type User struct {
	UID, GID       uint32
	AdditionalGids []uint32
	Home           string
}

// ResolveUser resolves user ("", "name", "uid", "name:group", "uid:gid", ...) against the
// /etc/passwd and /etc/group of rootfs, as Docker does: numeric ids need no entry, names must
// exist, the primary group defaults to the passwd entry's (0 without one), and supplementary
// groups are those listing the user by name. The files are opened through securejoin, so a
// symlinked /etc/passwd in the image cannot make stack read a host file.
func ResolveUser(rootfs, user string) (User, error) {
	u := User{Home: "/"}
	name, group, hasGroup := strings.Cut(user, ":")
	if name == "" {
		name = "0"
	}
	passwd, err := readEtc(rootfs, "/etc/passwd")
	if err != nil {
		return u, err
	}
	groups, err := readEtc(rootfs, "/etc/group")
	if err != nil {
		return u, err
	}
	userName := ""
	if id, err := strconv.ParseUint(name, 10, 32); err == nil {
		u.UID = uint32(id)
		for _, f := range passwd {
			if len(f) >= 6 && f[2] == name {
				userName = f[0]
				u.GID, u.Home = parseID(f[3]), f[5]
				break
			}
		}
	} else {
		found := false
		for _, f := range passwd {
			if len(f) >= 6 && f[0] == name {
				u.UID, u.GID, u.Home, userName, found = parseID(f[2]), parseID(f[3]), f[5], name, true
				break
			}
		}
		if !found {
			return u, fmt.Errorf("user %q: %w in the image's /etc/passwd", name, ErrNotFound)
		}
	}
	if hasGroup {
		if id, err := strconv.ParseUint(group, 10, 32); err == nil {
			u.GID = uint32(id)
		} else {
			found := false
			for _, f := range groups {
				if len(f) >= 3 && f[0] == group {
					u.GID, found = parseID(f[2]), true
					break
				}
			}
			if !found {
				return u, fmt.Errorf("group %q: %w in the image's /etc/group", group, ErrNotFound)
			}
		}
	}
	if userName != "" {
		for _, f := range groups {
			if len(f) < 4 || f[3] == "" {
				continue
			}
			for _, m := range strings.Split(f[3], ",") {
				if m == userName {
					if g := parseID(f[2]); g != u.GID && !containsID(u.AdditionalGids, g) {
						u.AdditionalGids = append(u.AdditionalGids, g)
					}
				}
			}
		}
	}
	return u, nil
}

func containsID(l []uint32, v uint32) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

func parseID(s string) uint32 {
	n, _ := strconv.ParseUint(s, 10, 32)
	return uint32(n)
}

// readEtc reads a colon-separated file of the image; a missing file is empty.
func readEtc(rootfs, p string) ([][]string, error) {
	path, err := securejoin.SecureJoin(rootfs, p)
	if err != nil {
		return nil, fmt.Errorf("resolve %s in rootfs: %w", p, err)
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(io.LimitReader(f, 16<<20))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s of the image: %w", p, err)
	}
	return out, nil
}
