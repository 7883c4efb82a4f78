package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/stackrun/stack/runtime/runtimecli"
	"github.com/stackrun/stack/spec"
)

// askLoader answers a loader request: by running the stack-load executable next to stack, which
// links compose-go so that stack does not. Tests of this package replace it with the loader in
// process (spec/compose.Answer).
var askLoader = execLoader

// loadWithLoader is the spec.LoadFunc of the CLI.
func loadWithLoader(ctx context.Context, opts spec.Options) (*spec.Loaded, error) {
	resp, err := askLoader(ctx, spec.LoaderRequest{Op: spec.LoaderOpLoad, Options: opts})
	if err != nil {
		return nil, err
	}
	if resp.Loaded == nil {
		return nil, errors.New("stack-load answered without a stack")
	}
	return resp.Loaded, nil
}

// loaderPath is the stack-load executable next to this one.
func loaderPath() (string, error) {
	if p := runtimecli.Sibling("stack-load"); p != "" {
		return p, nil
	}
	exe, _ := os.Executable()
	return "", fmt.Errorf("stack-load not found next to %s: stack reads stack files with it (make build installs it)", exe)
}

// execLoader runs stack-load with req and returns its answer; the error of an invalid stack file
// is returned as the error, as spec/compose.Load returns it.
func execLoader(ctx context.Context, req spec.LoaderRequest) (*spec.LoaderResponse, error) {
	path, err := loaderPath()
	if err != nil {
		return nil, err
	}
	in, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, path)
	cmd.Stdin = bytes.NewReader(in)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	var resp spec.LoaderResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		return nil, fmt.Errorf("%s: bad answer: %w", filepath.Base(path), err)
	}
	if resp.Error != nil {
		return nil, resp.Error.Err()
	}
	return &resp, nil
}
