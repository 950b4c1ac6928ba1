# splicer build, test and benchmark entry points. `make help` lists them.

GO      ?= go
# The Go that builds and tests splicer: go1.27.3, which the go command
# fetches from the Go module proxy on first use (76 MB, once per machine).
# go.mod keeps go 1.26.8, so an older Go still builds the module, but
# go1.26.8's standard library has known vulnerabilities in code splicer
# calls (net/http's HTTP/2 server, crypto/tls, crypto/x509: see
# docs/CODE_AUDIT_REPORT.md, govulncheck) that 1.27.3 does not.
# `make SPLICER_GO=local ...` builds with the Go installed instead.
SPLICER_GO ?= go1.27.3
export GOTOOLCHAIN := $(SPLICER_GO)
BIN     := bin/splicer
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# Packages whose tests run under `make test`.
PKGS    := ./...
FUZZTIME ?= 60s
# Where `make install` puts things: DESTDIR is prepended to every path
# (for packaging), PREFIX is where they live once installed.
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
DOCDIR      ?= $(PREFIX)/share/doc/splicer
SYSCONFDIR  ?= /etc

.PHONY: help build run test test-unit test-coverage benchmark bench bench-check audit audit-ci vulncheck scale-sim fuzz lint cover clean install

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 15

build: ## build bin/splicer with version and commit stamped in
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/splicer

run: build ## run splicer on config.toml.example with its demo backends (Ctrl-C stops)
	@echo "clients: 127.0.0.1:7000; admin page: http://127.0.0.1:9090/; Ctrl-C stops (a second one closes open connections)"
	./$(BIN) run -c config.toml.example -demo -log-format console

test: lint ## gofmt check, go vet, then every test under the race detector
	$(GO) test -race -timeout 14m $(PKGS)

test-unit: ## fast tests: no race detector, no real servers (-short skips PostgreSQL, Redis, HAProxy, ... tests)
	$(GO) test -short -timeout 10m $(PKGS)

# The audit's tools, pinned. They run with `go run MODULE@VERSION`, built in
# the module cache: none enters go.mod, go.sum or the product's imports.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
GOVULNCHECK ?= golang.org/x/vuln/cmd/govulncheck@v1.9.0
BENCHSTAT   ?= golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
# The Go vulnerability database govulncheck reads, built offline from this
# module (see docs/CODE_AUDIT_REPORT.md, govulncheck).
VULNDB      ?= golang.org/x/vulndb@v0.0.0-20261105234957-e22db6528018
AUDIT       := $(GO) run ./cmd/splicer-audit
AUDIT_FUZZTIME ?= 10s
# AUDIT_RACE=false measures coverage without the race detector: about half
# the time, for a machine that cannot spare it (the report then says that
# races were not measured; make test measures them).
AUDIT_RACE ?= true

test-coverage: ## statement coverage per package: writes coverage.out and coverage.md, prints the table
	$(AUDIT) coverage -profile coverage.out -out coverage.md

benchmark: ## the Go micro-benchmarks, with allocations
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# BENCH_MODE=instructions (the default) counts instructions per op under
# valgrind, which the load of a shared machine does not change;
# BENCH_MODE=time compares interleaved timings with benchstat's test, for
# a quiet machine. BENCH_BASE=REV compares against another commit.
BENCH_MODE ?= instructions
bench-check: ## hot-path micro-benchmarks against the baseline commit (cmd/splicer-audit/testdata/bench-baseline); fails on a regression beyond 5% outside the noise
	$(AUDIT) bench-check -mode $(BENCH_MODE) -benchstat $(BENCHSTAT) $(if $(BENCH_BASE),-base $(BENCH_BASE))

audit: ## race + coverage, documented names, staticcheck, govulncheck, fuzzing: writes docs/CODE_AUDIT_REPORT.md
	$(AUDIT) report -out docs/CODE_AUDIT_REPORT.md -fuzztime $(AUDIT_FUZZTIME) -race=$(AUDIT_RACE) \
		-staticcheck $(STATICCHECK) -govulncheck $(GOVULNCHECK) -vulndb $(VULNDB)

