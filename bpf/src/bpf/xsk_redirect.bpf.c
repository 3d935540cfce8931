// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * rvs XDP program: hand every frame of an rx queue to the AF_XDP socket bound
 * to that queue; when no socket is bound (the daemon is not running, or died),
 * pass the frame to the kernel stack, so the host stays reachable.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

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

SEC("xdp")
int xsk_redirect(struct xdp_md *ctx)
{
	__u32 queue = ctx->rx_queue_index;
	long action = bpf_redirect_map(&xsks, queue, XDP_PASS);
	__u32 key = action == XDP_REDIRECT ? 0 : 1;
	__u64 *count = bpf_map_lookup_elem(&stats, &key);

	if (count)
		(*count)++;
	return action;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
