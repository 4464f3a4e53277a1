# Switchboard: a SIP proxy and registrar.
#   make run    builds and runs the proxy with ./config.toml
#   make test   installs what the tests need (sipp, iproute2, redis-server) and runs every test with -race

GO      ?= go
BIN     := bin/switchboard
CONFIG  ?= config.toml
PKGS    := ./...

.PHONY: all build run test test-deps unit lint vet fmt bench clean validate

all: build

build:
	$(GO) build -o $(BIN) ./cmd/switchboard

run: build
	./$(BIN) -config $(CONFIG)

validate: build
	./$(BIN) validate -config $(CONFIG)

# test-deps installs the tools the end-to-end tests drive the proxy with.
test-deps:
	@missing=""; \
	command -v sipp >/dev/null 2>&1 || missing="$$missing sip-tester"; \
	command -v ip >/dev/null 2>&1 || missing="$$missing iproute2"; \
	command -v unshare >/dev/null 2>&1 || missing="$$missing util-linux"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then SUDO=sudo; fi; \
		echo "installing:$$missing"; \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing; \
	fi

test: test-deps
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

unit:
	$(GO) test -race -count=1 -short $(PKGS)

lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

clean:
	rm -rf bin
