#!/usr/bin/env bash
# rvs (AF_XDP two-port forwarder, NORMAL) versus a Linux bridge on the same veth
# topology, measured in the same run with the same endpoint settings:
#
#     h1 --veth-- [ sw: rvs | Linux bridge ] --veth-- h2
#
# small-packet pps (rvs's own AF_XDP blaster from h1, counted at h2's interface),
# TCP throughput (iperf3), ping latency. Endpoints run with tx checksum offload
# off in both cases (AF_XDP needs it; see ../shared/notes). A benchmark, not a
# test: run as root, e.g.  SECS=5 bash benches/compare-bridge.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "compare-bridge: run as root (namespaces, XDP)" >&2; exit 1; }

SECS=${SECS:-5}
# off: endpoints complete their own checksums (what AF_XDP needs).
# on: endpoints keep tx checksum offload (and TSO); rvs completes checksums
#     itself (port option csum), the bridge needs nothing.
ENDPOINT_TX=${ENDPOINT_TX:-off}
CSUM=""; [ "$ENDPOINT_TX" = on ] && CSUM=",csum"
P="rvc$(( $$ % 100000 ))"     # per-run prefix for namespaces and links
RVS=target/release/rvs
OUT=target/bench
mkdir -p "$OUT"
cargo build --release -q -p rvs-control --bin rvs

RVSPID=""
SRVPID=""
cleanup() {
    [ -n "$RVSPID" ] && kill "$RVSPID" 2>/dev/null && wait "$RVSPID" 2>/dev/null || true
    [ -n "$SRVPID" ] && kill "$SRVPID" 2>/dev/null && wait "$SRVPID" 2>/dev/null || true
    RVSPID=""; SRVPID=""
    for n in h1 h2 sw; do ip netns del "$P$n" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

nsx() { local ns=$1; shift; ip netns exec "$P$ns" "$@"; }

setup() {
    for n in h1 h2 sw; do ip netns add "$P$n"; done
    ip link add "${P}a" netns "${P}h1" type veth peer name "${P}sa" netns "${P}sw"
    ip link add "${P}b" netns "${P}h2" type veth peer name "${P}sb" netns "${P}sw"
    ip -n "${P}h1" addr add 198.18.40.1/24 dev "${P}a"
    ip -n "${P}h2" addr add 198.18.40.2/24 dev "${P}b"
    for x in "h1 ${P}a" "h2 ${P}b" "sw ${P}sa" "sw ${P}sb"; do set -- $x; ip -n "$P$1" link set "$2" up; done
    if [ "$ENDPOINT_TX" = off ]; then
        nsx h1 ethtool -K "${P}a" tx off >/dev/null
        nsx h2 ethtool -K "${P}b" tx off >/dev/null
    fi
}

mac_of() { nsx "$1" cat "/sys/class/net/$2/address"; }
rx_packets() { nsx h2 cat "/sys/class/net/${P}b/statistics/rx_packets"; }

measure() {  # prints: pps tcp_mbit ping_avg_ms
    nsx h1 ping -c 3 -i 0.2 -W 2 198.18.40.2 >/dev/null     # warm up learning / ARP
    nsx h2 ping -c 1 -W 2 198.18.40.1 >/dev/null
    local dst src r0 r1 pps mbit rtt
    dst=$(mac_of h2 "${P}b"); src=$(mac_of h1 "${P}a")
    r0=$(rx_packets)
    nsx h1 "$RVS" blast --port "afpacket:${P}a" --dst-mac "$dst" --src-mac "$src" --seconds "$SECS" --flows 16 >"$OUT/blast.txt"
    sleep 0.5
    r1=$(rx_packets)
    pps=$(( (r1 - r0) / SECS ))
    ip netns exec "${P}h2" iperf3 -s -1 -B 198.18.40.2 >/dev/null 2>&1 & SRVPID=$!
    sleep 0.5
    mbit=$(nsx h1 iperf3 -c 198.18.40.2 -t "$SECS" -f m | awk '/receiver/ {for (i=1;i<=NF;i++) if ($i=="Mbits/sec") print $(i-1)}')
    wait "$SRVPID" 2>/dev/null || true; SRVPID=""
    rtt=$(nsx h1 ping -c 100 -i 0.01 -q 198.18.40.2 | awk -F/ '/rtt/ {print $5}')
    echo "$pps ${mbit:-0} ${rtt:-0}"
}

echo "== Linux bridge"
setup
ip -n "${P}sw" link add "${P}br" type bridge
ip -n "${P}sw" link set "${P}sa" master "${P}br"
ip -n "${P}sw" link set "${P}sb" master "${P}br"
ip -n "${P}sw" link set "${P}br" up
read -r b_pps b_mbit b_rtt < <(measure)
cleanup

echo "== rvs (AF_XDP, adaptive polling)"
setup
# `ip netns exec` execs rvs, so $! is rvs's own PID (stopped by PID in cleanup).
ip netns exec "${P}sw" "$RVS" forward --port "afxdp:${P}sa$CSUM" --port "afxdp:${P}sb$CSUM" --poll "${POLL:-adaptive}" \
    ${RVS_FORWARD_OPTS:-} --pidfile "$OUT/rvs.pid" >/dev/null 2>"$OUT/rvs.log" & RVSPID=$!
for _ in $(seq 50); do [ -s "$OUT/rvs.pid" ] && break; sleep 0.1; done
read -r r_pps r_mbit r_rtt < <(measure)
cleanup

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }'; }
{
    echo "| metric (${SECS} s runs, endpoint tx offload ${ENDPOINT_TX}, rvs polling ${POLL:-adaptive}) | Linux bridge | rvs AF_XDP | rvs / bridge |"
    echo "|---|---|---|---|"
    echo "| 64-byte UDP, frames/s at the receiver (16 flows, AF_PACKET blaster) | $b_pps | $r_pps | $(ratio "$r_pps" "$b_pps") |"
    echo "| TCP, Mbit/s (iperf3, 1 stream) | $b_mbit | $r_mbit | $(ratio "$r_mbit" "$b_mbit") |"
    echo "| ping avg RTT, ms (100 pings, 10 ms apart) | $b_rtt | $r_rtt | $(ratio "$r_rtt" "$b_rtt") |"
} | tee "$OUT/compare-bridge.md"
