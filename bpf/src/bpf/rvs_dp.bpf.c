// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * rvs's eBPF datapath: TC programs that run the megaflows rvs's userspace
 * translation installs, in the kernel, on skbs (so GSO super-frames and
 * partial checksums pass through whole), and hand every miss to userspace.
 *
 *   rvs_ingress  (TC ingress of a port's device,  a packet enters the switch
 *                 TC egress of an internal tap)   (from the wire or the host)
 *   rvs_encap    (TC egress of an underlay)       Geneve encapsulation of frames
 *                                                 sent there with an encap mark
 *   rvs_extract  (tests only)                     the key, into map test_key
 *
 * The packet path: copy up to RVS_HB header bytes into per-CPU scratch, parse
 * them into the flow key (the same words as userspace's FlowKey; anything
 * this parser does not fully understand, malformed or not, goes to userspace,
 * which decides and counts), probe each mask in use (key & mask -> flow
 * table), check the flow's generation and mask, and run its actions. A miss is
 * sent to userspace through a perf event array with the packet and dropped
 * here; userspace translates it, installs the flow and sends that packet
 * itself. A flow that pops a tunnel is followed, in the same run, by the inner
 * frame's flow: both known, the frame is decapsulated and the inner actions
 * run; the inner one unknown, the outer packet goes to userspace.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "rvs_dp.h"

/* Older uapi headers lack these (values from the kernel's uapi). */
#ifndef BPF_F_ADJ_ROOM_ENCAP_L2_ETH
#define BPF_F_ADJ_ROOM_ENCAP_L2_ETH (1ULL << 6)
#endif

#define HB_MASK (RVS_HB - 1)
#define MC_SIZE 256

char _license[] SEC("license") = "Dual BSD/GPL";

/* Entries allocated as flows are installed (only userspace writes them):
 * preallocating RVS_MAX_FLOWS of about 1 KiB each would pin about 80 MiB. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RVS_MAX_FLOWS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct rvs_lookup_key);
	__type(value, struct rvs_flow);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RVS_MAX_MASKS);
	__type(key, __u32);
	__type(value, struct rvs_mask);
} masks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RVS_MAX_FLOWS);
	__type(key, __u32);
	__type(value, struct rvs_flow_stats);
} flow_stats SEC(".maps");

/* ifindex -> the switch port it is. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RVS_MAX_PORTS);
	__type(key, __u32);
	__type(value, struct rvs_port);
} ports SEC(".maps");

/* datapath port -> where output goes. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RVS_MAX_PORTS);
	__type(key, __u32);
	__type(value, struct rvs_out);
} outs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RVS_MAX_ENCAPS);
	__type(key, __u32);
	__type(value, struct rvs_encap);
} encaps SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rvs_config);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RVS_N_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RVS_N_DROPS);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

/* Connections the kernel answers ct() for (rvs_dp.h: struct rvs_ct); only
 * userspace's tracker writes them. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RVS_MAX_CTS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct rvs_ct_key);
	__type(value, struct rvs_ct);
} cts SEC(".maps");

/* Per-CPU scratch: header bytes, keys, the lookup key (too big for the stack). */
struct scratch {
	__u8 hb[RVS_HB];
	__u32 hb_len;   /* valid bytes in hb */
	__u32 pad;
	struct rvs_flow_key key;
	struct rvs_flow_key ikey;
	struct rvs_lookup_key lk;
	__u64 tun[7];   /* an inner key's tunnel words, across extraction */
	__u8 ieth[16];  /* the inner Ethernet header, across decapsulation */
	/* Mask cache (OVS's kernel datapath has one): by a hash of the key,
	 * the mask slot + 1 that last found its flow, probed first. Only a
	 * hint: any flow that matches with the current generation is a right
	 * answer, so a wrong or stale entry costs a scan, never a wrong hit. */
	__u8 mc[MC_SIZE];
	/* The next pass of a recirculating packet: its key words 0..7
	 * (in_port, recirc_id, tunnel, ct_*) and recirculations so far. Set
	 * right before the tail call into rvs_recirc, which reads it first
	 * (nothing else runs on this CPU in between). */
	__u64 pass[8];
	__u32 depth;
	__u32 pad2;
	/* The connection lookup of the flow being run (RVS_FF_CT): its ct_*
	 * bits as key words 3 and 7 hold them. */
	struct rvs_ct_key ctk;
	__u64 ct_w3;
	__u64 ct_w7;
	/* An event being sent (a program that tail-calls has 256 bytes of
	 * stack for all its frames together). */
	struct rvs_event ev;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_map SEC(".maps");

/* rvs_encap's header under construction: it runs nested in the datapath
 * program's clone_redirect, so it must not share that program's scratch. */
struct encap_scratch {
	__u8 b[256];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct encap_scratch);
} encap_scratch SEC(".maps");

/* Tests: the key rvs_extract produced, and its verdict. */
struct test_key {
	__u32 rc;
	__u32 pad;
	struct rvs_flow_key key;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct test_key);
} test_key SEC(".maps");

static __always_inline void count(__u32 c, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &c);

	if (v)
		*v += n;
}

/* Bounded reads of the header copy. The mask keeps the verifier sure of the
 * bounds; callers check `off + n <= hb_len` first (a byte past it is stale). */
static __always_inline __u64 rd8(const struct scratch *s, __u32 off)
{
	return s->hb[off & HB_MASK];
}

static __always_inline __u64 rd16(const struct scratch *s, __u32 off)
{
	return (rd8(s, off) << 8) | rd8(s, off + 1);
}

static __always_inline __u64 rd32(const struct scratch *s, __u32 off)
{
	return (rd16(s, off) << 16) | rd16(s, off + 2);
}

static __always_inline __u64 rd48(const struct scratch *s, __u32 off)
{
	return (rd16(s, off) << 32) | rd32(s, off + 2);
}

static __always_inline __u64 rd64(const struct scratch *s, __u32 off)
{
	return (rd32(s, off) << 32) | rd32(s, off + 4);
}

/* Key word places, as dataplane/src/flow/field.rs has them. */
#define W_PORT 0        /* in_port 0..32, recirc_id 32..64 */
#define W_TUN_ID 1
#define W_TUN_IP 2      /* src 0..32, dst 32..64 */
#define W_TUN_META 3    /* flags 0..16, tos 16..24, ttl 24..32, md_present 32..40 */
#define W_TUN_MD 4      /* slot i: word 4 + i/2, shift (i&1)*32 */
#define W_ETH_DST 8     /* eth_dst 0..48, eth_type 48..64 */
#define W_ETH_SRC 9
#define W_L3 10         /* vlan_tci 0..16, vlan_tci2 16..32, proto 32..40, tos 40..48,
			   ttl 48..56, frag 56..64 */
