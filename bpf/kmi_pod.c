// SPDX-License-Identifier: Apache-2.0
/*
 * Pod program: tc ingress of the host-side veth of a managed pod, i.e. packets the pod sends.
 * A destination inside a peer node's pod CIDR gets skb->mark = ENCRYPT_MARK so the xfrm "out"
 * policies (which match that mark) encrypt it. Nothing else about the packet changes.
 */
#include "common.h"

/* Counter slots; nodeplugin/bpf/layout.ts POD_COUNTERS lists the same indexes. */
enum {
	POD_IP = 0,        /* IPv4/IPv6 packets looked up */
	POD_MARKED = 1,    /* destination in a peer CIDR: mark set */
	POD_MISSED = 2,    /* no peer CIDR (or wrong-family entry, see below): left alone */
	POD_NON_IP = 3,    /* ARP, LLDP, ...: left alone */
	POD_MALFORMED = 4, /* too short for its own headers: left alone */
};

/*
 * Peer pod CIDRs. Key format is Kmesh's km_nodeinfo key. The value is the entry's family
 * (4 or 6) where Kmesh stores a constant 1: IPv4 and IPv6 share the trie without a family
 * discriminator in the key, so an IPv6 entry of length <= 32 (e.g. 2001:db8::/32) would also
 * match IPv4 destinations with the same leading bytes, and an IPv4 entry would match IPv6
 * destinations in the reserved 0::/1 range. Checking the family on a hit turns such aliasing
 * into a miss instead of a wrong mark.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 8192);
	__type(key, struct kmi_lpm_key);
	__type(value, __u32);
} kmi_peer_cidrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KMI_COUNTER_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} kmi_pod_stats SEC(".maps");

SEC("tc")
int kmipsec_pod(struct __sk_buff *skb)
{
	struct kmi_lpm_key key = {};
	struct kmi_l3 l3;
	__u32 family, *val;
	__u8 first;

	if (kmi_parse_l2(skb, &l3) < 0) {
		kmi_count(&kmi_pod_stats, POD_MALFORMED);
		return KMI_PASS;
	}
	if (l3.l3_off == 0) {
		kmi_count(&kmi_pod_stats, POD_NON_IP);
		return KMI_PASS;
	}
	if (bpf_skb_load_bytes(skb, l3.l3_off, &first, 1) < 0)
		goto malformed;

	if (l3.proto == ETH_P_IP) {
		if ((first >> 4) != 4)
			goto malformed;
		key.prefixlen = 32;
		family = KMI_FAMILY_V4;
		if (bpf_skb_load_bytes(skb, l3.l3_off + offsetof(struct iphdr, daddr), key.addr, 4) < 0)
			goto malformed;
	} else {
		if ((first >> 4) != 6)
			goto malformed;
		key.prefixlen = 128;
		family = KMI_FAMILY_V6;
		if (bpf_skb_load_bytes(skb, l3.l3_off + offsetof(struct ipv6hdr, daddr), key.addr, 16) < 0)
			goto malformed;
	}

	kmi_count(&kmi_pod_stats, POD_IP);
	val = bpf_map_lookup_elem(&kmi_peer_cidrs, &key);
	if (val && *val == family) {
		skb->mark = KMI_ENCRYPT_MARK;
		kmi_count(&kmi_pod_stats, POD_MARKED);
	} else {
		kmi_count(&kmi_pod_stats, POD_MISSED);
	}
	return KMI_PASS;

malformed:
	kmi_count(&kmi_pod_stats, POD_MALFORMED);
	return KMI_PASS;
}

/* Matches the project licence; neither program calls a GPL-only helper. */
char _license[] SEC("license") = "Apache-2.0";
