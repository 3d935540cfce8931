/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The ABI between rvs's eBPF datapath (rvs_dp.bpf.c) and its loader
 * (bpf/src/dp/abi.rs mirrors every struct and constant here; both sides
 * assert the sizes). The flow key is rvs's userspace FlowKey word for word
 * (dataplane/src/flow/field.rs), so a megaflow from translation is installed
 * as it is: a mask and a masked key.
 */
#ifndef RVS_DP_H
#define RVS_DP_H

#include <linux/types.h>

#define RVS_KEY_WORDS 18
#define RVS_MAX_MASKS 32
#define RVS_MAX_ACTIONS 16
#define RVS_MAX_FLOWS 65536
#define RVS_MAX_PORTS 1024
#define RVS_MAX_ENCAPS 4096
/* Connections (two entries each, one per direction) the kernel answers for. */
#define RVS_MAX_CTS 262144
/* Recirculations of one packet, a tunnel pop included (userspace's
 * MAX_RECIRC_DEPTH). */
#define RVS_MAX_DEPTH 6
#define RVS_ENCAP_MAX 128
#define RVS_OPT_SLOTS 8
/* The version of this ABI: bump it with any change to a map's layout or
 * meaning (abi.rs: ABI). */
#define RVS_ABI 3
#define RVS_N_COUNTERS 16
/* Header bytes copied for parsing (a power of two). */
#define RVS_HB 512
/* Largest packet an upcall carries whole; a larger one (a GSO super-frame)
 * carries its first RVS_UPCALL_HEAD bytes, enough to translate it. */
#define RVS_UPCALL_MAX 16384
#define RVS_UPCALL_HEAD 256
/* skb->mark of a frame sent to an underlay's egress for Geneve encapsulation
 * with encap id (mark & RVS_MARK_ID). */
#define RVS_MARK_MAGIC 0x7e500000u
#define RVS_MARK_MASK 0xfff00000u
#define RVS_MARK_ID 0x000fffffu

/* Action types. */
enum {
	RVS_A_OUTPUT = 1,      /* u32a: datapath port */
	RVS_A_PUSH_VLAN = 2,   /* u16a: TCI, data[0..2]: TPID (big-endian) */
	RVS_A_POP_VLAN = 3,
	RVS_A_SET_ETH_SRC = 4, /* data[0..6] */
	RVS_A_SET_ETH_DST = 5, /* data[0..6] */
	RVS_A_SET_IPV4 = 6,    /* flags: 1 src, 2 dst, 4 tos, 8 ttl; data: src[4] dst[4] tos ttl */
	RVS_A_SET_L4 = 7,      /* flags: 1 src, 2 dst; data: src[2] dst[2] */
	RVS_A_SET_IPV6 = 8,    /* flags: 1 src, 2 dst, 4 label, 8 tclass, 16 hlimit;
				  data: src[16] dst[16] label[4] tclass hlimit */
	RVS_A_SET_ARP = 9,     /* flags: 1 op, 2 sha, 4 spa, 8 tha, 16 tpa;
				  data: op[2] sha[6] spa[4] tha[6] tpa[4] */
	RVS_A_TUNNEL_OUTPUT = 10, /* u32a: underlay datapath port, u16a: encap id */
	RVS_A_TUNNEL_POP = 11, /* u32a: the port the inner frame enters on */
	RVS_A_DROP = 12,       /* u16a: rvs's drop reason (slot of the drops map) */
	RVS_A_CT = 13,         /* u16a: zone; the flow's ct lookup (done before any action
				  runs, RVS_FF_CT) gives the packet its ct_* fields */
	RVS_A_CT_CLEAR = 14,
	RVS_A_RECIRC = 15,     /* u32a: recirculation id; u16a: the drop reason past
				  RVS_MAX_DEPTH. Always the last action. */
};

/* Flow flags. */
#define RVS_FF_CT 1 /* has an RVS_A_CT in zone ct_zone: look the connection up first */

/* Action flags (beyond the per-type field bits above, in `flags2`). */
#define RVS_AF_LAST 1 /* the last output: redirect rather than clone */

/* Counters (per CPU) of what the kernel did; drops that a flow's actions
 * ask for are counted by rvs's drop reason in the `drops` map instead. */
enum {
	RVS_C_HIT = 0,         /* packets a kernel flow handled */
	RVS_C_MISS = 1,        /* packets upcalled: no kernel flow */
	RVS_C_UNPARSED = 2,    /* upcalled: the kernel parser leaves them to userspace */
	RVS_C_UPCALL_LOST = 3, /* upcall failed (no daemon listening, ring full): dropped */
	RVS_C_UPCALL_BIG = 4,  /* upcalled with headers only (too big to carry) */
	RVS_C_PASSED = 5,      /* not for the switch (an underlay's other traffic) */
	RVS_C_NO_PORT = 6,     /* output to a port with no device: dropped */
	RVS_C_ACTION_FAILED = 7, /* a helper failed while executing: dropped */
	RVS_C_ENCAP = 8,       /* frames encapsulated at an underlay's egress */
	RVS_C_ENCAP_FAILED = 9, /* ... that could not be: dropped */
	RVS_C_DECAP = 10,
	RVS_C_INNER_MISS = 11, /* tunnel pop known, inner flow not: outer upcalled */
	RVS_C_CT_UPCALL = 12,  /* a flow with ct(): the connection is not one the kernel
				  answers for (new, closing, not TCP/UDP): upcalled */
	RVS_C_RECIRC = 13,     /* recirculations run in the kernel */
};

/* Slots of the drops map (rvs's DropReason values). */
#define RVS_N_DROPS 64

/* Port flags. */
#define RVS_PF_VTEP 1     /* only frames for vtep_ip enter the switch */
#define RVS_PF_INGRESS 2  /* output means "receive on it" (an internal tap) */

