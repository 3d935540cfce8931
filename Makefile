# Thin wrapper: every target is one or two commands a user could type.
CARGO ?= cargo

.PHONY: deps build demo test bench fmt clippy clean

## deps: install the system packages (idempotent apt-get; a no-op when present)
deps:
	bash scripts/install-deps.sh

## build: release build of the whole workspace
build: deps
	$(CARGO) build --workspace --release

## demo: the two-node Geneve lab (root): build, bring it up with every command
## shown, check it, then a short comparison of rvs (eBPF and AF_XDP datapaths)
## with Open vSwitch (userspace datapath) and the Linux bridge (VM offloads on
## and off): table and answers on stdout, report and charts in target/lab/;
## then the same with security groups and a router between the tenants (rvs
## eBPF and AF_XDP, Linux router namespace + iptables, OVS), in
## target/lab/security-groups/.
## Everything is removed at the end.
demo: deps
	@test "$$(id -u)" = 0 || { echo "make demo needs root (network namespaces, BPF)"; exit 1; }
	$(CARGO) build --release -p rvs-control -p rvs-topologies
	./target/release/rvs-lab --explain test topologies/two-node-geneve-ebpf.toml
	./target/release/rvs-lab compare --iperf-secs 5 --pps-secs 3 --pings 200 \
		topologies/two-node-geneve-ebpf.toml topologies/ovs-userspace.toml \
		topologies/ovs-userspace-pmd.toml topologies/linux-bridge-offloads.toml topologies/two-node-geneve.toml \
		topologies/linux-bridge.toml
	./target/release/rvs-lab compare --iperf-secs 5 --pps-secs 3 --pings 200 --out target/lab/security-groups \
		topologies/two-node-router-sg-ebpf.toml topologies/linux-router-sg.toml topologies/two-node-router-sg.toml \
		topologies/ovs-router-sg.toml

## test: formatting, lints, and the whole test suite. Root-only tests (their
## names start with root_: namespaces, XDP, TC) run as root; as a normal user
## they are left out and listed as skipped.
test: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	@if [ "$$(id -u)" = 0 ]; then \
		$(CARGO) test --workspace; \
	else \
		$(CARGO) test --workspace -- --skip root_ && \
		echo "skipped (need root):" && \
		$(CARGO) test --workspace -q -- --list 2>/dev/null | grep -E '^root_.*: test$$' | sed 's/: test$$//; s/^/  /'; \
	fi

## bench: criterion benchmarks of the packet path (release, see benches/README.md)
bench: deps
	$(CARGO) bench -p rvs-benches

fmt:
	$(CARGO) fmt --all

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
