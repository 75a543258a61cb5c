# backup-ns — developer entry points. `make help` lists them.
SHELL := /bin/sh
CARGO ?= cargo

.PHONY: help build release deps test lint fmt bench demo clean kind-up kind-down e2e

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-10s %s\n", $$1, $$2}'

build: ## Debug build of the binary
	$(CARGO) build --locked

release: ## Optimised static-friendly build (<target dir>/release/backup-ns)
	$(CARGO) build --locked --release

deps: ## Install what the tests need when missing: PostgreSQL, MariaDB, busybox, npm (Debian, as root)
	bash hack/setup-test-deps.sh

# mariadbd is in /usr/sbin, which a non-root PATH may lack; the tests run it by name.
test: deps ## Unit, emulation, real-database and chart tests (runs `deps` first)
	PATH="$$PATH:/usr/sbin" BACKUP_NS_HELM="$${BACKUP_NS_HELM:-$$(bash hack/install-helm.sh | tail -n 1)}" $(CARGO) test --locked --all-targets

lint: ## rustfmt check + clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt --all

bench: ## Benchmarks: create and restore dump vs. the bare dump/load (and peak RSS); retention at 10,000 snapshots
	$(CARGO) bench --locked

# `cargo run` finds the example wherever the target directory is (CARGO_TARGET_DIR, .cargo/config);
# the demo finds the backup-ns binary next to itself.
demo: ## A backup, its verify and a restore dump against the local API emulation with a throwaway PostgreSQL
	$(CARGO) build --locked --bin backup-ns --example demo
	$(CARGO) run --locked --quiet --example demo

kind-up: ## kind dev cluster: snapshot CRDs + controller, csi-hostpath, PostgreSQL and MySQL test namespaces
	bash hack/kind-up.sh

kind-down: ## Remove the kind dev cluster
	bash hack/kind-down.sh

e2e: ## Build and load the image, install the chart, run the #[ignore]d e2e suite (after kind-up)
	bash hack/e2e.sh

clean:
	$(CARGO) clean