#define W_NW 11         /* nw_src 0..32, nw_dst 32..64 */
#define W_IP6_SRC 12    /* ARP: sha in 12 */
#define W_IP6_DST 14    /* ARP: tha in 14 */
#define W_L4 16         /* tp_src 0..16, tp_dst 16..32, tcp_flags 32..48, arp_op 48..64 */
#define W_META 17       /* pkt_mark 0..32, ipv6_label 32..52 */

#define VLAN_CFI 0x1000
#define FRAG_ANY 1
#define FRAG_LATER 2
#define TUN_FLAG_KEY 1
#define TUN_FLAG_CSUM 4
#define GENEVE_PORT 6081

/* Verdicts of extraction. */
#define X_OK 0
#define X_UPCALL 1

static __always_inline int is_vlan(__u64 ty)
{
	return ty == 0x8100 || ty == 0x88a8 || ty == 0x9100;
}

/* L4 of IPv4/IPv6: `off` is where it starts, `len` its length (to the end
 * of the IP packet), `fragment` a first fragment (UDP length is then the
 * datagram's, not this packet's). */
static __always_inline int extract_l4(struct scratch *s, struct rvs_flow_key *k, __u64 proto,
				      __u32 off, __u32 len, int v6, int fragment)
{
	__u64 a, b;

	if (proto == 6) {
		if (len < 20 || off + 20 > s->hb_len)
			return X_UPCALL;
		a = rd8(s, off + 12);
		if ((a >> 4) < 5 || (a >> 4) * 4 > len)
			return X_UPCALL;
		k->w[W_L4] = rd16(s, off) | (rd16(s, off + 2) << 16) |
			     ((((a & 0x0f) << 8) | rd8(s, off + 13)) << 32);
	} else if (proto == 17) {
		if (len < 8 || off + 8 > s->hb_len)
			return X_UPCALL;
		b = rd16(s, off + 4);
		if (b < 8 || (!fragment && b != len))
			return X_UPCALL;
		k->w[W_L4] = rd16(s, off) | (rd16(s, off + 2) << 16);
	} else if ((proto == 1 && !v6) || (proto == 58 && v6)) {
		if (len < 8 || off + 8 > s->hb_len)
			return X_UPCALL;
		k->w[W_L4] = rd8(s, off) | (rd8(s, off + 1) << 16);
	}
	return X_OK;
}

/*
 * Fill the key (s->key, or s->ikey for an `inner` frame) from the frame at
 * `base` of length `flen`, zeroing it first. The skb's accelerated VLAN tag
 * is the outer tag of the frame the kernel received, not of an inner one.
 * Any frame userspace would refuse, and a few it would take that this parser
 * leaves alone (IPv6 extension headers, headers beyond RVS_HB), give
 * X_UPCALL: userspace decides and counts.
 */
static __noinline int extract(struct __sk_buff *skb, struct scratch *s, __u32 base, __u32 flen,
			      __u32 inner)
{
	struct rvs_flow_key *k = inner ? &s->ikey : &s->key;
	__u32 off, tags = 0, end, l3, hw_vlan = !inner;
	__u64 ty, a, frag = 0, proto, src;
	int i;

#pragma clang loop unroll(full)
	for (i = 0; i < RVS_KEY_WORDS; i++)
		k->w[i] = 0;
	if (base > RVS_HB || flen < 14 || base + 14 > s->hb_len)
		return X_UPCALL;
	src = rd48(s, base + 6);
	if ((src >> 40) & 1 || src == 0)
		return X_UPCALL;
	k->w[W_ETH_SRC] = src;
	k->w[W_ETH_DST] = rd48(s, base);
	ty = rd16(s, base + 12);
	off = base + 14;
	if (hw_vlan && skb->vlan_present) {
		k->w[W_L3] = (skb->vlan_tci & 0xffff) | VLAN_CFI;
		tags = 1;
	}
#pragma clang loop unroll(full)
	for (i = 0; i < 3; i++) {
		if (!is_vlan(ty))
			break;
		if (tags == 2)
			return X_UPCALL;
		if (off + 4 > s->hb_len || off + 4 > base + flen)
			return X_UPCALL;
		a = rd16(s, off) | VLAN_CFI;
		k->w[W_L3] |= tags == 0 ? a : a << 16;
		ty = rd16(s, off + 2);
		off += 4;
		tags++;
	}
	if (is_vlan(ty))
		return X_UPCALL;
	if (ty < 0x0600)
		ty = 0x05ff;
	k->w[W_ETH_DST] |= ty << 48;
	l3 = off;
	end = base + flen;

	if (ty == 0x0800) {
		__u32 hlen, total;

		if (l3 + 20 > s->hb_len || l3 + 20 > end)
			return X_UPCALL;
		a = rd8(s, l3);
		hlen = (a & 0x0f) * 4;
		if ((a >> 4) != 4 || hlen < 20 || l3 + hlen > end || l3 + hlen > s->hb_len)
			return X_UPCALL;
		proto = rd8(s, l3 + 9);
		a = rd16(s, l3 + 6);
		if (a & 0x1fff)
			frag = FRAG_ANY | FRAG_LATER;
		else if (a & 0x2000)
			frag = FRAG_ANY;
		k->w[W_L3] |= (proto << 32) | (rd8(s, l3 + 1) << 40) | (rd8(s, l3 + 8) << 48) |
			      (frag << 56);
		k->w[W_NW] = rd32(s, l3 + 12) | (rd32(s, l3 + 16) << 32);
		if (frag & FRAG_LATER)
			return X_OK;
		total = rd16(s, l3 + 2);
		if (total < hlen || l3 + total > end)
			return X_UPCALL;
		return extract_l4(s, k, proto, l3 + hlen, total - hlen, 0, frag != 0);
	}
	if (ty == 0x86dd) {
		__u32 plen;

		if (l3 + 40 > s->hb_len || l3 + 40 > end)
			return X_UPCALL;
		a = rd32(s, l3);
		if ((a >> 28) != 6)
			return X_UPCALL;
		plen = rd16(s, l3 + 4);
		if (plen == 0 || l3 + 40 + plen > end)
			return X_UPCALL;
		proto = rd8(s, l3 + 6);
		/* Extension headers (and anything not plainly L4) are userspace's. */
		if (proto != 6 && proto != 17 && proto != 58)
			return X_UPCALL;
		k->w[W_L3] |= (proto << 32) | (((a >> 20) & 0xff) << 40) | (rd8(s, l3 + 7) << 48);
		k->w[W_META] = (a & 0xfffff) << 32;
		k->w[W_IP6_SRC] = rd64(s, l3 + 8);
		k->w[W_IP6_SRC + 1] = rd64(s, l3 + 16);
		k->w[W_IP6_DST] = rd64(s, l3 + 24);
		k->w[W_IP6_DST + 1] = rd64(s, l3 + 32);
		return extract_l4(s, k, proto, l3 + 40, plen, 1, 0);
	}
	if (ty == 0x0806) {
		__u64 op;

		if (l3 + 28 > s->hb_len || l3 + 28 > end)
			return X_UPCALL;
		if (rd16(s, l3) != 1 || rd16(s, l3 + 2) != 0x0800 || rd8(s, l3 + 4) != 6 ||
		    rd8(s, l3 + 5) != 4)
			return X_UPCALL;
		op = rd16(s, l3 + 6);
		k->w[W_L4] = op << 48;
		k->w[W_L3] |= (op & 0xff) << 32;
		k->w[W_IP6_SRC] = rd48(s, l3 + 8);
		k->w[W_NW] = rd32(s, l3 + 14) | (rd32(s, l3 + 24) << 32);
		k->w[W_IP6_DST] = rd48(s, l3 + 18);
	}
	return X_OK;
}

