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
#define RVS_ENCAP_MAX 128
#define RVS_OPT_SLOTS 8
/* The version of this ABI: bump it with any change to a map's layout or
 * meaning (abi.rs: ABI). */
#define RVS_ABI 2
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
};

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
	__u16 flags;
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

/* An event: an upcall (miss) or, in test mode, an output. The packet's
 * first `cap` bytes follow. */
enum {
	RVS_EV_MISS = 1,
	RVS_EV_UNPARSED = 2,
	RVS_EV_INNER_MISS = 3,
	RVS_EV_OUTPUT = 4,
	RVS_EV_FAILED = 5,
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
	__u32 pad3;
};

_Static_assert(sizeof(struct rvs_flow_key) == 144, "rvs_flow_key");
_Static_assert(sizeof(struct rvs_lookup_key) == 152, "rvs_lookup_key");
_Static_assert(sizeof(struct rvs_action) == 56, "rvs_action");
_Static_assert(sizeof(struct rvs_flow) == 1056, "rvs_flow");
_Static_assert(sizeof(struct rvs_flow_stats) == 24, "rvs_flow_stats");
_Static_assert(sizeof(struct rvs_port) == 16, "rvs_port");
_Static_assert(sizeof(struct rvs_out) == 8, "rvs_out");
_Static_assert(sizeof(struct rvs_encap) == 136, "rvs_encap");
_Static_assert(sizeof(struct rvs_config) == 56, "rvs_config");
_Static_assert(sizeof(struct rvs_event) == 44, "rvs_event");

#endif
