package compose

import (
	"context"

	"github.com/stackrun/stack/spec"
)

// loadStack is spec.Load with this package as the loader, as the CLI's stack-load runs it.
func loadStack(ctx context.Context, opts spec.Options) (*spec.Stack, error) {
	opts.Loader = Load
	return spec.Load(ctx, opts)
}
