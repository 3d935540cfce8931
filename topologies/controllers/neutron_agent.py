"""An os-ken application that programs rvs's br-int and br-tun over OpenFlow
1.3 the way neutron's OVS agent does with its native (os-ken) driver: br-int
forwards NORMAL (VM ports carry their network's local VLAN as access tags),
br-tun runs neutron's tunnel tables 0/2/4/10/20/22 with a NXAST_LEARN that
records which tunnel a remote MAC sits behind.

Every bridge of every node dials this controller (`rvs set-controller BR
tcp:IP:6653`, fail mode secure). A bridge is told apart by its ports, read
from PORT_DESC as the agent reads them from OVSDB: br-tun has `patch-int`
and one Geneve port per other node (`gnv-*`), br-int has `patch-tun`. The
networks (VNI <-> local VLAN) come from the JSON file named by
RVS_AGENT_CONFIG: {"networks": [{"vni": 5001, "vlan": 1}, ...]}.

Run: osken-manager --ofp-listen-host IP --ofp-tcp-listen-port 6653 neutron_agent.py
"""

import json
import os

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.ofproto import ofproto_v1_3

# The agent's cookie on everything it installs (dump-flows shows whose a rule is).
COOKIE = 0x7273_7661_6765_6e74
LEARN_COOKIE = 0x1
LEARN_HARD_TIMEOUT = 300

# neutron's br-tun tables (constants.py).
PATCH_LV_TO_TUN = 2
GRE_TUN_TO_LV = 4  # the tunnel-type table (one per type; Geneve's here)
LEARN_FROM_TUN = 10
UCAST_TO_TUN = 20
FLOOD_TO_TUN = 22


