package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/stackrun/stack/engine"
)

func cpCommand() *cli.Command {
	return &cli.Command{
		Name:      "cp",
		Usage:     "copy files between a container and the host",
		ArgsUsage: "SERVICE:PATH HOSTPATH | HOSTPATH SERVICE:PATH",
		Description: `SERVICE may also be a container name; --index picks the replica of a service.
Directories are copied with their contents, symlinks as symlinks, modes and owners kept. When
the destination is an existing directory the source goes into it; a source ending in /. copies
the directory's contents. Paths in the container are resolved as the container sees them
(through /proc/PID/root while it runs, volumes included; else its rootfs), and never lead out
of it: a symlink in the container pointing at / points at the container's /.

Examples:
   stack cp web:/etc/nginx/nginx.conf .
   stack cp ./site/. web:/usr/share/nginx/html`,
		Flags: append(stackFileFlags(false),
			&cli.IntFlag{Name: "index", Usage: "which replica of the service", Value: 1},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return usageError{errors.New("cp: want SERVICE:PATH HOSTPATH or HOSTPATH SERVICE:PATH")}
			}
			p, err := openProject(c, false)
			if err != nil {
				return err
			}
			src, dst := c.Args().Get(0), c.Args().Get(1)
			if rec, path, ok, err := containerPath(p, src, c.Int("index")); err != nil {
				return err
			} else if ok {
				return p.host.CopyOut(c.Context, rec.ID, path, dst)
			}
			rec, path, ok, err := containerPath(p, dst, c.Int("index"))
			if err != nil {
				return err
			}
			if !ok {
				return usageError{fmt.Errorf("cp: neither %q nor %q names a container path (SERVICE:PATH)", src, dst)}
			}
			return p.host.CopyIn(c.Context, rec.ID, src, path)
		},
	}
}

// containerPath splits SERVICE:PATH or CONTAINER:PATH and finds the container; ok is false
// when arg is not of that form or names no service or container of the project.
func containerPath(p *project, arg string, index int) (*engine.Record, string, bool, error) {
	name, path, found := strings.Cut(arg, ":")
	if !found || name == "" || strings.Contains(name, "/") {
		return nil, "", false, nil
	}
	if path == "" {
		path = "/"
	}
	recs, err := p.eng.Records()
	if err != nil {
		return nil, "", false, err
	}
	var service bool
	for _, r := range recs {
		if r.Name == name {
			return r, path, true, nil
		}
		service = service || r.Service == name
	}
	for _, r := range recs {
		if r.Service == name && r.Number == index && r.Labels[engine.LabelOneOff] == "" {
			return r, path, true, nil
		}
	}
	if service {
		return nil, "", false, fmt.Errorf("service %s has no container number %d", name, index)
	}
	return nil, "", false, nil
}
