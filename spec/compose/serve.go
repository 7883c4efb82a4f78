package compose

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/sirupsen/logrus"

	"github.com/stackrun/stack/spec"
)

// Serve answers one spec.LoaderRequest read from in with one spec.LoaderResponse written to out:
// it is the stack-load executable. An error of the stack file is part of the response; Serve
// fails only when the request cannot be read or the response written.
func Serve(ctx context.Context, in io.Reader, out io.Writer) error {
	var req spec.LoaderRequest
	if err := json.NewDecoder(in).Decode(&req); err != nil {
		return fmt.Errorf("read loader request: %w", err)
	}
	// compose-go logs a few warnings through logrus; the load reports them as positioned
	// warnings (Stack.Warnings), which the CLI prints.
	logrus.SetOutput(io.Discard)
	resp := Answer(ctx, req)
	if err := json.NewEncoder(out).Encode(resp); err != nil {
		return fmt.Errorf("write loader response: %w", err)
	}
	return nil
}

// Answer is what Serve answers to req, in this process.
func Answer(ctx context.Context, req spec.LoaderRequest) *spec.LoaderResponse {
	fail := func(err error) *spec.LoaderResponse { return &spec.LoaderResponse{Error: spec.NewLoaderError(err)} }
	switch req.Op {
	case spec.LoaderOpLoad:
		ld, err := Load(ctx, req.Options)
		if err != nil {
			return fail(err)
		}
		return &spec.LoaderResponse{Loaded: ld}
	case spec.LoaderOpProject:
		st, p, err := LoadWithProject(ctx, req.Options)
		if err != nil {
			return fail(err)
		}
		var b []byte
		if req.Format == "json" {
			b, err = p.MarshalJSON()
		} else {
			b, err = p.MarshalYAML()
		}
		if err != nil {
			return fail(fmt.Errorf("print stack %s: %w", st.Name, err))
		}
		return &spec.LoaderResponse{Loaded: &spec.Loaded{Stack: st}, Output: b}
	case spec.LoaderOpSupportedKeys:
		var b bytes.Buffer
		tw := tabwriter.NewWriter(&b, 0, 0, 1, ' ', 0)
		fmt.Fprintln(tw, "| key\t| stack\t| note\t|")
		fmt.Fprintln(tw, "| ---\t| ---\t| ---\t|")
		for _, k := range SupportedKeys() {
			fmt.Fprintf(tw, "| `%s`\t| %s\t| %s\t|\n", k.Path, k.Support, k.Note)
		}
		if err := tw.Flush(); err != nil {
			return fail(err)
		}
		return &spec.LoaderResponse{Output: b.Bytes()}
	default:
		return fail(fmt.Errorf("stack-load: unknown operation %q", req.Op))
	}
}
