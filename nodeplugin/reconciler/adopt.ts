/**
 * What a restarted node plugin learns back from the kernel, so it converges without tearing
 * down working SAs: the peer ids (from our inbound states' marks) and the SPIs it was
 * accepting (from our inbound states' SPIs).
 */
import { canonicalIp } from '../../core/ip.js';
import { peerIdFromInboundMark } from '../../core/marks.js';
import { type PeerNode, primaryAddresses } from '../../core/plan.js';
import type { XfrmStateInfo } from '../xfrm/types.js';
import { isOwnedInboundState } from './ownership.js';

/** Peer name -> id, for peers whose address matches the source of one of our inbound states. */
export function adoptPeerIds(states: readonly XfrmStateInfo[], peers: readonly PeerNode[]): Map<string, number> {
  const byAddress = new Map<string, string>();
  for (const peer of peers) for (const a of primaryAddresses(peer.spec.addresses).values()) byAddress.set(canonicalIp(a), peer.name);
  const ids = new Map<string, number>();
  for (const s of states) {
    if (!isOwnedInboundState(s) || s.mark === undefined) continue;
    const id = peerIdFromInboundMark(s.mark.value);
    const name = byAddress.get(canonicalIp(s.src));
    if (id !== undefined && name !== undefined && !ids.has(name)) ids.set(name, id);
  }
  return ids;
}

/** SPIs of our inbound states (those with a per-peer mark). */
export function adoptAcceptedSpis(states: readonly XfrmStateInfo[]): number[] {
  const spis = new Set<number>();
  for (const s of states) if (isOwnedInboundState(s)) spis.add(s.spi);
  return [...spis].sort((a, b) => a - b);
}
