package local

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/stackrun/stack/engine"
	"github.com/stackrun/stack/image"
	"github.com/stackrun/stack/planner"
	"github.com/stackrun/stack/spec"
	"github.com/stackrun/stack/volumes"
)

// Volumes implements engine.Volumes with the volumes store.
type Volumes struct{ *Host }

var _ engine.Volumes = Volumes{}

func (v Volumes) List(ctx context.Context, project string) ([]planner.Volume, error) {
	vols, err := v.Volumes.ListProject(project)
	if err != nil {
		return nil, err
	}
	var out []planner.Volume
	for _, vol := range vols {
		if vol.Anonymous {
			continue
		}
		out = append(out, planner.Volume{Key: vol.Key, Name: vol.Name})
	}
	return out, nil
}

func (v Volumes) Ensure(ctx context.Context, project string, vol *spec.Volume) error {
	_, err := v.Volumes.Ensure(ctx, volumes.SpecFor(project, vol))
	return err
}

func (v Volumes) Remove(ctx context.Context, project string, vol *spec.Volume) error {
	if vol.External {
		return nil
	}
	return v.Volumes.RemoveOwned(project, vol.Name)
}

// Images implements engine.Images with the image store.
type Images struct {
	*Host
	Pull_ image.PullOptions
	// BuildFunc builds a service's image; nil reports that builds are not available.
	BuildFunc func(ctx context.Context, s *spec.Service) (string, error)
}

var _ engine.Images = Images{}

func (i Images) List(ctx context.Context) (map[string]string, error) {
	imgs, err := i.Images.List()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, img := range imgs {
		for _, t := range img.RepoTags {
			for _, ref := range refAliases(t) {
				out[ref] = img.ID
			}
		}
	}
	return out, nil
}

// refAliases lists the spellings a stack file may use for the canonical tag canon: the planner
// looks an image up by the service's image string as written, so "busybox", "busybox:latest"
// and "docker.io/library/busybox" must all find index.docker.io/library/busybox:latest.
func refAliases(canon string) []string {
	short := image.ShortRef(canon)
	out := []string{canon, short}
	if rest, ok := strings.CutPrefix(canon, name.DefaultRegistry+"/"); ok {
		out = append(out, "docker.io/"+rest)
		if rest != short { // an official image: library/ may be left out
			out = append(out, "docker.io/"+short, rest)
		}
	}
	for _, ref := range out {
		if repo, ok := strings.CutSuffix(ref, ":latest"); ok {
			out = append(out, repo)
		}
	}
	return out
}

func (i Images) Pull(ctx context.Context, ref string) (string, error) {
	img, err := i.Images.Pull(ctx, ref, i.Pull_)
	if err != nil {
		return "", err
	}
	return img.ID, nil
}

func (i Images) Build(ctx context.Context, s *spec.Service) (string, error) {
	if i.BuildFunc == nil {
		return "", fmt.Errorf("service %s: build: not available in this version of stack; build the image elsewhere and load it with `stack image load`", s.Name)
	}
	return i.BuildFunc(ctx, s)
}

func (i Images) Remove(ctx context.Context, ref string) error {
	_, err := i.Images.Remove(ref, false)
	switch {
	case errors.Is(err, image.ErrNotFound):
		return fmt.Errorf("%w: %w", engine.ErrNotFound, err)
	case errors.Is(err, image.ErrInUse):
		return fmt.Errorf("%w: %w", engine.ErrInUse, err)
	}
	return err
}
