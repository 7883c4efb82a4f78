package image

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// SearchResult is one repository a registry's catalog lists.
type SearchResult struct {
	Name string   `json:"name"` // registry/repository
	Tags []string `json:"tags"`
}

// Search lists the repositories of registry (host[:port]) whose name contains term (all for
// ""), with their tags, through the registry's catalog API (GET /v2/_catalog). Registries that
// do not offer the catalog (most public ones) answer with an error. insecure and kc are as in
// PushOptions.
func Search(ctx context.Context, registry, term string, insecure []string, kc authn.Keychain) ([]SearchResult, error) {
	var opts []name.Option
	for _, h := range insecure {
		if strings.TrimSuffix(h, "/") == registry {
			opts = append(opts, name.Insecure)
		}
	}
	reg, err := name.NewRegistry(registry, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: registry %q: %w", ErrInvalid, registry, err)
	}
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	ro := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc)}
	repos, err := remote.Catalog(ctx, reg, ro...)
	if err != nil {
		return nil, fmt.Errorf("search %s: catalog: %w", registry, err)
	}
	sort.Strings(repos)
	out := []SearchResult{}
	for _, r := range repos {
		if !strings.Contains(r, term) {
			continue
		}
		repo, err := name.NewRepository(registry+"/"+r, opts...)
		if err != nil {
			continue
		}
		tags, err := remote.List(repo, ro...)
		if err != nil {
			return nil, fmt.Errorf("search %s: tags of %s: %w", registry, r, err)
		}
		sort.Strings(tags)
		out = append(out, SearchResult{Name: repo.Name(), Tags: tags})
	}
	return out, nil
}