/* Copy the first bytes of the packet into scratch. */
static __always_inline int load_headers(struct __sk_buff *skb, struct scratch *s)
{
	__u32 n = skb->len;

	if (n < 14)
		return -1;
	if (n > RVS_HB)
		n = RVS_HB;
	/* n is 14..RVS_HB; said so the verifier sees 1..RVS_HB */
	n = ((n - 1) & HB_MASK) + 1;
	if (bpf_skb_load_bytes(skb, 0, s->hb, n) < 0)
		return -1;
	s->hb_len = n;
	return 0;
}

/* The flow for key & mask slot i, if it is one of this generation. */
static __noinline struct rvs_flow *probe(struct scratch *s, struct rvs_flow_key *k,
					 struct rvs_config *cfg, __u32 i)
{
	struct rvs_mask *m;
	struct rvs_flow *f;
	__u64 diff = 0;
	__u32 w;

	i &= RVS_MAX_MASKS - 1;
	m = bpf_map_lookup_elem(&masks, &i);
	if (!m)
		return NULL;
	s->lk.mask = i;
	s->lk.pad = 0;
#pragma clang loop unroll(full)
	for (w = 0; w < RVS_KEY_WORDS; w++)
		s->lk.w[w] = k->w[w] & m->w[w];
	f = bpf_map_lookup_elem(&flows, &s->lk);
	if (!f || f->gen != cfg->gen)
		return NULL;
	/* (the flow's own mask: a reused slot cannot pass an old flow off) */
#pragma clang loop unroll(full)
	for (w = 0; w < RVS_KEY_WORDS; w++)
		diff |= (k->w[w] & f->mask[w]) ^ s->lk.w[w];
	return diff ? NULL : f;
}

/* A hash of the whole key: the mask cache's index, and the flow hash a
 * Geneve encapsulation takes its UDP source port from. */
static __always_inline __u32 key_hash(struct rvs_flow_key *k)
{
	__u64 h = 0, x;
	__u32 w;

	/* (rotated words folded with xor, then one multiply: no chain of
	 * 18 dependent multiplies on every packet's path) */
#pragma clang loop unroll(full)
	for (w = 0; w < RVS_KEY_WORDS; w++) {
		x = k->w[w];
		h ^= (x << ((w * 7) & 63)) | (x >> ((64 - (w * 7)) & 63));
	}
	h *= 0x9e3779b97f4a7c15ULL;
	return h >> 32;
}

/*
 * Megaflow lookup: the cached mask first, then every mask in use. A packet
 * spaced out from the last one finds everything cold, so each mask probed
 * costs it cache misses (hundreds of ns): the cache makes it one probe.
 */
static __always_inline struct rvs_flow *lookup(struct scratch *s, struct rvs_flow_key *k,
					       struct rvs_config *cfg)
{
	__u32 used = cfg->mask_used, h = 0, c = 0, i;
	struct rvs_flow *f;

	/* (one mask in use: nothing to choose, no hash to pay for) */
	if (used & (used - 1)) {
		h = key_hash(k) & (MC_SIZE - 1);
		c = s->mc[h];
		if (c && (used & (1u << ((c - 1) & (RVS_MAX_MASKS - 1))))) {
			f = probe(s, k, cfg, c - 1);
			if (f)
				return f;
		}
	}
	for (i = 0; i < RVS_MAX_MASKS; i++) {
		if (!(used & (1u << i)) || i + 1 == c)
			continue;
		f = probe(s, k, cfg, i);
		if (f) {
			s->mc[h] = i + 1;
			return f;
		}
	}
	return NULL;
}

static __always_inline void credit(struct rvs_flow *f, __u64 bytes)
{
	__u32 id = f->id;
	struct rvs_flow_stats *st = bpf_map_lookup_elem(&flow_stats, &id);

	if (st) {
		st->packets++;
		st->bytes += bytes;
		st->used_ns = bpf_ktime_get_ns();
	}
}

/* Send the packet (its first `cap` bytes) to userspace as event `type`
 * (RVS_EV_PASS: with the pass state in `s`). */
static __always_inline int event(struct __sk_buff *skb, __u32 type, __u32 in_port, __u32 port,
				 __u32 encap, __u32 cap, const struct scratch *s)
{
	__u32 w, zero = 0;
	struct scratch *sc = bpf_map_lookup_elem(&scratch_map, &zero);
	struct rvs_event *e;

	if (!sc)
		return -1;
	e = &sc->ev;
	__builtin_memset(e, 0, sizeof(*e));
	if (s) {
#pragma clang loop unroll(full)
		for (w = 0; w < 8; w++)
			e->meta[w] = s->pass[w];
		e->depth = s->depth;
	}
	e->type = type;
	e->in_port = in_port;
	e->ifindex = skb->ifindex;
	e->len = skb->len;
	e->mark = skb->mark;
	e->vlan_present = skb->vlan_present;
	e->vlan_tci = skb->vlan_tci;
	e->vlan_proto = skb->vlan_proto;
	e->port = port;
	e->encap = encap;
	if (cap > skb->len)
		cap = skb->len;
	cap &= 0xffff;
	e->cap = cap;
	return bpf_perf_event_output(skb, &events, BPF_F_CURRENT_CPU | ((__u64)cap << 32), e,
				     sizeof(*e));
}

static __always_inline int upcall_with(struct __sk_buff *skb, __u32 type, __u32 in_port,
				       __u32 counter, const struct scratch *s)
{
	__u32 cap = skb->len;

	if (cap > RVS_UPCALL_MAX) {
		cap = RVS_UPCALL_HEAD;
		count(RVS_C_UPCALL_BIG, 1);
	}
	count(counter, 1);
	if (event(skb, type, in_port, 0, 0, cap, s) < 0)
		count(RVS_C_UPCALL_LOST, 1);
	return TC_ACT_SHOT;
}

/* A miss (or a frame the kernel leaves to userspace): to userspace, dropped here. */
static __always_inline int upcall(struct __sk_buff *skb, __u32 type, __u32 in_port)
{
	return upcall_with(skb, type, in_port,
			   type == RVS_EV_MISS ? RVS_C_MISS
			   : type == RVS_EV_INNER_MISS ? RVS_C_INNER_MISS
						   : RVS_C_UNPARSED,
			   NULL);
}

