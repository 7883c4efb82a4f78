# stack: build, test, lint, bench. `make test` installs what the tests need (as root, via apt-get).
GO      ?= go
BIN     ?= bin/stack
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
# Debian packages the integration tests use: busybox-static (test images), runc (comparison
# runtime), skopeo + docker-registry (local registry), iproute2 + nftables (inspecting the host).
TEST_PKGS := busybox-static runc skopeo docker-registry iproute2 nftables

BINDIR   = $(dir $(BIN))
LDFLAGS  = -ldflags "-X main.version=$(VERSION)"
# urfave_cli_no_docs leaves out urfave/cli's Markdown/man page writer (stack does not use it),
# whose package init (blackfriday's tables) every stack command paid for at start-up.
TAGS    ?= urfave_cli_no_docs

.PHONY: all build binaries test unit deps lint bench up clean

all: build

# stack-shim (container inits, exec, the runtime helper), stack-monitor (the per-container
# monitor, pure Go: no cgo) and stack-load (reads stack files with compose-go, when stack's cache
# of them misses) go next to stack, which uses them from there; stack-runtime is the
# runtime's own runc-shaped binary (bench/runtime.sh, --runtime users).
# Each go build compiles the packages its binaries share once and links them in parallel;
# stack-monitor gets one of its own for CGO_ENABLED=0 (its packages are cached by then).
# binaries is what `up` needs: stack and, next to it, stack-shim, stack-load and stack-monitor.
binaries:
	$(GO) build -tags "$(TAGS)" $(LDFLAGS) -o $(BINDIR) ./cmd/stack ./cmd/stack-shim ./cmd/stack-load
	@[ "$(notdir $(BIN))" = stack ] || mv -f $(BINDIR)stack $(BIN)
	CGO_ENABLED=0 $(GO) build -o $(BINDIR)stack-monitor ./cmd/stack-monitor

build: binaries
	$(GO) build -tags "$(TAGS)" $(LDFLAGS) -o $(BINDIR)stack-runtime ./cmd/stack-runtime

# deps installs the Debian packages the tests need, only those missing, and only as root.
deps:
	@missing=""; for p in $(TEST_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "not root: skipping install of$$missing (integration tests will skip)"; fi; \
	fi

test: deps build
	$(GO) test -count=1 -timeout 30m ./...

unit:
	$(GO) test -count=1 -short ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./...

# up builds stack and the example image (offline: the example app + Debian's busybox-static),
# then runs examples/stack.yaml: http://127.0.0.1:8080 answers when it returns.
STACK_ROOT ?= /var/lib/stack
export STACK_ROOT
up: binaries
	@dpkg -s busybox-static >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null; }
	examples/build-image.sh ./$(BIN) stack-example:latest
	./$(BIN) -f examples/stack.yaml up -d --wait
	@echo "the example answers on http://127.0.0.1:8080 (stack -f examples/stack.yaml down to stop it)"

clean:
	rm -rf bin
