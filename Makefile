# govn — build, test, demo. Every target that needs system packages or Go tools
# installs them first (hack/deps.sh), so each works on a fresh Debian 12 machine.

SHELL      := /bin/bash
GO         ?= go
BIN        := bin
GOTESTFLAGS ?=
FUZZTIME   ?= 60s
export PATH := $(shell $(GO) env GOPATH)/bin:$(PATH)

.PHONY: all build deps test unit e2e bench bench-northd bench-compare demo generate verify-generated lint fuzz clean

all: build

## deps: install apt packages and pinned Go tools (idempotent).
deps:
	@hack/deps.sh
	@hack/deps-docker.sh

## build: bin/govn and bin/govnctl.
build:
	$(GO) build -o $(BIN)/govn ./cmd/govn
	$(GO) build -o $(BIN)/govnctl ./cmd/govnctl

## test: everything CI runs — lint, generated code check, unit + integration tests
## (real ovsdb-server / ovs-vswitchd), then the e2e scenarios (real packets).
test: deps lint verify-generated build unit e2e

unit:
	$(GO) test $(GOTESTFLAGS) -count=1 -timeout 20m $$($(GO) list ./... | grep -v /e2e)

## e2e: real OVS chassis in network namespaces (needs root).
e2e: build
	GOVN_BIN=$(CURDIR)/$(BIN)/govn $(GO) test $(GOTESTFLAGS) -count=1 -timeout 20m ./e2e/...

## bench: the benchmarks named by the issues (numbers, not pass/fail).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./lflow/...
	$(GO) test -run '^$$' -bench . -benchmem -count=1 -benchtime 10x ./northd
	$(GO) test -run '^$$' -bench LSPAdd -benchtime 1x ./api/server
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./controller/...

## bench-northd: 100 switches x {1k, 5k, 10k} ports against real DBs and govn northd.
bench-northd: build
	northd/bench-northd.sh

## bench-compare: govn vs real OVN 23.03, one driver, same machine, same run (QUICK=1: CI size; SIZES, SAMPLES, OUT).
bench-compare:
	bench/run.sh

## fuzz: each fuzz target for $(FUZZTIME).
fuzz:
	@hack/fuzz.sh $(FUZZTIME)

## generate: regenerate libovsdb models and protobuf code.
generate:
	$(GO) generate ./...

## verify-generated: regenerate and fail if anything changed.
verify-generated: deps
	@hack/verify-generated.sh

## lint: gofmt + go vet.
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## demo: two chassis, three pods, real packets (root): govn up, govn controller per chassis, govnctl, trace.
demo: deps build
	@hack/demo.sh

clean:
	rm -rf $(BIN)
