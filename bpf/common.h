/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared by the kmesh-ipsec tc programs. The TypeScript side (nodeplugin/bpf/layout.ts) mirrors
 * every number here; test/bpf checks the two agree against the compiled objects.
 */
#ifndef KMESH_IPSEC_COMMON_H
#define KMESH_IPSEC_COMMON_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* core/marks.ts ENCRYPT_MARK (Kmesh value). */
#define KMI_ENCRYPT_MARK 0xe0

/* Family tags stored as LPM values, see kmi_pod.c for why the value is not a constant 1. */
#define KMI_FAMILY_V4 4
#define KMI_FAMILY_V6 6

/* Room for counters added later without changing the map's shape (which would force a re-pin). */
#define KMI_COUNTER_SLOTS 16

/*
 * Every program returns TC_ACT_UNSPEC rather than TC_ACT_OK: in a clsact chain TC_ACT_OK ends
 * classification, which would silently skip filters other software (a CNI's policy program)
 * installed after ours. TC_ACT_UNSPEC continues the chain and, at its end, passes the packet,
 * so to the stack it behaves exactly like TC_ACT_OK.
 */
#define KMI_PASS TC_ACT_UNSPEC

#define ETH_P_8021Q_ 0x8100
#define ETH_P_8021AD_ 0x88a8
#define IPPROTO_ESP_ 50

/* Same bytes as Kmesh's km_nodeinfo key: prefixlen in host order, address in network order. */
struct kmi_lpm_key {
	__u32 prefixlen;
	__u8 addr[16];
};

/* Where the IP header starts and which family it is; l3_off == 0 means "not IP". */
struct kmi_l3 {
	__u32 l3_off;
	__u16 proto; /* ETH_P_IP / ETH_P_IPV6, host order */
};

static __always_inline void kmi_count(void *map, __u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(map, &idx);

	/* Per-CPU slot, and tc runs with migration disabled: a plain add cannot lose updates. */
	if (c)
		*c += 1;
}

/*
 * Reads through bpf_skb_load_bytes rather than direct packet access so that headers sitting in
 * a non-linear part of the skb (possible after GRO on some drivers) are still seen.
 * One 802.1Q/802.1ad tag is skipped when it is still in the frame; when the driver stripped it
 * into skb->vlan_tci the frame already carries the inner ethertype.
 * Returns 0 on success, -1 when the frame is too short to hold what its ethertype promises.
 */
static __always_inline int kmi_parse_l2(struct __sk_buff *skb, struct kmi_l3 *out)
{
	__be16 proto;
	__u32 off = ETH_HLEN;

	out->l3_off = 0;
	out->proto = 0;
	if (bpf_skb_load_bytes(skb, offsetof(struct ethhdr, h_proto), &proto, sizeof(proto)) < 0)
		return -1;
	if (proto == bpf_htons(ETH_P_8021Q_) || proto == bpf_htons(ETH_P_8021AD_)) {
		/* TCI (2 bytes) then the encapsulated ethertype. */
		if (bpf_skb_load_bytes(skb, ETH_HLEN + 2, &proto, sizeof(proto)) < 0)
			return -1;
		off += 4;
	}
	if (proto == bpf_htons(ETH_P_IP) || proto == bpf_htons(ETH_P_IPV6)) {
		out->l3_off = off;
		out->proto = bpf_ntohs(proto);
	}
	return 0;
}

#endif
