# Thin wrapper: every target is one or two commands a user could type.
CARGO ?= cargo

.PHONY: deps build test bench fmt clippy clean

## deps: install the system packages (idempotent apt-get; a no-op when present)
deps:
	bash scripts/install-deps.sh

## build: release build of the whole workspace
build: deps
	$(CARGO) build --workspace --release

## test: formatting, lints, and the whole test suite (root-only tests need root)
test: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) test --workspace

## bench: criterion benchmarks of the packet path (release, see benches/README.md)
bench: deps
	$(CARGO) bench -p rvs-benches

fmt:
	$(CARGO) fmt --all

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
