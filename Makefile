# tlsfleet — run `make help` for the targets.
SHELL := /bin/bash
GO    ?= go
BIN   := bin
PKGS  := ./...
# Fuzz targets run briefly in `make test`; raise FUZZTIME to search longer. A count ("Nx"), not a
# duration: Go 1.26's coordinator can report "context deadline exceeded" at the end of a timed run
# (golang/go#75804, fixed in Go 1.27), which failed CI once with no crasher found.
FUZZTIME ?= 30000x
RUN_DIR  ?= var/manager

.PHONY: help build run test test-deps unit fuzz lint fmt bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

build: ## build bin/: tlsfleet (the Manager), ds_agent (the agent), dsm_c, dsa_control
	$(GO) build -o $(BIN)/ ./cmd/...

run: build ## the main job: run the Manager in var/manager (URL and first sign-in printed; Ctrl-C stops it)
	$(BIN)/tlsfleet manager --dir $(RUN_DIR)

test-deps: ## install what the tests need (openssl, nmap; Debian 12)
	scripts/test-deps.sh

test: test-deps lint unit fuzz ## install test dependencies, then lint and run every test suite

unit: ## go vet and every Go test with the race detector (real openssl handshakes included), the Manager's again on PostgreSQL
	$(GO) vet $(PKGS)
	CI=$${CI:-} $(GO) test -race -count=1 -timeout 30m $(PKGS)
	CI=$${CI:-} TLSFLEET_TEST_DB=postgres $(GO) test -race -count=1 -timeout 30m ./internal/manager/...

fuzz: ## run each fuzz target for FUZZTIME executions
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

lint: ## gofmt, go vet and staticcheck (pinned in tools/go.mod)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [[ -n "$$out" ]]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool -modfile=tools/go.mod staticcheck $(PKGS)

fmt: ## gofmt every Go file
	gofmt -w $$(git ls-files '*.go')

bench: ## run the Go benchmarks
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

clean: ## remove build output and the local run folder
	rm -rf $(BIN) var