/* A recirculated packet userspace must take on from here: it goes up with
 * its pass state (s->pass), to be looked up again there. */
static __always_inline int upcall_pass(struct __sk_buff *skb, struct scratch *s, __u32 counter)
{
	return upcall_with(skb, RVS_EV_PASS, (__u32)s->pass[W_PORT], counter, s);
}

/* Offset of L3 after the Ethernet header and VLAN tags in the packet data;
 * at most two tags in all (an accelerated one counts), as userspace. */
static __always_inline int l3_offset(struct __sk_buff *skb, __u16 *ethertype)
{
	__u16 ty;
	int off = 12, i, tags = skb->vlan_present ? 1 : 0;

#pragma clang loop unroll(full)
	for (i = 0; i < 3; i++) {
		if (bpf_skb_load_bytes(skb, off, &ty, 2) < 0)
			return -1;
		ty = bpf_ntohs(ty);
		if (!is_vlan(ty)) {
			*ethertype = ty;
			return off + 2;
		}
		if (++tags > 2)
			return -1;
		off += 4;
	}
	return -1;
}

/* L4 of an IPv4/IPv6 packet at l3 (IPv6: only right after the fixed header),
 * and its protocol; -1 when there is none to rewrite (a later fragment). */
static __always_inline int l4_offset(struct __sk_buff *skb, int l3, __u16 ty, __u8 *proto)
{
	__u8 b[2];

	if (ty == 0x0800) {
		__u16 frag;

		if (bpf_skb_load_bytes(skb, l3, b, 1) < 0 || bpf_skb_load_bytes(skb, l3 + 9, proto, 1) < 0 ||
		    bpf_skb_load_bytes(skb, l3 + 6, &frag, 2) < 0)
			return -1;
		if (bpf_ntohs(frag) & 0x1fff)
			return -1;
		return l3 + (b[0] & 0x0f) * 4;
	}
	if (bpf_skb_load_bytes(skb, l3 + 6, proto, 1) < 0)
		return -1;
	return l3 + 40;
}

/* Where a TCP/UDP/ICMPv6 checksum is in its header; -1: none. */
static __always_inline int csum_at(__u8 proto)
{
	return proto == 6 ? 16 : proto == 17 ? 6 : proto == 58 ? 2 : -1;
}

static __always_inline int set_ipv4(struct __sk_buff *skb, struct rvs_action *a)
{
	__u16 ty;
	__u8 proto;
	int l3 = l3_offset(skb, &ty), l4, ca;

	if (l3 < 0 || ty != 0x0800)
		return -1;
	l4 = l4_offset(skb, l3, ty, &proto);
	ca = csum_at(proto);
	if (proto == 58)
		ca = -1;
#pragma clang loop unroll(full)
	for (int i = 0; i < 2; i++) {
		__u32 old, new;

		if (!(a->flags & (1 << i)))
			continue;
		if (bpf_skb_load_bytes(skb, l3 + 12 + 4 * i, &old, 4) < 0)
			return -1;
		__builtin_memcpy(&new, &a->data[4 * i], 4);
		if (l4 >= 0 && ca >= 0 &&
		    bpf_l4_csum_replace(skb, l4 + ca, old, new,
					BPF_F_PSEUDO_HDR | 4 | (proto == 17 ? BPF_F_MARK_MANGLED_0 : 0)) < 0)
			return -1;
		if (bpf_l3_csum_replace(skb, l3 + 10, old, new, 4) < 0 ||
		    bpf_skb_store_bytes(skb, l3 + 12 + 4 * i, &new, 4, 0) < 0)
			return -1;
	}
	if (a->flags & 4) {
		__u16 old, new;
		__u8 tos = a->data[8];

		if (bpf_skb_load_bytes(skb, l3, &old, 2) < 0)
			return -1;
		new = old;
		((__u8 *)&new)[1] = tos;
		if (bpf_l3_csum_replace(skb, l3 + 10, old, new, 2) < 0 ||
		    bpf_skb_store_bytes(skb, l3, &new, 2, 0) < 0)
			return -1;
	}
	if (a->flags & 8) {
		__u16 old, new;
		__u8 ttl = a->data[9];

		if (bpf_skb_load_bytes(skb, l3 + 8, &old, 2) < 0)
			return -1;
		new = old;
		((__u8 *)&new)[0] = ttl;
		if (bpf_l3_csum_replace(skb, l3 + 10, old, new, 2) < 0 ||
		    bpf_skb_store_bytes(skb, l3 + 8, &new, 2, 0) < 0)
			return -1;
	}
	return 0;
}

static __always_inline int set_l4(struct __sk_buff *skb, struct rvs_action *a)
{
	__u16 ty;
	__u8 proto;
	int l3 = l3_offset(skb, &ty), l4, ca;

	if (l3 < 0 || (ty != 0x0800 && ty != 0x86dd))
		return -1;
	l4 = l4_offset(skb, l3, ty, &proto);
	if (l4 < 0 || (proto != 6 && proto != 17))
		return -1;
	ca = csum_at(proto);
#pragma clang loop unroll(full)
	for (int i = 0; i < 2; i++) {
		__u16 old, new;

		if (!(a->flags & (1 << i)))
			continue;
		if (bpf_skb_load_bytes(skb, l4 + 2 * i, &old, 2) < 0)
			return -1;
		__builtin_memcpy(&new, &a->data[2 * i], 2);
		if (bpf_l4_csum_replace(skb, l4 + ca, old, new,
					2 | (proto == 17 ? BPF_F_MARK_MANGLED_0 : 0)) < 0 ||
		    bpf_skb_store_bytes(skb, l4 + 2 * i, &new, 2, 0) < 0)
			return -1;
	}
	return 0;
}

static __always_inline int set_ipv6(struct __sk_buff *skb, struct rvs_action *a)
{
	__u16 ty;
	__u8 proto, h[4];
	int l3 = l3_offset(skb, &ty), l4, ca;

	if (l3 < 0 || ty != 0x86dd)
		return -1;
	l4 = l4_offset(skb, l3, ty, &proto);
	ca = csum_at(proto);
	if ((a->flags & 3) && ca < 0)
		return -1;
#pragma clang loop unroll(full)
	for (int i = 0; i < 2; i++) {
		if (!(a->flags & (1 << i)))
			continue;
#pragma clang loop unroll(full)
		for (int j = 0; j < 4; j++) {
			__u32 old, new;
			int at = l3 + 8 + 16 * i + 4 * j;

			if (bpf_skb_load_bytes(skb, at, &old, 4) < 0)
				return -1;
			__builtin_memcpy(&new, &a->data[16 * i + 4 * j], 4);
			if (bpf_l4_csum_replace(skb, l4 + ca, old, new,
						BPF_F_PSEUDO_HDR | 4 |
							(proto == 17 ? BPF_F_MARK_MANGLED_0 : 0)) < 0 ||
			    bpf_skb_store_bytes(skb, at, &new, 4, 0) < 0)
				return -1;
		}
	}
	if (!(a->flags & (4 | 8 | 16)))
		return 0;
	if (bpf_skb_load_bytes(skb, l3, h, 4) < 0)
		return -1;
	if (a->flags & 8) {
		__u8 tc = a->data[36];

		h[0] = 0x60 | (tc >> 4);
		h[1] = (tc << 4) | (h[1] & 0x0f);
	}
	if (a->flags & 4) {
		h[1] = (h[1] & 0xf0) | (a->data[33] & 0x0f);
		h[2] = a->data[34];
		h[3] = a->data[35];
	}
	if (bpf_skb_store_bytes(skb, l3, h, 4, 0) < 0)
		return -1;
	if ((a->flags & 16) && bpf_skb_store_bytes(skb, l3 + 7, &a->data[37], 1, 0) < 0)
		return -1;
	return 0;
}

