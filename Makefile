# stack: build, test, lint, bench. `make test` installs what the tests need (as root, via apt-get).
GO      ?= go
BIN     ?= bin/stack
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
# Debian packages the integration tests use: busybox-static (test images), runc (comparison
# runtime), skopeo + docker-registry (local registry), iproute2 + nftables (inspecting the host).
TEST_PKGS := busybox-static runc skopeo docker-registry iproute2 nftables

.PHONY: all build test unit deps lint bench up clean

all: build

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/stack

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

# up builds stack and runs the example stack (the README's first quick-start command).
up: build
	./$(BIN) -f examples/stack.yaml up -d

clean:
	rm -rf bin
