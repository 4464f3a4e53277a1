# Switchboard: a SIP proxy and registrar.
#   make run    builds and runs the proxy with ./config.toml
#   make test   installs what the tests need (sipp, iproute2, redis-server, sipvicious, kamailio,
#               chromium, and the browser phone's npm packages), runs every test with -race,
#               then each fuzz target for 30000 inputs

GO      ?= go
BIN     := bin/switchboard
CONFIG  ?= config.toml
PKGS    := ./...
# BROWSER is the browser phone of TestBrowserPhone: its npm packages
# (JsSIP, playwright-core) are installed there from package-lock.json.
BROWSER := cmd/switchboard/testdata/browser

.PHONY: all build run test test-deps unit lint vet fmt bench bench-smoke clean validate attack-tcp deb

all: build

# -buildvcs=auto stamps the commit in the binary (switchboard version) even
# where GOFLAGS turns it off; Go finds no repository in a git worktree.
build:
	$(GO) build -buildvcs=auto -o $(BIN) ./cmd/switchboard

run: build
	./$(BIN) -config $(CONFIG)

validate: build
	./$(BIN) validate -config $(CONFIG)

# deb builds bin/switchboard_VERSION_ARCH.deb with dpkg-deb (packaging/deb.sh):
# a static binary, examples/switchboard.service, packaging/config.toml as
# the conffile /etc/switchboard/config.toml, and the logrotate file.
# DEB_VERSION defaults to 0.0.0~gitDATE.HASH of the last commit.
DEB_VERSION ?= $(shell git log -1 --date=format:%Y%m%d --format='0.0.0~git%cd.%h' 2>/dev/null || echo 0.0.0)
DEB_OUT     ?= bin
# -buildvcs=auto stamps the commit even where GOFLAGS turns it off.
deb:
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=auto -ldflags='-s -w' -o $(DEB_OUT)/deb/switchboard ./cmd/switchboard
	packaging/deb.sh $(DEB_OUT)/deb/switchboard $(DEB_VERSION) $(DEB_OUT)

# test-deps installs the tools the end-to-end tests drive the proxy with
# (sngrep and tshark read what the SIP capture sends and writes),
# Debian's Chromium for the browser phone, and its npm packages (npm ci:
# exactly the committed lock; playwright-core downloads no browser).
test-deps:
	@missing=""; \
	command -v sipp >/dev/null 2>&1 || missing="$$missing sip-tester"; \
	command -v ip >/dev/null 2>&1 || missing="$$missing iproute2"; \
	command -v unshare >/dev/null 2>&1 || missing="$$missing util-linux"; \
	command -v nft >/dev/null 2>&1 || missing="$$missing nftables"; \
	command -v conntrack >/dev/null 2>&1 || missing="$$missing conntrack"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v svwar >/dev/null 2>&1 || missing="$$missing sipvicious"; \
	command -v kamailio >/dev/null 2>&1 || missing="$$missing kamailio"; \
	command -v sngrep >/dev/null 2>&1 || missing="$$missing sngrep"; \
	command -v tshark >/dev/null 2>&1 || missing="$$missing tshark"; \
	[ -x /usr/sbin/logrotate ] || missing="$$missing logrotate"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then SUDO=sudo; fi; \
		echo "installing:$$missing"; \
		echo "wireshark-common wireshark-common/install-setuid boolean false" | $$SUDO debconf-set-selections 2>/dev/null; \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	cd $(BROWSER) && npm ci --no-audit --no-fund

test: test-deps
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	@$(MAKE) --no-print-directory fuzz-short

unit:
	$(GO) test -race -count=1 -short $(PKGS)

lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

# fuzz runs every fuzz target for FUZZTIME each (2 minutes by default), one
# after the other; a crasher is written to the package's testdata/fuzz and
# fails the run. fuzz-short runs each for 30000 inputs (a few seconds), for
# CI: a count, not a duration, because Go 1.26's fuzzer may fail a target
# with a bare "context deadline exceeded" when a duration ends on a loaded
# machine (golang/go#75804, fixed in Go 1.27). Plain `go test` runs every
# target over its seed corpus (f.Add and testdata/fuzz) only.
FUZZTIME     ?= 2m
FUZZ_TARGETS := \
	./stages/parse:FuzzParseStage \
	./pipeline:FuzzRuleEnv \
	./stages/registrar:FuzzRegistrar \
	./stages/calllog:FuzzSDP \
	./stages/calllog:FuzzEventLines \
	./stages/calllog:FuzzRecordLines \
	./stages/auth:FuzzParseCredentials \
	./pipeline/engine:FuzzRawDatagram

.PHONY: fuzz fuzz-short

fuzz:
	@set -e; for target in $(FUZZ_TARGETS); do \
		pkg=$${target%%:*}; name=$${target##*:}; \
		echo "fuzz $$name in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=30000x

# bench runs the Go benchmarks (each stage, the pipeline, the location
# store) and the SIPp harness's full run, Switchboard beside Kamailio, with
# its latency series, pinned and shared (about 80 minutes in all); the harness's results replace the table in
# docs/benchmarks.md. Needs sipp and kamailio: make test-deps.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -timeout 30m ./pipeline/... ./stages/...
	$(GO) run ./examples/bench -full -docs docs/benchmarks.md

# bench-smoke runs the harness at one low rate per proxy, pinned and shared (about a minute);
# make test runs it too, as examples/bench's TestSmoke.
bench-smoke:
	$(GO) run ./examples/bench -smoke

# attack-tcp runs the full-size TCP attack of docs/security.md (about
# 20,000 connections against a proxy allowed 10,000 descriptors, about a
# minute) and logs its numbers. Needs prlimit (util-linux) and a limit on
# open files of at least 20,200 (ulimit -n).
attack-tcp: build
	SWITCHBOARD_ATTACK_TCP=1 SWITCHBOARD_BIN=$(abspath $(BIN)) $(GO) test -count=1 -v -timeout 10m -run '^TestAttackTCP$$' ./cmd/switchboard

# attack-transactions plays the transaction exhaustion attack at full size
# with the default limits (a phone that only rings, 111 INVITEs a second,
# each cancelled; about two minutes); attack-memory floods the engine with
# 40,000 unanswered INVITEs and logs its memory every 5 s for 200 s, and
# the location store with 300,000 registrations added and removed (about
# four minutes). docs/security.md has their numbers.
.PHONY: attack-transactions attack-memory
attack-transactions:
	SWITCHBOARD_ATTACK_TRANSACTIONS=1 $(GO) test -count=1 -v -timeout 10m -run '^TestAttackRingingCallee$$' ./pipeline/engine

attack-memory:
	SWITCHBOARD_FLOOD=40000 SWITCHBOARD_FR_TIMEOUT=20s SWITCHBOARD_WAIT=1 $(GO) test -count=1 -v -timeout 10m -run '^TestMemoryAfterInviteFlood$$' ./pipeline/engine
	SWITCHBOARD_FLOOD=300000 $(GO) test -count=1 -v -timeout 10m -run '^TestMemoryAfterRegistrationFlood$$' ./pipeline/location

clean:
	rm -rf bin