static __always_inline int set_arp(struct __sk_buff *skb, struct rvs_action *a)
{
	__u16 ty;
	int l3 = l3_offset(skb, &ty);

	if (l3 < 0 || ty != 0x0806)
		return -1;
	if ((a->flags & 1) && bpf_skb_store_bytes(skb, l3 + 6, &a->data[0], 2, 0) < 0)
		return -1;
	if ((a->flags & 2) && bpf_skb_store_bytes(skb, l3 + 8, &a->data[2], 6, 0) < 0)
		return -1;
	if ((a->flags & 4) && bpf_skb_store_bytes(skb, l3 + 14, &a->data[8], 4, 0) < 0)
		return -1;
	if ((a->flags & 8) && bpf_skb_store_bytes(skb, l3 + 18, &a->data[12], 6, 0) < 0)
		return -1;
	if ((a->flags & 16) && bpf_skb_store_bytes(skb, l3 + 24, &a->data[18], 4, 0) < 0)
		return -1;
	return 0;
}

/* Send to datapath port `port` (or, for a tunnel, to its underlay's egress
 * with the encap mark). `last`: the packet itself goes; else a clone. */
static __always_inline int output(struct __sk_buff *skb, struct rvs_config *cfg, __u32 port,
				  __u32 encap1, int last, __u32 in_port)
{
	struct rvs_out *o = bpf_map_lookup_elem(&outs, &port);
	__u32 mark = skb->mark, flags;
	long r;

	if (!o || !o->ifindex) {
		count(RVS_C_NO_PORT, 1);
		return last ? TC_ACT_SHOT : TC_ACT_OK;
	}
	if (cfg->flags & RVS_CFG_TEST) {
		event(skb, RVS_EV_OUTPUT, in_port, port, encap1, skb->len, NULL);
		return last ? TC_ACT_SHOT : TC_ACT_OK;
	}
	flags = (o->flags & RVS_PF_INGRESS) ? BPF_F_INGRESS : 0;
	/* A frame for an underlay's encapsulation carries the encap id in its
	 * mark; any other leaves with none (a mark that happened to look like
	 * one must not be taken for one). */
	skb->mark = encap1 ? (RVS_MARK_MAGIC | (encap1 - 1)) : 0;
	if (last)
		return bpf_redirect(o->ifindex, flags);
	r = bpf_clone_redirect(skb, o->ifindex, flags);
	skb->mark = mark;
	if (r < 0)
		count(RVS_C_ACTION_FAILED, 1);
	return TC_ACT_OK;
}

#define CT_TRK 0x20
#define TCP_FIN_SYN_RST_ACK 0x17
#define TCP_ACK 0x10
/* Key word 3 below the ct_state and ct_zone bits (the tunnel's). */
#define W3_TUN_BITS 0xffffffffffULL

/*
 * The connection of the packet with key `k` in `zone`, if the kernel may
 * answer for it: its ct_* bits go to s->ct_w3 / s->ct_w7. 0: userspace's
 * tracker must see this packet (no entry, an entry unused past its
 * timeout, a TCP segment with SYN, FIN or RST or without ACK, a fragment,
 * anything but TCP and UDP).
 */
static __noinline int ct_lookup(struct scratch *s, struct rvs_flow_key *k, __u32 zone)
{
	__u64 l3 = k->w[W_L3], l4 = k->w[W_L4], ty = k->w[W_ETH_DST] >> 48, now;
	__u32 proto = (l3 >> 32) & 0xff;
	struct rvs_ct *e;

	if ((l3 >> 56) & FRAG_ANY)
		return 0;
	if (proto == 6) {
		if (((l4 >> 32) & TCP_FIN_SYN_RST_ACK) != TCP_ACK)
			return 0;
	} else if (proto != 17) {
		return 0;
	}
	s->ctk.zone = zone;
	s->ctk.proto = proto;
	s->ctk.ports = l4 & 0xffffffff;
	if (ty == 0x0800) {
		s->ctk.v6 = 0;
		s->ctk.a[0] = k->w[W_NW];
		s->ctk.a[1] = 0;
		s->ctk.a[2] = 0;
		s->ctk.a[3] = 0;
	} else if (ty == 0x86dd) {
		s->ctk.v6 = 1;
		s->ctk.a[0] = k->w[W_IP6_SRC];
		s->ctk.a[1] = k->w[W_IP6_SRC + 1];
		s->ctk.a[2] = k->w[W_IP6_DST];
		s->ctk.a[3] = k->w[W_IP6_DST + 1];
	} else {
		return 0;
	}
	e = bpf_map_lookup_elem(&cts, &s->ctk);
	if (!e)
		return 0;
	now = bpf_ktime_get_ns();
	if (now - e->used_ns >= e->timeout_ns)
		return 0;
	e->used_ns = now;
	s->ct_w3 = ((__u64)(CT_TRK | e->state) << 40) | ((__u64)zone << 48);
	s->ct_w7 = e->mark | ((__u64)e->label << 32);
	return 1;
}

/* May the kernel run flow `f` on the packet with key `k`? Only if its ct()
 * (if any) has a connection the kernel answers for: decided before any
 * action runs, so a packet that must go up goes up untouched. */
static __always_inline int ct_ready(struct scratch *s, struct rvs_flow *f, struct rvs_flow_key *k)
{
	if (!(f->flags & RVS_FF_CT))
		return 1;
	return ct_lookup(s, k, f->ct_zone);
}

/* execute()'s verdict for "recirculate": s->pass holds the next pass. */
#define RVS_RECIRC 0x100

/* Run a flow's actions. Returns the TC verdict, or RVS_RECIRC. The caller
 * set s->pass to the key's words 0..7. */
