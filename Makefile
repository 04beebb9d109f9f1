# op25b — see README.md. Every target works on a fresh Debian 12 machine as root:
# `make test` installs what it needs (apt packages, starts Open vSwitch) itself.

SHELL       := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
export GOFLAGS := -mod=readonly
GO          ?= go
BIN         := bin
# Stamped into both binaries (--version, op25b_build_info, /v1/status).
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT      ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS     := -X github.com/op25b/op25b/internal/buildinfo.version=$(VERSION) \
               -X github.com/op25b/op25b/internal/buildinfo.commit=$(COMMIT)

# Debian packages the tests, the lab and the demo use (prometheus brings
# promtool and the server contrib/'s tests scrape the lab with; chromium
# renders the rollout page headless).
APT_PACKAGES := openvswitch-switch openvswitch-common mininet etcd-server etcd-client \
	ethtool iputils-ping iproute2 swaks libnet-ssleay-perl libio-socket-inet6-perl \
	python3-aiosmtpd openssl curl ca-certificates procps psmisc \
	systemd adduser man-db groff-base iperf3 \
	prometheus chromium

.PHONY: all deps ovs build deb test lab-test soak lint bench demo demo-trace clean

all: build

## deps: install missing Debian packages (idempotent) and start Open vSwitch.
deps:
	@missing=""; for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "deps: installing$$missing"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -q && apt-get install -y -q $$missing; \
	else echo "deps: all Debian packages present"; fi
	@$(MAKE) --no-print-directory ovs

## ovs: start ovsdb-server and ovs-vswitchd if they are not running (no systemd here).
ovs:
	@if ovs-vsctl --timeout=2 show >/dev/null 2>&1; then echo "ovs: running"; \
	else /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random 2>&1 | grep -v ulimit; \
		ovs-vsctl --timeout=5 show >/dev/null && echo "ovs: started"; fi

## build: the two binaries into bin/, stamped with VERSION and COMMIT.
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/op25bd ./cmd/op25bctl

## deb: the Debian package bin/op25b_VERSION_ARCH.deb (packaging/deb/README.md).
deb:
	VERSION="$(VERSION)" COMMIT="$(COMMIT)" packaging/deb/build.sh $(BIN)

## lint: gofmt and go vet must be clean.
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## test: everything CI runs. The lab goes last and alone: its disruptive
## tests restart ovs-vswitchd, which no other test may share.
test: deps lint build
	$(GO) test -count=1 -timeout 45m ./...
	$(GO) test -count=1 -race -timeout 30m ./controller/ ./api/
	$(MAKE) --no-print-directory lab-test
	$(MAKE) --no-print-directory soak SOAK_DURATION=3m

## lab-test: the Mininet lab (lab/README.md) with two op25bd replicas on a
## 3-member etcd, including the ovs-vswitchd restart test.
lab-test: deps build
	LAB_MN_CLEANUP=1 lab/run.sh --disruptive

## soak: the chaos soak (lab/README.md, "The chaos soak"): faults at random
## (seeded) while a writer changes the policy and probers connect from every
## lab host, then the history checker. Its own network namespace and its own
## ovs-vswitchd: it disturbs no other test. SOAK_DURATION (default 30m),
## SOAK_SEED (default random; printed, replays the same faults).
SOAK_DURATION ?= 30m
SOAK_SEED     ?= 0
soak: deps build
	SOAK_DURATION=$(SOAK_DURATION) SOAK_SEED=$(SOAK_SEED) lab/soak.sh

## bench: Go benchmarks, with ratios against ovs-ofctl (netrack for controller/ofwire) measured in the same run.
bench: deps
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 3x -timeout 60m ./flows/ ./topology/ ./topology/store/ ./controller/ ./controller/ofwire/ ./controller/cluster/ ./api/ ./cmd/op25bd/

## demo: the Mininet lab with one op25bd on its embedded etcd: the
## reachability matrix (real SMTP) and the installed flows of one bridge.
demo: deps build
	lab/run.sh --demo

## demo-trace: the quick version without Mininet: one bridge, verdicts from ofproto/trace.
demo-trace: deps build
	bash scripts/demo.sh

clean:
	rm -rf $(BIN)
