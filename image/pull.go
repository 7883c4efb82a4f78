package image

import (
	"context"
	"fmt"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// PullOptions says how to pull.
type PullOptions struct {
	// Platform selects from a multi-platform index: "os/arch[/variant]"; empty means
	// linux/<the host's architecture>.
	Platform string
	// Insecure lists registries (host or host:port) to reach over plain HTTP. localhost and
	// 127.0.0.1 registries always are.
	Insecure []string
	// Progress, when set, receives per-layer events, possibly from several goroutines.
	Progress func(Progress)
	// Keychain supplies registry credentials; nil means the docker config.json keychain
	// (authn.DefaultKeychain: $DOCKER_CONFIG, ~/.docker/config.json, credential helpers).
	Keychain authn.Keychain
}

// DefaultPlatform is the platform chosen from multi-platform images when none is asked for.
func DefaultPlatform() string { return "linux/" + runtime.GOARCH }

// ParseRef parses a user's image reference, marking its registry insecure when listed.
func ParseRef(ref string, insecure []string) (name.Reference, error) {
	var opts []name.Option
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("%w: reference %q: %w", ErrInvalid, ref, err)
	}
	reg := r.Context().RegistryStr()
	for _, h := range insecure {
		if h == reg || strings.TrimSuffix(h, "/") == reg {
			opts = append(opts, name.Insecure)
		}
	}
	if len(opts) > 0 {
		return name.ParseReference(ref, opts...)
	}
	return r, nil
}

// Pull fetches ref from its registry into the store (OCI and Docker v2 manifests, indexes by
// platform) and points ref at it. Blobs already present are not downloaded and layers already
// unpacked are not unpacked again.
func (s *Store) Pull(ctx context.Context, ref string, opts PullOptions) (*Image, error) {
	r, err := ParseRef(ref, opts.Insecure)
	if err != nil {
		return nil, err
	}
	plat := opts.Platform
	if plat == "" {
		plat = DefaultPlatform()
	}
	p, err := v1.ParsePlatform(plat)
	if err != nil {
		return nil, fmt.Errorf("%w: platform %q: %w", ErrInvalid, plat, err)
	}
	kc := opts.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	desc, err := remote.Get(r, remote.WithContext(ctx), remote.WithAuthFromKeychain(kc), remote.WithPlatform(*p))
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	img, err := desc.Image() // resolves an index to the platform's manifest
	if err != nil {
		return nil, fmt.Errorf("pull %s for %s: %w", ref, plat, err)
	}
	o := addOptions{ref: ref, progress: opts.Progress,
		repoDigest: r.Context().Digest(desc.Digest.String()).Name()}
	if _, isTag := r.(name.Tag); isTag {
		o.tags = []string{r.Name()}
	}
	rec, err := s.add(ctx, img, o)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	return rec, nil
}
