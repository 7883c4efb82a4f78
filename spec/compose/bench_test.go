package compose

import (
	"github.com/stackrun/stack/spec"

	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
)

// generateStack writes a stack file with n services in the shapes real files use: long and
// short ports, env maps and lists, volumes, healthchecks, dependencies, resources.
func generateStack(n int) string {
	var b strings.Builder
	b.WriteString("name: bench\nservices:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `  svc%d:
    image: registry.example.com/team/svc%d:1.%d
    command: ["serve", "--port", "8080", "--id", "%d"]
    environment:
      SERVICE_ID: "%d"
      LOG_LEVEL: info
      UPSTREAM: http://svc%d:8080
    ports:
      - "%d:8080"
      - target: 9090
        protocol: udp
    volumes:
      - data%d:/var/lib/svc
      - ./conf/svc%d:/etc/svc:ro
    tmpfs: ["/tmp:size=16m"]
    healthcheck:
      test: ["CMD", "wget", "-qO-", "http://localhost:8080/health"]
      interval: 10s
      retries: 3
    mem_limit: 128m
    cpus: 0.25
    restart: unless-stopped
    labels:
      com.example.tier: "%d"
    networks: [front, back]
`, i, i, i, i, i, (i+1)%n, 20000+i, i, i, i%3)
		if i > 0 {
			fmt.Fprintf(&b, "    depends_on:\n      svc%d:\n        condition: service_started\n", i-1)
		}
	}
	b.WriteString("networks:\n  front: {}\n  back:\n    internal: true\nvolumes:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  data%d: {}\n", i)
	}
	return b.String()
}

// writeStack200 writes generateStack(200) to a temporary stack file and returns its path.
func writeStack200(b *testing.B) string {
	path := filepath.Join(b.TempDir(), "stack.yaml")
	if err := os.WriteFile(path, []byte(generateStack(200)), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

// loadLoop times Load of a 200-service file with opts, after one untimed load.
func loadLoop(b *testing.B, opts spec.Options) {
	ctx := context.Background()
	if _, err := loadStack(ctx, opts); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		st, err := loadStack(ctx, opts)
		if err != nil {
			b.Fatal(err)
		}
		if len(st.Services) != 200 {
			b.Fatalf("%d services", len(st.Services))
		}
	}
}

func BenchmarkLoad200(b *testing.B) {
	path := writeStack200(b)
	opts := spec.Options{Files: []string{path}, Environ: []string{}, NumCPU: 2}
	loadLoop(b, opts)
}

// BenchmarkLoad200Cached is Load200 as every command after the first sees it: the same file,
// served from the cache (state.Cache on disk in the CLI; in memory here), every input file
// read and checked by digest, the model decoded.
func BenchmarkLoad200Cached(b *testing.B) {
	path := writeStack200(b)
	c := &memCache{}
	opts := spec.Options{Files: []string{path}, Environ: []string{}, NumCPU: 2, Cache: c}
	loadLoop(b, opts)
	if c.puts != 1 {
		b.Fatalf("%d loads missed the cache", c.puts-1)
	}
}

// BenchmarkComposeGoLoad200 is the baseline: compose-go alone on the same file, without stack's
// limits, index, conversion, validation and hashing. Load200 minus this is stack's own cost.
func BenchmarkComposeGoLoad200(b *testing.B) {
	path := writeStack200(b)
	b.ReportAllocs()
	for b.Loop() {
		po, err := cli.NewProjectOptions([]string{path}, cli.WithEnv([]string{}))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := po.LoadProject(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