# CI runs make test (every test under the race detector, the fuzz seed
# corpora, TestExportedNamesDocumented), then audit-ci: documented names,
# staticcheck and govulncheck against the pinned database, about a minute
# more once the tools are built.
audit-ci: ## the audit's CI part after make test: documented names, staticcheck, govulncheck, failing on any finding
	$(AUDIT) report -only docs,staticcheck,govulncheck -staticcheck $(STATICCHECK) -govulncheck $(GOVULNCHECK) -vulndb $(VULNDB)

vulncheck: ## govulncheck against the vulnerability database built offline from the pinned golang.org/x/vulndb
	$(AUDIT) report -only govulncheck -govulncheck $(GOVULNCHECK) -vulndb $(VULNDB)

bench: build ## Go micro-benchmarks, then the side-by-side run against HAProxy and nginx; results and plots in docs/bench/
	@mkdir -p docs/bench
	bash -o pipefail -c "$(GO) test -run '^$$' -bench . -benchmem ./... | tee docs/bench/gobench.txt"
	$(GO) run ./cmd/splicer-bench -splicer $(BIN) -out docs/bench/results.md -json docs/bench/results.json -gobench docs/bench/gobench.txt -svg docs/bench

scale-sim: build ## as root: 3 instances behind ECMP in network namespaces, DNS discovery; prints the figures of docs/scaling.md
	$(GO) run ./cmd/splicer-scalesim -splicer $(BIN)

# Every fuzz target, as package:Target. `make test` runs their seed corpora.
FUZZ    := pkg/config:FuzzLoad pkg/admin:FuzzRequest pkg/admin:FuzzDecodeBody pkg/admin:FuzzParseUsers \
           pkg/resp:FuzzRead pkg/discovery:FuzzSentinelEvent health:FuzzPostgresProbe health:FuzzMySQLProbe \
           health:FuzzRedisProbe health:FuzzHTTPProbe pkg/proxyproto:FuzzParse

fuzz: ## run each fuzz target for FUZZTIME (default 60s)
	@set -e; for t in $(FUZZ); do \
		echo "fuzz $${t#*:} in ./$${t%%:*}"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) ./$${t%%:*}; \
	done

lint: ## gofmt must be clean, go vet must pass
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

install: build ## install binary, systemd unit, service user, docs and a config (kept if present) under DESTDIR, PREFIX
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSCONFDIR)/splicer
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/splicer
	sed -e 's|/usr/local/bin/splicer|$(BINDIR)/splicer|g' -e 's|/etc/splicer/|$(SYSCONFDIR)/splicer/|g' \
		-e 's|file:///usr/local/share/doc/splicer/|file://$(DOCDIR)/|' docs/systemd/splicer.service > $(DESTDIR)$(UNITDIR)/splicer.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/splicer.service
	install -m 0644 docs/systemd/splicer.sysusers $(DESTDIR)$(SYSUSERSDIR)/splicer.conf
	install -m 0644 config.toml.example docs/*.md $(DESTDIR)$(DOCDIR)/
	install -d $(DESTDIR)$(DOCDIR)/bench
	install -m 0644 docs/bench/*.svg $(DESTDIR)$(DOCDIR)/bench/
	test -e $(DESTDIR)$(SYSCONFDIR)/splicer/config.toml || \
		install -m 0644 config.toml.example $(DESTDIR)$(SYSCONFDIR)/splicer/config.toml

cover: ## test with coverage and write coverage.html
	$(GO) test -coverprofile=coverage.out $(PKGS)
	$(GO) tool cover -html=coverage.out -o coverage.html

clean: ## remove build and coverage output
	rm -rf bin coverage.out coverage.html coverage.md
