// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * rvs XDP program: hand every frame of an rx queue to the AF_XDP socket bound
 * to that queue; when no socket is bound (the daemon is not running, or died),
 * pass the frame to the kernel stack, so the host stays reachable.
 *
 * With a steering address set (map `steer`, entry 0, network byte order), only
 * frames for that address go to userspace: ARP whose target is it and IPv4
 * whose destination is it (untagged). Everything else goes to the kernel. This
 * is how a node's underlay interface serves rvs's tunnel endpoint and keeps the
 * kernel's own address (management traffic) working whatever rvs does.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* rx queue index -> AF_XDP socket. */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

/* Per-CPU counters: [0] redirected to a socket, [1] passed to the kernel. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* [0]: IPv4 address to steer (network order); 0 steers every frame. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} steer SEC(".maps");

/* ARP for IPv4 over Ethernet: fixed header, then sha, spa, tha, tpa. */
struct arp_eth_ipv4 {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 oper;
	__u8 sha[6];
	__u8 spa[4];
	__u8 tha[6];
	__u8 tpa[4];
} __attribute__((packed));

/* Is this frame for `addr`? Bounds are checked before every read (verifier). */
static __always_inline int for_address(struct xdp_md *ctx, __u32 addr)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end)
		return 0;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end)
			return 0;
		return ip->daddr == addr;
	}
	if (eth->h_proto == bpf_htons(ETH_P_ARP)) {
		struct arp_eth_ipv4 *arp = (void *)(eth + 1);
		__u32 tpa;

		if ((void *)(arp + 1) > end)
			return 0;
		__builtin_memcpy(&tpa, arp->tpa, 4);
		return tpa == addr;
	}
	return 0;
}

SEC("xdp")
int xsk_redirect(struct xdp_md *ctx)
{
	__u32 queue = ctx->rx_queue_index;
	__u32 zero = 0;
	__u32 *addr = bpf_map_lookup_elem(&steer, &zero);
	long action = XDP_PASS;

	if (!addr || *addr == 0 || for_address(ctx, *addr))
		action = bpf_redirect_map(&xsks, queue, XDP_PASS);
	__u32 key = action == XDP_REDIRECT ? 0 : 1;
	__u64 *count = bpf_map_lookup_elem(&stats, &key);

	if (count)
		(*count)++;
	return action;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