static __noinline int execute(struct __sk_buff *skb, struct rvs_flow *f, struct rvs_config *cfg,
			      __u32 in_port, struct rvs_flow_key *k)
{
	__u32 n = f->n_actions, i, zero = 0;
	int verdict = TC_ACT_SHOT;
	struct scratch *s = bpf_map_lookup_elem(&scratch_map, &zero);

	if (n == 0) {
		/* (userspace encodes "no actions" as an explicit drop) */
		count(RVS_C_ACTION_FAILED, 1);
		return TC_ACT_SHOT;
	}
	for (i = 0; i < RVS_MAX_ACTIONS; i++) {
		struct rvs_action *a;
		int r = 0;

		if (i >= n)
			break;
		a = &f->act[i];
		switch (a->type) {
		case RVS_A_OUTPUT:
			verdict = output(skb, cfg, a->u32a, 0, a->flags2 & RVS_AF_LAST, in_port);
			break;
		case RVS_A_TUNNEL_OUTPUT:
			/* The encapsulation's UDP source port comes from the skb's
			 * hash; where the sender left none, the key's saves
			 * rvs_encap the kernel's flow dissector. */
			if (!skb->hash)
				bpf_set_hash(skb, key_hash(k) | 1);
			verdict = output(skb, cfg, a->u32a, (__u32)a->u16a + 1, a->flags2 & RVS_AF_LAST,
					 in_port);
			break;
		case RVS_A_PUSH_VLAN: {
			__u16 tpid;

			__builtin_memcpy(&tpid, a->data, 2);
			r = bpf_skb_vlan_push(skb, tpid, a->u16a);
			break;
		}
		case RVS_A_POP_VLAN: {
			__u16 ty;

			/* As userspace: popping from an untagged frame is an error
			 * (the helper would do nothing and say nothing). */
			if (!skb->vlan_present &&
			    (skb->len < 18 || bpf_skb_load_bytes(skb, 12, &ty, 2) < 0 ||
			     !is_vlan(bpf_ntohs(ty)))) {
				r = -1;
				break;
			}
			r = bpf_skb_vlan_pop(skb);
			break;
		}
		case RVS_A_SET_ETH_SRC:
			r = bpf_skb_store_bytes(skb, 6, a->data, 6, 0);
			break;
		case RVS_A_SET_ETH_DST:
			r = bpf_skb_store_bytes(skb, 0, a->data, 6, 0);
			break;
		case RVS_A_SET_IPV4:
			r = set_ipv4(skb, a);
			break;
		case RVS_A_SET_L4:
			r = set_l4(skb, a);
			break;
		case RVS_A_SET_IPV6:
			r = set_ipv6(skb, a);
			break;
		case RVS_A_SET_ARP:
			r = set_arp(skb, a);
			break;
		case RVS_A_DROP: {
			__u32 reason = a->u16a & (RVS_N_DROPS - 1);
			__u64 *d = bpf_map_lookup_elem(&drops, &reason);

			if (d)
				*d += 1;
			return TC_ACT_SHOT;
		}
		case RVS_A_CT:
			if (!s) {
				r = -1;
				break;
			}
			s->pass[3] = (s->pass[3] & W3_TUN_BITS) | s->ct_w3;
			s->pass[7] = s->ct_w7;
			break;
		case RVS_A_CT_CLEAR:
			if (!s) {
				r = -1;
				break;
			}
			s->pass[3] &= W3_TUN_BITS;
			s->pass[7] = 0;
			break;
		case RVS_A_RECIRC: {
			if (!s) {
				r = -1;
				break;
			}
			if (s->depth >= RVS_MAX_DEPTH) {
				__u32 reason = a->u16a & (RVS_N_DROPS - 1);
				__u64 *d = bpf_map_lookup_elem(&drops, &reason);

				if (d)
					*d += 1;
				return TC_ACT_SHOT;
			}
			s->pass[W_PORT] = (s->pass[W_PORT] & 0xffffffff) | ((__u64)a->u32a << 32);
			s->depth++;
			count(RVS_C_RECIRC, 1);
			return RVS_RECIRC;
		}
		default:
			count(RVS_C_ACTION_FAILED, 1);
			return TC_ACT_SHOT;
		}
		if (r < 0) {
			count(RVS_C_ACTION_FAILED, 1);
			return TC_ACT_SHOT;
		}
	}
	return verdict;
}

/*
 * A tunnel pop: validate the outer IPv4/UDP/Geneve headers as userspace's
 * decap does, fill the inner key's tunnel fields, and return where the inner
 * frame starts; 0: leave the packet to userspace (anything unusual,
 * including OAM and unknown critical options, which userspace drops and
 * counts).
 */
static __always_inline __u32 geneve_inner(struct __sk_buff *skb, struct scratch *s,
					  struct rvs_config *cfg, struct rvs_flow_key *ik)
{
	__u32 l3 = 14, hlen, total, udp, ulen, g, optlen, o, i, md_present = 0;
	__u64 a, flags = TUN_FLAG_KEY;

	if (skb->vlan_present || rd16(s, 12) != 0x0800 || l3 + 20 > s->hb_len)
		return 0;
	a = rd8(s, l3);
	hlen = (a & 0x0f) * 4;
	if ((a >> 4) != 4 || hlen < 20 || rd8(s, l3 + 9) != 17 || (rd16(s, l3 + 6) & 0x3fff))
		return 0;
	total = rd16(s, l3 + 2);
	udp = l3 + hlen;
	if (total != skb->len - l3 || total < hlen + 16 || udp + 16 > s->hb_len)
		return 0;
	ulen = rd16(s, udp + 4);
	if (rd16(s, udp + 2) != GENEVE_PORT || ulen != total - hlen)
		return 0;
	if (rd16(s, udp + 6))
		flags |= TUN_FLAG_CSUM;
	g = udp + 8;
	a = rd8(s, g);
	optlen = (a & 0x3f) * 4;
	/* version 0, O bit clear, Ethernet inside, options within the packet */
	if ((a >> 6) || (rd8(s, g + 1) & 0x80) || rd16(s, g + 2) != 0x6558 || 8 + optlen > ulen - 8)
		return 0;
	if (g + 8 + optlen + 14 > s->hb_len)
		return 0;
	o = g + 8;
	for (i = 0; i < 32; i++) {
		__u32 dlen, j;
		__u64 class, type;

		if (o >= g + 8 + optlen)
			break;
		if (o + 4 > g + 8 + optlen)
			return 0;
		class = rd16(s, o);
		type = rd8(s, o + 2);
		dlen = (rd8(s, o + 3) & 0x1f) * 4;
		if (o + 4 + dlen > g + 8 + optlen)
			return 0;
		for (j = 0; j < RVS_OPT_SLOTS; j++) {
			struct rvs_optmap *m = &cfg->opt[j];

			if (m->slot1 && m->class == class && m->type == type && dlen == 4)
				break;
		}
		if (j < RVS_OPT_SLOTS) {
			__u32 slot = (cfg->opt[j & (RVS_OPT_SLOTS - 1)].slot1 - 1) & 7;

			ik->w[W_TUN_MD + slot / 2] |= rd32(s, o + 4) << ((slot & 1) * 32);
			md_present |= 1 << slot;
		} else if (type & 0x80) {
			return 0;
		}
		o += 4 + dlen;
	}
	if (o != g + 8 + optlen)
		return 0;
	ik->w[W_TUN_ID] = rd32(s, g + 4) >> 8;
	ik->w[W_TUN_IP] = rd32(s, l3 + 12) | (rd32(s, l3 + 16) << 32);
	ik->w[W_TUN_META] = flags | (rd8(s, l3 + 1) << 16) | (rd8(s, l3 + 8) << 24) |
			    ((__u64)md_present << 32);
	return g + 8 + optlen;
}

