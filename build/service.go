package build

import (
	"context"
	"fmt"
	"maps"

	"github.com/stackrun/stack/image"
	"github.com/stackrun/stack/spec"
)

// Service builds svc's image from its build: section and tags it as Compose does: svc.Image
// (the stack file's image:, or <project>-<service> that spec fills in for build-only services)
// plus build.tags. o carries the command line's settings: its Args override the stack file's,
// NoCache and Pull add to it; Context, Dockerfile, Target, Labels and Tags are taken from svc.
// It returns the image ID (the config digest).
func Service(ctx context.Context, store *image.Store, svc *spec.Service, o Options) (string, error) {
	res, err := ServiceResult(ctx, store, svc, o)
	if err != nil {
		return "", err
	}
	return res.Image.ID, nil
}

// ServiceResult is Service returning the whole Result (warnings included).
func ServiceResult(ctx context.Context, store *image.Store, svc *spec.Service, o Options) (*Result, error) {
	if svc.Build == nil {
		return nil, fmt.Errorf("build service %s: it has no build section", svc.Name)
	}
	b := svc.Build
	o.Context, o.Dockerfile, o.DockerfileInline, o.Target = b.Context, b.Dockerfile, b.DockerfileInline, b.Target
	args := maps.Clone(b.Args)
	if args == nil {
		args = map[string]string{}
	}
	maps.Copy(args, o.Args)
	o.Args = args
	o.Labels = maps.Clone(b.Labels)
	o.NoCache = o.NoCache || b.NoCache
	o.Pull = o.Pull || b.Pull
	if o.Network == "" {
		o.Network = b.Network
	}
	o.Tags = nil
	if svc.Image != "" {
		o.Tags = append(o.Tags, svc.Image)
	}
	o.Tags = append(o.Tags, b.Tags...)
	res, err := Build(ctx, store, o)
	if err != nil {
		return nil, fmt.Errorf("build service %s: %w", svc.Name, err)
	}
	return res, nil
}
