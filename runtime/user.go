package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// ResolveUser turns an image's user string ("name", "uid", "name:group", "uid:gid", "" for
// root) into the numeric user of an OCI process, reading the rootfs's /etc/passwd and
// /etc/group (resolved inside rootfs, so symlinks in the image cannot point at the host's).
// Supplementary groups are the groups of /etc/group that list the user by name.
func ResolveUser(rootfs, user string) (specs.User, error) {
	passwd, err := readImageFile(rootfs, "/etc/passwd")
	if err != nil {
		return specs.User{}, err
	}
	group, err := readImageFile(rootfs, "/etc/group")
	if err != nil {
		return specs.User{}, err
	}
	return resolveUser(user, passwd, group)
}

func readImageFile(rootfs, name string) (io.Reader, error) {
	p, err := securejoin.SecureJoin(rootfs, name)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return strings.NewReader(""), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read image %s: %w", name, err)
	}
	return strings.NewReader(string(b)), nil
}

// colonFile reads passwd/group style lines as fields.
func colonFile(r io.Reader) [][]string {
	var out [][]string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out
}

func resolveUser(user string, passwd, group io.Reader) (specs.User, error) {
	name, grp, hasGroup := strings.Cut(user, ":")
	var u specs.User
	users, groups := colonFile(passwd), colonFile(group)
	userName := ""
	if name == "" {
		name = "0"
	}
	found := false
	for _, f := range users {
		if len(f) < 4 {
			continue
		}
		if f[0] == name || f[2] == name {
			uid, err1 := strconv.ParseUint(f[2], 10, 32)
			gid, err2 := strconv.ParseUint(f[3], 10, 32)
			if err1 != nil || err2 != nil {
				continue
			}
			u.UID, u.GID, userName, found = uint32(uid), uint32(gid), f[0], true
			break
		}
	}
	if !found {
		uid, err := strconv.ParseUint(name, 10, 32)
		if err != nil {
			return u, fmt.Errorf("user %q: %w: no such user in the image's /etc/passwd", name, ErrNotFound)
		}
		u.UID = uint32(uid)
	}
	if hasGroup {
		gid, ok := lookupGroup(grp, groups)
		if !ok {
			return u, fmt.Errorf("group %q: %w: no such group in the image's /etc/group", grp, ErrNotFound)
		}
		u.GID = gid
	}
	if userName != "" {
		for _, f := range groups {
			if len(f) < 4 {
				continue
			}
			for _, m := range strings.Split(f[3], ",") {
				if m != userName {
					continue
				}
				if gid, err := strconv.ParseUint(f[2], 10, 32); err == nil && uint32(gid) != u.GID {
					u.AdditionalGids = append(u.AdditionalGids, uint32(gid))
				}
			}
		}
	}
	return u, nil
}

func lookupGroup(g string, groups [][]string) (uint32, bool) {
	for _, f := range groups {
		if len(f) >= 3 && f[0] == g {
			if gid, err := strconv.ParseUint(f[2], 10, 32); err == nil {
				return uint32(gid), true
			}
		}
	}
	gid, err := strconv.ParseUint(g, 10, 32)
	return uint32(gid), err == nil
}

// withHome adds HOME to env when it is missing, from the passwd entry of uid in the current
// root (the container's, after pivot_root), or "/" — as runc does.
func withHome(env []string, uid uint32) []string {
	for _, e := range env {
		if strings.HasPrefix(e, "HOME=") {
			return env
		}
	}
	home := "/"
	if f, err := os.Open("/etc/passwd"); err == nil {
		for _, fields := range colonFile(f) {
			if len(fields) >= 6 && fields[2] == strconv.FormatUint(uint64(uid), 10) && fields[5] != "" {
				home = fields[5]
				break
			}
		}
		f.Close()
	}
	return append(append([]string(nil), env...), "HOME="+home)
}