int rvs_recirc(struct __sk_buff *skb);

/* Where a recirculation continues: rvs_recirc (filled by libbpf at load). */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__array(values, int(void *));
} recirc_progs SEC(".maps") = {
	.values = { [0] = (void *)&rvs_recirc },
};

/* Run flow `f`, found for key `k` (its ct() ready), on the packet; a
 * recirculation continues in rvs_recirc, by a tail call (a loop here would
 * have the verifier walk the actions once per pass). s->depth is set. */
static __always_inline int run(struct __sk_buff *skb, struct scratch *s, struct rvs_config *cfg,
			       struct rvs_flow *f, struct rvs_flow_key *k, __u32 in_port)
{
	__u32 w;
	int v;

#pragma clang loop unroll(full)
	for (w = 0; w < 8; w++)
		s->pass[w] = k->w[w];
	v = execute(skb, f, cfg, in_port, k);
	if (v != RVS_RECIRC)
		return v;
	bpf_tail_call(skb, &recirc_progs, 0);
	count(RVS_C_ACTION_FAILED, 1);
	return TC_ACT_SHOT;
}

/* The switch: a packet that arrived on datapath port `in_port`. */
static __always_inline int datapath(struct __sk_buff *skb, __u32 in_port)
{
	__u32 zero = 0, inner, vport, w;
	struct rvs_config *cfg = bpf_map_lookup_elem(&config, &zero);
	struct scratch *s = bpf_map_lookup_elem(&scratch_map, &zero);
	struct rvs_flow *f, *fi;
	__u64 len = skb->len;

	if (!cfg || !s)
		return TC_ACT_OK;
	if (load_headers(skb, s) < 0 || extract(skb, s, 0, skb->len, 0) != X_OK)
		return upcall(skb, RVS_EV_UNPARSED, in_port);
	s->key.w[W_PORT] = in_port;
	s->key.w[W_META] |= skb->mark;
	f = lookup(s, &s->key, cfg);
	if (!f)
		return upcall(skb, RVS_EV_MISS, in_port);
	if (f->n_actions != 1 || f->act[0].type != RVS_A_TUNNEL_POP) {
		if (!ct_ready(s, f, &s->key))
			return upcall_with(skb, RVS_EV_MISS, in_port, RVS_C_CT_UPCALL, NULL);
		credit(f, len);
		count(RVS_C_HIT, 1);
		s->depth = 0;
		return run(skb, s, cfg, f, &s->key, in_port);
	}

	/* Tunnel pop: the inner frame's flow must be known too. */
	vport = f->act[0].u32a;
#pragma clang loop unroll(full)
	for (w = 0; w < RVS_KEY_WORDS; w++)
		s->ikey.w[w] = 0;
	inner = geneve_inner(skb, s, cfg, &s->ikey);
	if (!inner || inner > RVS_HB)
		return upcall(skb, RVS_EV_UNPARSED, in_port);
	/* A decapsulated skb keeps the outer skb->protocol (IPv4), and the
	 * kernel's VLAN helpers go by it: a tagged inner frame is userspace's. */
	if (inner + 14 > s->hb_len || is_vlan(rd16(s, inner + 12)))
		return upcall(skb, RVS_EV_UNPARSED, in_port);
	/* Extraction zeroes the key: keep the tunnel words (1..7) it fills. */
#pragma clang loop unroll(full)
	for (w = 0; w < 7; w++)
		s->tun[w] = s->ikey.w[W_TUN_ID + w];
	if (extract(skb, s, inner, skb->len - inner, 1) != X_OK)
		return upcall(skb, RVS_EV_UNPARSED, in_port);
#pragma clang loop unroll(full)
	for (w = 0; w < 7; w++)
		s->ikey.w[W_TUN_ID + w] = s->tun[w];
	s->ikey.w[W_PORT] = vport;
	s->ikey.w[W_META] |= skb->mark;
	fi = lookup(s, &s->ikey, cfg);
	if (!fi || (fi->n_actions == 1 && fi->act[0].type == RVS_A_TUNNEL_POP))
		return upcall(skb, RVS_EV_INNER_MISS, in_port);
	if (!ct_ready(s, fi, &s->ikey))
		return upcall_with(skb, RVS_EV_INNER_MISS, in_port, RVS_C_CT_UPCALL, NULL);
	/* the inner Ethernet header (adjust_room keeps the outer one) */
#pragma clang loop unroll(full)
	for (w = 0; w < 14; w++)
		s->ieth[w] = rd8(s, inner + w);
	/* MAC mode removes room after the first 14 bytes: the outer IP, UDP and
	 * Geneve headers and the 14 bytes the inner Ethernet header will take
	 * at the front, where it is written next. */
	if (bpf_skb_adjust_room(skb, -(__s32)inner, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_FIXED_GSO) < 0)
		return upcall(skb, RVS_EV_UNPARSED, in_port);
	if (bpf_skb_store_bytes(skb, 0, s->ieth, 14, 0) < 0) {
		count(RVS_C_ACTION_FAILED, 1);
		return TC_ACT_SHOT;
	}
	count(RVS_C_DECAP, 1);
	credit(f, len);
	credit(fi, skb->len);
	count(RVS_C_HIT, 1);
	/* (userspace counts the pop as a recirculation) */
	s->depth = 1;
	return run(skb, s, cfg, fi, &s->ikey, vport);
}

/*
 * A recirculation (after ct(table=...)): the packet as the last pass left
 * it, looked up again with that pass's in_port, recirc_id, tunnel and ct_*
 * (s->pass). Anything the kernel cannot take on goes up with that state.
 */