class NeutronAgent(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        path = os.environ["RVS_AGENT_CONFIG"]
        with open(path) as f:
            self.networks = json.load(f)["networks"]
        self.logger.info("networks: %s", self.networks)

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def _features(self, ev):
        dp = ev.msg.datapath
        dp.send_msg(dp.ofproto_parser.OFPPortDescStatsRequest(dp, 0))

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def _port_status(self, ev):
        # A port came or went: read them all again and reprogram.
        dp = ev.msg.datapath
        dp.send_msg(dp.ofproto_parser.OFPPortDescStatsRequest(dp, 0))

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _ports(self, ev):
        dp = ev.msg.datapath
        ports = {}
        for p in ev.msg.body:
            name = p.name.decode() if isinstance(p.name, bytes) else p.name
            ports[name] = p.port_no
        if "patch-int" in ports:
            self.logger.info("dpid %016x is br-tun: %s", dp.id, sorted(ports))
            self._br_tun(dp, ports)
        elif "patch-tun" in ports:
            self.logger.info("dpid %016x is br-int: %s", dp.id, sorted(ports))
            self._br_int(dp)
        else:
            self.logger.info("dpid %016x: not a bridge of ours: %s", dp.id, sorted(ports))

    # -- helpers ---------------------------------------------------------

    def _delete_all(self, dp):
        ofp, parser = dp.ofproto, dp.ofproto_parser
        dp.send_msg(
            parser.OFPFlowMod(
                dp,
                table_id=ofp.OFPTT_ALL,
                command=ofp.OFPFC_DELETE,
                out_port=ofp.OFPP_ANY,
                out_group=ofp.OFPG_ANY,
            )
        )

    def _add(self, dp, table, priority, match, actions=(), goto=None):
        ofp, parser = dp.ofproto, dp.ofproto_parser
        inst = []
        if actions:
            inst.append(parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, list(actions)))
        if goto is not None:
            inst.append(parser.OFPInstructionGotoTable(goto))
        dp.send_msg(
            parser.OFPFlowMod(
                dp,
                cookie=COOKIE,
                table_id=table,
                priority=priority,
                match=match,
                instructions=inst,
            )
        )

    def _barrier(self, dp):
        dp.send_msg(dp.ofproto_parser.OFPBarrierRequest(dp))

    # -- br-int ----------------------------------------------------------

    def _br_int(self, dp):
        ofp, parser = dp.ofproto, dp.ofproto_parser
        # The bridge's own NORMAL rule is not ours: clear everything.
        self._delete_all(dp)
        self._add(dp, 0, 0, parser.OFPMatch(), [parser.OFPActionOutput(ofp.OFPP_NORMAL)])
        self._barrier(dp)

    # -- br-tun ----------------------------------------------------------

    def _br_tun(self, dp, ports):
        ofp, parser = dp.ofproto, dp.ofproto_parser
        patch_int = ports["patch-int"]
        tunnels = sorted(no for name, no in ports.items() if name.startswith("gnv"))
        self._delete_all(dp)
        # table 0: from br-int to the patch table, from a tunnel to the
        # tunnel table, anything else dropped.
        self._add(dp, 0, 1, parser.OFPMatch(in_port=patch_int), goto=PATCH_LV_TO_TUN)
        for t in tunnels:
            self._add(dp, 0, 1, parser.OFPMatch(in_port=t), goto=GRE_TUN_TO_LV)
        self._add(dp, 0, 0, parser.OFPMatch())
        # table 2: unicast to the learned table, multicast to flooding.
        self._add(
            dp,
            PATCH_LV_TO_TUN,
            0,
            parser.OFPMatch(eth_dst=("00:00:00:00:00:00", "01:00:00:00:00:00")),
            goto=UCAST_TO_TUN,
        )
        self._add(
            dp,
            PATCH_LV_TO_TUN,
            0,
            parser.OFPMatch(eth_dst=("01:00:00:00:00:00", "01:00:00:00:00:00")),
            goto=FLOOD_TO_TUN,
        )
        # table 4: tunnel id -> local VLAN.
        for n in self.networks:
            self._add(
                dp,
                GRE_TUN_TO_LV,
                1,
                parser.OFPMatch(tunnel_id=n["vni"]),
                [
                    parser.OFPActionPushVlan(0x8100),
                    parser.OFPActionSetField(vlan_vid=n["vlan"] | ofp.OFPVID_PRESENT),
                ],
                goto=LEARN_FROM_TUN,
            )
        self._add(dp, GRE_TUN_TO_LV, 0, parser.OFPMatch())
        # table 10: learn where the source sits, then to br-int.
        learn = parser.NXActionLearn(
            table_id=UCAST_TO_TUN,
            priority=1,
            hard_timeout=LEARN_HARD_TIMEOUT,
            cookie=LEARN_COOKIE,
            specs=[
                parser.NXFlowSpecMatch(src=("vlan_tci", 0), dst=("vlan_tci", 0), n_bits=12),
                parser.NXFlowSpecMatch(src=("eth_src_nxm", 0), dst=("eth_dst_nxm", 0), n_bits=48),
                parser.NXFlowSpecLoad(src=0, dst=("vlan_tci", 0), n_bits=16),
                parser.NXFlowSpecLoad(src=("tunnel_id_nxm", 0), dst=("tunnel_id_nxm", 0), n_bits=64),
                parser.NXFlowSpecOutput(src=("in_port", 0), dst="", n_bits=32),
            ],
        )
        self._add(dp, LEARN_FROM_TUN, 1, parser.OFPMatch(), [learn, parser.OFPActionOutput(patch_int)])
        # table 20: what was not learned floods.
        self._add(dp, UCAST_TO_TUN, 0, parser.OFPMatch(), goto=FLOOD_TO_TUN)
        # table 22: a network's frames to every tunnel, untagged, with its VNI.
        for n in self.networks:
            actions = [
                parser.OFPActionPopVlan(),
                parser.OFPActionSetField(tunnel_id=n["vni"]),
            ] + [parser.OFPActionOutput(t) for t in tunnels]
            self._add(
                dp,
                FLOOD_TO_TUN,
                1,
                parser.OFPMatch(vlan_vid=n["vlan"] | ofp.OFPVID_PRESENT),
                actions,
            )
        self._add(dp, FLOOD_TO_TUN, 0, parser.OFPMatch())
        self._barrier(dp)
