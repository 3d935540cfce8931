#!/usr/bin/env bash
# PACKET_IN rate over OpenFlow 1.3: rvs versus Open vSwitch in the same run,
# inside a namespace the run creates. Each switch has one port (the switch
# end of a veth, AF_XDP: rvs's afxdp port, OVS's afxdp-nonpmd) and one rule,
# the table-miss rule `priority=0,actions=CONTROLLER:128`; `rvs blast` sends
# 64-byte UDP frames (one flow) into the veth's other end, and
# benches/pincount.py, a controller on the switch's ptcp: listener, counts the
# PACKET_INs it receives. A benchmark, not a test: run as root, e.g.
#   REPEAT=3 SECS=5 bash benches/packet-in-rate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "packet-in-rate: run as root (a network namespace)" >&2; exit 1; }
REPEAT=${REPEAT:-3}
SECS=${SECS:-5}
PREFIX=rvp
# shellcheck source=benches/of-peers.sh
source benches/of-peers.sh
for s in r o; do
    nsx ip link add "${P}g$s" type veth peer name "${P}s$s"
    for i in "${P}g$s" "${P}s$s"; do
        nsx sysctl -qw "net.ipv6.conf.$i.disable_ipv6=1"
        nsx ip link set "$i" up
    done
done
start_switches
vsctl add-br "${P}o" -- set bridge "${P}o" datapath_type=netdev \
    -- set-controller "${P}o" ptcp:6654:127.0.0.1 -- set-fail-mode "${P}o" secure \
    -- add-port "${P}o" "${P}so" -- set interface "${P}so" type=afxdp-nonpmd
rvsc add-br "${P}r"
rvsc add-port "${P}r" "${P}sr" type=afxdp
rvsc set-fail-mode "${P}r" secure
rvsc set-controller "${P}r" ptcp:6653
sleep 1.5
for t in tcp:127.0.0.1:6653 tcp:127.0.0.1:6654; do
    nsx ovs-ofctl -O OpenFlow13 del-flows "$t"
    nsx ovs-ofctl -O OpenFlow13 add-flow "$t" "priority=0,actions=CONTROLLER:128"
done

declare -A res
for i in $(seq "$REPEAT"); do
    for sw in rvs:6653:r ovs:6654:o; do
        IFS=: read -r name port s <<<"$sw"
        nsx python3 benches/pincount.py "$port" "$SECS" >"$D/count" &
        c=$!
        sleep 0.3
        nsx "$RVS" blast --port "afpacket:${P}g$s" --dst-mac 02:00:00:00:00:02 \
            --seconds "$(( SECS + 2 ))" >"$D/blast" 2>&1 || { cat "$D/blast" >&2; exit 1; }
        wait "$c"
        res[$name]+="$(awk '{print $1}' "$D/count") "
        res[$name-offered]+="$(grep -o '[0-9]* pps' "$D/blast" | head -1 | awk '{print $1}') "
    done
done
r=$(echo "${res[rvs]}" | median) o=$(echo "${res[ovs]}" | median)
echo "PACKET_INs per second received by the controller, median of $REPEAT:"
printf '  rvs %8d  ovs %8d  rvs/ovs %.2fx   (rvs: %s| ovs: %s)\n' "$r" "$o" \
    "$(python3 -c "print($r/max($o,1))")" "${res[rvs]}" "${res[ovs]}"
echo "  offered by rvs blast (pps): rvs runs: ${res[rvs-offered]}| ovs runs: ${res[ovs-offered]}"
