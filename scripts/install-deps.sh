#!/usr/bin/env bash
# Idempotent install of every system package that rvs's build, tests, benchmarks
# and lab need on Debian. Does nothing (and runs no apt-get) when all are present.
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
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when they are missing or older than a day.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
  $SUDO apt-get update -q
fi
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