SEC("tc")
int rvs_recirc(struct __sk_buff *skb)
{
	__u32 zero = 0, w, in_port;
	struct rvs_config *cfg = bpf_map_lookup_elem(&config, &zero);
	struct scratch *s = bpf_map_lookup_elem(&scratch_map, &zero);
	struct rvs_flow *f;
	__u64 len = skb->len;

	if (!cfg || !s)
		return TC_ACT_SHOT;
	in_port = (__u32)s->pass[W_PORT];
	if (load_headers(skb, s) < 0 || extract(skb, s, 0, skb->len, 0) != X_OK)
		return upcall_pass(skb, s, RVS_C_UNPARSED);
#pragma clang loop unroll(full)
	for (w = 0; w < 8; w++)
		s->key.w[w] = s->pass[w];
	s->key.w[W_META] |= skb->mark;
	f = lookup(s, &s->key, cfg);
	/* (a pop of a recirculated packet is userspace's) */
	if (!f || (f->n_actions == 1 && f->act[0].type == RVS_A_TUNNEL_POP))
		return upcall_pass(skb, s, RVS_C_MISS);
	if (!ct_ready(s, f, &s->key))
		return upcall_pass(skb, s, RVS_C_CT_UPCALL);
	credit(f, len);
	return run(skb, s, cfg, f, &s->key, in_port);
}

/* Also at the egress of internal taps (what the host sends enters the
 * switch there): one program, so the verifier's work (most of a daemon's
 * start) is done once. An internal port never has RVS_PF_VTEP. */
SEC("tc")
int rvs_ingress(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;
	struct rvs_port *p = bpf_map_lookup_elem(&ports, &ifindex);

	if (!p)
		return TC_ACT_OK;
	if (p->flags & RVS_PF_VTEP) {
		/* An underlay: only frames for the tunnel endpoint enter the
		 * switch (ARP for it, IPv4 to it, untagged); the rest is the
		 * host's, whatever rvs does. */
		__u16 ty;
		__u32 addr = 0;

		if (skb->vlan_present || bpf_skb_load_bytes(skb, 12, &ty, 2) < 0)
			goto pass;
		if (ty == bpf_htons(0x0800))
			bpf_skb_load_bytes(skb, 14 + 16, &addr, 4);
		else if (ty == bpf_htons(0x0806))
			bpf_skb_load_bytes(skb, 14 + 24, &addr, 4);
		if (!addr || addr != p->vtep_ip)
			goto pass;
	}
	return datapath(skb, p->dp_port);
pass:
	count(RVS_C_PASSED, 1);
	return TC_ACT_OK;
}

static __always_inline __u16 csum_fold_add(__u16 base, __u16 add)
{
	__u32 sum = (__u16)~base + (__u32)add;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

/*
 * Geneve encapsulation at an underlay's egress, of a frame the datapath sent
 * here with the encap mark: outer Ethernet/IPv4/UDP/Geneve from the encap
 * map (UDP source port from the skb's flow hash), room made with
 * bpf_skb_adjust_room's encap flags so a GSO super-frame stays one (segmented,
 * if at all, by the device that needs it). An accelerated VLAN tag belongs to
 * the inner frame and goes inside. Frames without the mark pass untouched.
 */
SEC("tc")
int rvs_encap(struct __sk_buff *skb)
{
	__u32 mark = skb->mark, id, hlen, l2 = 14, ip_len, hash, zero = 0, n;
	struct rvs_encap *e;
	struct encap_scratch *s;
	__u8 ieth[18];
	__u16 v;
	long r;
	int i;

	if ((mark & RVS_MARK_MASK) != RVS_MARK_MAGIC)
		return TC_ACT_OK;
	skb->mark = 0;
	id = mark & RVS_MARK_ID;
	e = bpf_map_lookup_elem(&encaps, &id);
	s = bpf_map_lookup_elem(&encap_scratch, &zero);
	if (!e || !s)
		goto fail;
	hlen = e->len;
	if (hlen < 50 || hlen > RVS_ENCAP_MAX)
		goto fail;
	if (bpf_skb_load_bytes(skb, 0, ieth, 14) < 0)
		goto fail;
	if (skb->vlan_present) {
		/* dst, src, the tag, then the original type */
		__u16 tpid = skb->vlan_proto, tci = bpf_htons(skb->vlan_tci);

		ieth[16] = ieth[12];
		ieth[17] = ieth[13];
		__builtin_memcpy(&ieth[12], &tpid, 2);
		__builtin_memcpy(&ieth[14], &tci, 2);
		if (bpf_skb_vlan_pop(skb) < 0)
			goto fail;
		l2 = 18;
	}
	hash = bpf_get_hash_recalc(skb);
	if (skb->protocol == bpf_htons(0x0800) || skb->protocol == bpf_htons(0x86dd))
		/* Room after the MAC header, with the tunnel's GSO type set. */
		r = bpf_skb_adjust_room(skb, hlen + l2 - 14, BPF_ADJ_ROOM_MAC,
					BPF_F_ADJ_ROOM_FIXED_GSO | BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 |
						BPF_F_ADJ_ROOM_ENCAP_L4_UDP | BPF_F_ADJ_ROOM_ENCAP_L2_ETH |
						(l2 == 18 ? BPF_F_ADJ_ROOM_ENCAP_L2(18) : BPF_F_ADJ_ROOM_ENCAP_L2(14)));
	else
		/* ARP and other non-IP frames (adjust_room refuses them; they
		 * are never GSO): room at the front. */
		r = bpf_skb_change_head(skb, hlen + l2 - 14, 0);
	if (r < 0)
		goto fail;
	/* The header: template, lengths, checksum, source port, then the inner
	 * Ethernet header after it. */
#pragma clang loop unroll(full)
	for (i = 0; i < RVS_ENCAP_MAX; i++)
		s->b[i] = e->hdr[i];
	ip_len = skb->len - 14;
	v = bpf_htons(ip_len);
	__builtin_memcpy(&s->b[16], &v, 2);
	v = bpf_htons(csum_fold_add(e->base_csum, ip_len));
	__builtin_memcpy(&s->b[24], &v, 2);
	v = bpf_htons(0xc000 | (hash & 0x3fff));
	__builtin_memcpy(&s->b[34], &v, 2);
	v = bpf_htons(ip_len - 20);
	__builtin_memcpy(&s->b[38], &v, 2);
#pragma clang loop unroll(full)
	for (i = 0; i < 18; i++)
		s->b[(hlen + i) & 0xff] = ieth[i];
	n = hlen + l2;
	if (n < 64 || n > RVS_ENCAP_MAX + 18)
		goto fail;
	if (bpf_skb_store_bytes(skb, 0, s->b, n, 0) < 0)
		goto fail;
	count(RVS_C_ENCAP, 1);
	return TC_ACT_OK;
fail:
	count(RVS_C_ENCAP_FAILED, 1);
	return TC_ACT_SHOT;
}

/* Tests: extract the key of the test packet into test_key (BPF_PROG_TEST_RUN). */
SEC("tc")
int rvs_extract(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch_map, &zero);
	struct test_key *t = bpf_map_lookup_elem(&test_key, &zero);

	if (!s || !t)
		return TC_ACT_SHOT;
	if (load_headers(skb, s) < 0) {
		t->rc = X_UPCALL;
		return TC_ACT_OK;
	}
	t->rc = extract(skb, s, 0, skb->len, 0);
	__builtin_memcpy(&t->key, &s->key, sizeof(t->key));
	return TC_ACT_OK;
}
