package main

import (
	"context"

	"github.com/stackrun/stack/spec"
	"github.com/stackrun/stack/spec/compose"
)

// The commands run in this package's tests load stack files in process: stack-load is not
// built here (e2e runs the real one).
func init() {
	askLoader = func(ctx context.Context, req spec.LoaderRequest) (*spec.LoaderResponse, error) {
		resp := compose.Answer(ctx, req)
		if resp.Error != nil {
			return nil, resp.Error.Err()
		}
		return resp, nil
	}
}
