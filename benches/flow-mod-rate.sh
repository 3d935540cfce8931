#!/usr/bin/env bash
# FLOW_MOD rate over OpenFlow 1.3 on loopback: rvs versus Open vSwitch
# (ovs-vswitchd, userspace datapath), in the same run, inside a namespace the
# run creates. Two clients, 10,000 host routes each time:
#   pipelined: benches/ofblast.py writes every FLOW_MOD at once with a BARRIER
#              after each 1000 and waits for the last BARRIER_REPLY (what a
#              controller that batches does: the switch's own rate);
#   ovs-ofctl: `ovs-ofctl -O OpenFlow13 add-flows` (one write per message:
#              mostly the client's rate).
# A benchmark, not a test: run as root, e.g.  REPEAT=5 bash benches/flow-mod-rate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "flow-mod-rate: run as root (a network namespace)" >&2; exit 1; }
REPEAT=${REPEAT:-5}
N=10000
PREFIX=rvf
# shellcheck source=benches/of-peers.sh
source benches/of-peers.sh
start_switches
# Different bridge names: each switch's LOCAL port is a device in the namespace.
vsctl add-br "${P}o" -- set bridge "${P}o" datapath_type=netdev \
    -- set-controller "${P}o" ptcp:6654:127.0.0.1
rvsc add-br "${P}r"
rvsc set-controller "${P}r" ptcp:6653
python3 -c "
for i in range($N):
    print(f'table=0,priority=100,ip,nw_dst=198.18.{i//256}.{i%256},actions=dec_ttl,output:1')
" >"$D/flows"
sleep 1

declare -A res
for i in $(seq "$REPEAT"); do
    for sw in rvs:6653 ovs:6654; do
        name=${sw%%:*} t=tcp:127.0.0.1:${sw#*:}
        nsx ovs-ofctl -O OpenFlow13 del-flows "$t"
        r=$(nsx python3 benches/ofblast.py "${sw#*:}" "$N" | awk '{print $1}')
        n=$(nsx ovs-ofctl -O OpenFlow13 dump-aggregate "$t" | grep -o 'flow_count=[0-9]*')
        [ "$n" = "flow_count=$N" ] || { echo "$name: $n after the pipelined batch" >&2; exit 1; }
        res[$name-pipelined]+="$r "
        nsx ovs-ofctl -O OpenFlow13 del-flows "$t"
        s=$(date +%s.%N)
        nsx ovs-ofctl -O OpenFlow13 --no-names add-flows "$t" "$D/flows"
        e=$(date +%s.%N)
        res[$name-ovs-ofctl]+="$(python3 -c "print(round($N/($e-$s)))") "
    done
done
echo "FLOW_MOD adds per second, median of $REPEAT (all runs):"
for c in pipelined ovs-ofctl; do
    r=$(echo "${res[rvs-$c]}" | median) o=$(echo "${res[ovs-$c]}" | median)
    printf '  %-10s rvs %7d  ovs %7d  rvs/ovs %.2fx   (rvs: %s| ovs: %s)\n' "$c" "$r" "$o" \
        "$(python3 -c "print($r/$o)")" "${res[rvs-$c]}" "${res[ovs-$c]}"
done
