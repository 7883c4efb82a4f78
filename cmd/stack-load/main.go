// Command stack-load reads stack files with compose-go for the stack CLI: one request on stdin,
// one answer on stdout (spec.LoaderRequest, spec.LoaderResponse). The CLI runs it only when its
// cache of loaded stack files misses, so the everyday commands neither link compose-go nor
// pay for its start-up (compiling the Compose JSON schema).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/stackrun/stack/spec/compose"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := compose.Serve(ctx, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "stack-load:", err)
		os.Exit(1)
	}
}
