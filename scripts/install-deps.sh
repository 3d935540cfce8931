#!/usr/bin/env bash
# Idempotent install of every system package that rvs's build, tests, benchmarks
# and lab need on Debian, and of the Python ones (Faucet, os-ken) into the
# repository's .venv. Does nothing (runs no apt-get, no pip) when all are present.
set -euo pipefail

PKGS=(
  # build: the BPF C program (clang/llvm), libbpf-sys vendored build (make, gcc,
  # pkg-config, libelf, zlib), and the system libbpf headers for bpf_helpers.h
  clang llvm libbpf-dev libelf-dev zlib1g-dev pkg-config make gcc libc6-dev
  # lab and root tests: namespaces, veth, traffic, captures and pcap replay, NIC settings
  iproute2 iperf3 iputils-ping tcpdump tcpreplay ethtool procps
  # the OVS peer lab (topologies/ovs-userspace.toml): ovsdb-server, ovs-vswitchd,
  # ovs-vsctl, ovs-ofctl, ovs-appctl (private instances per node; the packaged
  # service is never used)
  openvswitch-switch
  # the Linux security-group lab (topologies/linux-router-sg.toml): iptables
  # rules on bridged traffic (physdev, conntrack), as neutron's iptables
  # firewall driver writes them
  iptables
  # the venv below (Faucet, os-ken): venv, and headers for pytricia's C code
  python3-venv python3-dev
)

# Python packages, into a venv of the repository's own (never the system's):
# real OpenFlow controllers for the tests. Faucet brings os-ken (the Ryu fork
# neutron's OVS agent uses); pytricia, one of its dependencies, is built with
# gcc against the interpreter's headers.
VENV="${RVS_VENV:-$(cd "$(dirname "$0")/.." && pwd)/.venv}"
PY_PKGS=(faucet==1.10.12)

install_apt() {
  local missing=()
  for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$p")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#PKGS[@]} packages present"
    return
  fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Refresh the package lists only when they are missing or older than a day.
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
    $sudo apt-get update -q
  fi
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
}

install_venv() {
  if [ -x "$VENV/bin/faucet" ] && "$VENV/bin/faucet" --version 2>/dev/null | grep -q "Faucet 1.10.12"; then
    echo "install-deps: venv $VENV has ${PY_PKGS[*]}"
    return
  fi
  echo "install-deps: creating venv $VENV with ${PY_PKGS[*]}"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${PY_PKGS[@]}"
}

install_apt
install_venv
