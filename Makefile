# splicer build, test and benchmark entry points. `make help` lists them.

GO      ?= go
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

.PHONY: help build run test bench scale-sim fuzz lint cover clean install

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 10

build: ## build bin/splicer with version and commit stamped in
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/splicer

run: build ## run splicer on config.toml.example with its demo backends (Ctrl-C stops)
	@echo "clients: 127.0.0.1:7000; admin page: http://127.0.0.1:9090/; Ctrl-C stops (a second one closes open connections)"
	./$(BIN) run -c config.toml.example -demo -log-format console

test: lint ## gofmt check, go vet, then every test under the race detector
	$(GO) test -race -timeout 14m $(PKGS)

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
	rm -rf bin coverage.out coverage.html
