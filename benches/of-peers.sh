# Sourced by benches/flow-mod-rate.sh and benches/packet-in-rate.sh: a
# namespace of the run's own ($P, from the caller's prefix), a scratch
# directory ($D) removed with it, an rvs daemon with the AF_XDP datapath and
# a private Open vSwitch (ovsdb-server + ovs-vswitchd, netdev datapath) in
# that namespace, each stopped by its pidfile when the script ends.
# Usage: PREFIX=rvx; source benches/of-peers.sh; then `nsx CMD` runs in $P.
P="$PREFIX$(( $$ % 100000 ))"
D=$(mktemp -d "${TMPDIR:-/tmp}/$P.XXXX")
RVS=target/release/rvs
cargo build --release -q -p rvs-control --bin rvs

cleanup() {
    for f in "$D"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
    sleep 0.3
    ip netns del "$P" 2>/dev/null || true
    rm -rf "$D"
}
trap cleanup EXIT INT TERM
nsx() { ip netns exec "$P" "$@"; }

ip netns add "$P"
nsx ip link set lo up

# Start both switches (call after the namespace has the devices they need).
start_switches() {
    nsx "$RVS" --run-dir "$D/rvs" daemon --datapath afxdp --metrics off --db "$D/rvs.json" >"$D/rvs.log" 2>&1 &
    echo $! >"$D/rvs.pid"
    ovsdb-tool create "$D/conf.db" /usr/share/openvswitch/vswitch.ovsschema
    nsx ovsdb-server "$D/conf.db" --remote="punix:$D/db.sock" --pidfile="$D/ovsdb-server.pid" \
        --unixctl="$D/ovsdb-server.ctl" --detach --log-file="$D/ovsdb.log"
    ovs-vsctl --db="unix:$D/db.sock" --no-wait init
    OVS_RUNDIR=$D nsx ovs-vswitchd "unix:$D/db.sock" --pidfile="$D/ovs-vswitchd.pid" \
        --unixctl="$D/ovs-vswitchd.ctl" --detach --log-file="$D/vswitchd.log"
    for _ in $(seq 50); do "$RVS" --run-dir "$D/rvs" version >/dev/null 2>&1 && break; sleep 0.1; done
}

# `ovs-vsctl` on the private instance; `rvsc` on the private daemon.
vsctl() { ovs-vsctl --db="unix:$D/db.sock" "$@"; }
rvsc() { "$RVS" --run-dir "$D/rvs" "$@" >/dev/null; }

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