/* Config flags. */
#define RVS_CFG_TEST 1    /* record outputs as events instead of sending (tests) */

struct rvs_flow_key {
	__u64 w[RVS_KEY_WORDS];
};

/* Key of the flow table: which mask, and the key under it. */
struct rvs_lookup_key {
	__u32 mask;
	__u32 pad;
	__u64 w[RVS_KEY_WORDS];
};

struct rvs_mask {
	__u64 w[RVS_KEY_WORDS];
};

struct rvs_action {
	__u8 type;
	__u8 flags;
	__u16 u16a;
	__u32 u32a;
	__u8 flags2;
	__u8 pad[7];
	__u8 data[40];
};

struct rvs_flow {
	__u64 gen;
	__u32 id;        /* index into flow_stats */
	__u16 n_actions;
	__u16 flags;     /* RVS_FF_* */
	__u16 ct_zone;
	__u16 pad[3];
	/* The mask again: a hit is checked against it, so a mask slot reused
	 * while a packet was looking it up can never match it to a flow of
	 * another mask. */
	__u64 mask[RVS_KEY_WORDS];
	struct rvs_action act[RVS_MAX_ACTIONS];
};

struct rvs_flow_stats {
	__u64 packets;
	__u64 bytes;
	__u64 used_ns;
};

struct rvs_port {
	__u32 dp_port;
	__u32 flags;
	__u32 vtep_ip; /* network order */
	__u32 pad;
};

struct rvs_out {
	__u32 ifindex;
	__u32 flags;
};

struct rvs_encap {
	__u16 len;       /* bytes of hdr: outer Ethernet .. Geneve options */
	__u16 base_csum; /* IPv4 header checksum with total length 0 */
	__u32 pad;
	__u8 hdr[RVS_ENCAP_MAX];
};

struct rvs_optmap {
	__u16 class;
	__u8 type;
	__u8 slot1; /* slot + 1; 0: unused */
};

struct rvs_config {
	__u64 gen;
	__u32 mask_used; /* bitmap of the mask slots in use */
	__u32 flags;
	struct rvs_optmap opt[RVS_OPT_SLOTS];
	/* RVS_ABI of the daemon that wrote it: a restarted daemon adopts only
	 * maps of its own ABI (the programs never read it). */
	__u32 abi;
	__u32 pad;
};

/*
 * A connection the kernel answers for: one entry per direction, keyed by
 * the zone and that direction's addresses and ports as the flow key holds
 * them. Only userspace's tracker writes them, with its own answer for that
 * direction (`state`: +est, +est+rpl, or +new for the first direction of a
 * UDP flow not answered yet, whose reply direction then has no entry), for
 * any TCP segment without SYN, FIN or RST (those go up, and the tracker
 * takes the connection back) or UDP datagram. An entry unused for
 * timeout_ns is a miss: the tracker decides.
 */
struct rvs_ct_key {
	__u16 zone;
	__u8 proto;
	__u8 v6;
	__u32 ports;  /* tp_src | tp_dst << 16 */
	__u64 a[4];   /* IPv4: the key's nw word; IPv6: src hi, lo, dst hi, lo */
};

struct rvs_ct {
	__u8 state;   /* ct_state bits but +trk */
	__u8 pad[3];
	__u32 mark;
	__u32 label;  /* ct_label bits 0..31 (what the flow key holds) */
	__u32 pad2;
	__u64 used_ns;
	__u64 timeout_ns;
};

/* An event: an upcall (miss) or, in test mode, an output. The packet's
 * first `cap` bytes follow. */
enum {
	RVS_EV_MISS = 1,
	RVS_EV_UNPARSED = 2,
	RVS_EV_INNER_MISS = 3,
	RVS_EV_OUTPUT = 4,
	RVS_EV_FAILED = 5,
	/* A recirculated packet's miss: `meta` holds its key words 0..7
	 * (in_port, recirc_id, tunnel, ct_*) and `depth` its recirculations. */
	RVS_EV_PASS = 6,
};

struct rvs_event {
	__u32 type;
	__u32 in_port;
	__u32 ifindex;
	__u32 len;        /* skb->len */
	__u32 cap;        /* packet bytes following */
	__u32 mark;
	__u16 vlan_tci;
	__u16 vlan_proto; /* network order */
	__u8 vlan_present;
	__u8 pad1;
	__u16 pad2;
	__u32 port;       /* output: datapath port */
	__u32 encap;      /* output: encap id + 1 (0: none) */
	__u32 depth;      /* RVS_EV_PASS */
	__u32 pad3;
	__u64 meta[8];    /* RVS_EV_PASS */
};

_Static_assert(sizeof(struct rvs_flow_key) == 144, "rvs_flow_key");
_Static_assert(sizeof(struct rvs_lookup_key) == 152, "rvs_lookup_key");
_Static_assert(sizeof(struct rvs_action) == 56, "rvs_action");
_Static_assert(sizeof(struct rvs_flow) == 1064, "rvs_flow");
_Static_assert(sizeof(struct rvs_ct_key) == 40, "rvs_ct_key");
_Static_assert(sizeof(struct rvs_ct) == 32, "rvs_ct");
_Static_assert(sizeof(struct rvs_flow_stats) == 24, "rvs_flow_stats");
_Static_assert(sizeof(struct rvs_port) == 16, "rvs_port");
_Static_assert(sizeof(struct rvs_out) == 8, "rvs_out");
_Static_assert(sizeof(struct rvs_encap) == 136, "rvs_encap");
_Static_assert(sizeof(struct rvs_config) == 56, "rvs_config");
_Static_assert(sizeof(struct rvs_event) == 112, "rvs_event");

#endif
