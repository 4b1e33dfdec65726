// SPDX-License-Identifier: Apache-2.0
/*
 * Node program: tc ingress of the node's interfaces. Every inbound xfrm state carries the mark
 * (peerId << 16) | 0xd0 of the peer it belongs to, so that all peers may use the same SPI
 * towards us. xfrm input only finds the state if the ESP packet already carries that mark;
 * this program sets it from the outer source address. It touches nothing but ESP from known
 * peers: the decrypted inner packet re-enters tc ingress carrying the state's output mark
 * (0xd0) and must keep it, and any other mark belongs to someone else.
 */
#include "common.h"

/* Counter slots; nodeplugin/bpf/layout.ts NODE_COUNTERS lists the same indexes. */
enum {
	NODE_ESP_SEEN = 0,     /* ESP packets (IPv4 or IPv6) */
	NODE_ESP_MARKED = 1,   /* ESP from a known peer: inbound mark set */
	NODE_ESP_UNKNOWN = 2,  /* ESP from an address not in kmi_peer_marks: left alone */
	NODE_NON_ESP = 3,      /* everything else, IP or not: left alone */
	NODE_MALFORMED = 4,    /* too short for its own headers: left alone */
};

/*
 * Peer node address -> inbound state mark. One 16-byte key for both families: IPv6 as is,
 * IPv4 as the IPv4-mapped IPv6 address ::ffff:a.b.c.d (RFC 4291 2.5.5.2). IPv6 packets with
 * such a source are never looked up (see below), so the two families cannot collide.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, struct in6_addr);
	__type(value, __u32);
} kmi_peer_marks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KMI_COUNTER_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} kmi_node_stats SEC(".maps");

/*
 * Extension headers that may sit between the IPv6 header and ESP. A bounded walk: packets with
 * more than this many are not treated as ESP (they would be left unmarked, i.e. dropped by xfrm
 * input for lack of a state, never mis-delivered).
 */
#define KMI_MAX_V6_EXT 4

static __always_inline int v6_is_esp(struct __sk_buff *skb, __u32 off)
{
	__u8 nexthdr;
	__u8 ext[2];
	int i;

	if (bpf_skb_load_bytes(skb, off + offsetof(struct ipv6hdr, nexthdr), &nexthdr, 1) < 0)
		return -1;
	off += sizeof(struct ipv6hdr);
#pragma unroll
	for (i = 0; i < KMI_MAX_V6_EXT; i++) {
		if (nexthdr == IPPROTO_ESP_)
			return 1;
		if (nexthdr != IPPROTO_HOPOPTS && nexthdr != IPPROTO_ROUTING &&
		    nexthdr != IPPROTO_FRAGMENT && nexthdr != IPPROTO_DSTOPTS)
			return 0;
		if (bpf_skb_load_bytes(skb, off, ext, sizeof(ext)) < 0)
			return -1;
		/* The fragment header's second byte is reserved, not a length: it is always 8 bytes. */
		off += nexthdr == IPPROTO_FRAGMENT ? 8 : ((__u32)ext[1] + 1) * 8;
		nexthdr = ext[0];
	}
	return nexthdr == IPPROTO_ESP_;
}

SEC("tc")
int kmipsec_node(struct __sk_buff *skb)
{
	struct in6_addr src = {};
	struct kmi_l3 l3;
	__u32 *mark;
	__u8 first, proto;
	int esp;

	if (kmi_parse_l2(skb, &l3) < 0)
		goto malformed;
	if (l3.l3_off == 0) {
		kmi_count(&kmi_node_stats, NODE_NON_ESP);
		return KMI_PASS;
	}
	if (bpf_skb_load_bytes(skb, l3.l3_off, &first, 1) < 0)
		goto malformed;

	if (l3.proto == ETH_P_IP) {
		if ((first >> 4) != 4)
			goto malformed;
		if (bpf_skb_load_bytes(skb, l3.l3_off + offsetof(struct iphdr, protocol), &proto, 1) < 0)
			goto malformed;
		if (proto != IPPROTO_ESP_) {
			kmi_count(&kmi_node_stats, NODE_NON_ESP);
			return KMI_PASS;
		}
		src.s6_addr[10] = 0xff;
		src.s6_addr[11] = 0xff;
		if (bpf_skb_load_bytes(skb, l3.l3_off + offsetof(struct iphdr, saddr), &src.s6_addr[12], 4) < 0)
			goto malformed;
	} else {
		if ((first >> 4) != 6)
			goto malformed;
		esp = v6_is_esp(skb, l3.l3_off);
		if (esp < 0)
			goto malformed;
		if (!esp) {
			kmi_count(&kmi_node_stats, NODE_NON_ESP);
			return KMI_PASS;
		}
		if (bpf_skb_load_bytes(skb, l3.l3_off + offsetof(struct ipv6hdr, saddr), &src, 16) < 0)
			goto malformed;
		/*
		 * An IPv4-mapped source would hit an IPv4 peer's key. IPv6 input drops such packets
		 * anyway (RFC 4291 2.5.5.2), but only after tc: do not hand them a peer's mark.
		 */
		if (src.s6_addr32[0] == 0 && src.s6_addr32[1] == 0 &&
		    src.s6_addr32[2] == bpf_htonl(0x0000ffff)) {
			kmi_count(&kmi_node_stats, NODE_ESP_SEEN);
			kmi_count(&kmi_node_stats, NODE_ESP_UNKNOWN);
			return KMI_PASS;
		}
	}

	kmi_count(&kmi_node_stats, NODE_ESP_SEEN);
	mark = bpf_map_lookup_elem(&kmi_peer_marks, &src);
	if (mark) {
		skb->mark = *mark;
		kmi_count(&kmi_node_stats, NODE_ESP_MARKED);
	} else {
		kmi_count(&kmi_node_stats, NODE_ESP_UNKNOWN);
	}
	return KMI_PASS;

malformed:
	kmi_count(&kmi_node_stats, NODE_MALFORMED);
	return KMI_PASS;
}

/* Matches the project licence; neither program calls a GPL-only helper. */
char _license[] SEC("license") = "Apache-2.0";
