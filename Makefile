# splicer build, test and benchmark entry points. `make help` lists them.

GO      ?= go
BIN     := bin/splicer
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# Packages whose tests run under `make test`.
PKGS    := ./...
FUZZTIME ?= 60s

.PHONY: help build run test bench fuzz lint cover clean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 10

build: ## build bin/splicer with version and commit stamped in
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/splicer

run: build ## run splicer on config.toml.example with its demo backends (Ctrl-C stops)
	./$(BIN) run -c config.toml.example -demo -log-format console

test: lint ## gofmt check, go vet, then every test under the race detector
	$(GO) test -race -timeout 14m $(PKGS)

bench: build ## Go micro-benchmarks, then the side-by-side run against HAProxy and nginx
	$(GO) test -run '^$$' -bench . -benchmem ./...
	$(GO) run ./cmd/splicer-bench -splicer $(BIN)

fuzz: ## fuzz the config loader and the protocol parsers, FUZZTIME each (default 60s)
	$(GO) test -run '^$$' -fuzz FuzzLoad -fuzztime $(FUZZTIME) ./pkg/config
	$(GO) test -run '^$$' -fuzz FuzzRead -fuzztime $(FUZZTIME) ./pkg/resp
	$(GO) test -run '^$$' -fuzz FuzzSentinelEvent -fuzztime $(FUZZTIME) ./pkg/discovery
	for f in FuzzPostgresProbe FuzzMySQLProbe FuzzRedisProbe; do \
		$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) ./health || exit 1; done

lint: ## gofmt must be clean, go vet must pass
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

cover: ## test with coverage and write coverage.html
	$(GO) test -coverprofile=coverage.out $(PKGS)
	$(GO) tool cover -html=coverage.out -o coverage.html

clean: ## remove build and coverage output
	rm -rf bin coverage.out coverage.html
