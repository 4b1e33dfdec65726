/**
 * What a node's kernel holds, read from outside the daemon with the tools an operator would
 * use: `ip xfrm` for policies (and SAs in the VM), the hybrid daemon's SA file on hosts without
 * ESP, bpffs pins for the maps, `tc` for attachments.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MAPS, decodeCidrKey, decodeAddressKey, readU32 } from '../../nodeplugin/bpf/layout.js';
import { entries, openPinned } from '../../nodeplugin/bpf/maps.js';
import { OWNED_REQID } from '../../core/marks.js';
import { type PolicyView, type StateView, policiesIn, statesIn } from '../../lab/kernel.js';
import type { NodeHandle, PluginCluster } from './plugin-cluster.js';

export type { PolicyView, StateView } from '../../lab/kernel.js';

/** Our xfrm policies (reqid 0x6b6d), as `ip xfrm policy` shows them. */
export function ownedPolicies(node: NodeHandle): Promise<PolicyView[]> {
  return policiesIn(node.ns.name);
}

/** Our SAs: from the kernel (`cli` daemons, the VM) or the hybrid daemon's table. */
export async function ownedStates(cluster: PluginCluster, node: NodeHandle): Promise<StateView[]> {
  if (cluster.options.daemon !== 'hybrid') return statesIn(node.ns.name);
  let table: { state: { src: string; dst: string; spi: number; reqid: number; mark?: { value: number }; aead?: { key: string } } }[];
  try {
    table = JSON.parse(readFileSync(node.stateFile, 'utf8')) as typeof table;
  } catch {
    return [];
  }
  return table.filter((s) => s.state.reqid === OWNED_REQID).map(({ state }) => ({
    src: state.src, dst: state.dst, spi: state.spi, ...(state.mark ? { mark: state.mark.value } : {}), keyTag: createHash('sha256').update(state.aead?.key ?? '').digest('hex').slice(0, 8),
  })).sort((a, b) => `${a.src}>${a.dst}/${a.spi}`.localeCompare(`${b.src}>${b.dst}/${b.spi}`));
}

/** Contents of the node's pinned maps. */
export function pinnedMaps(cluster: PluginCluster, node: NodeHandle): { peerCidrs: string[]; peerMarks: Map<string, number> } {
  const dir = cluster.daemonOptions(node).pinDir;
  const cidrs = openPinned(join(dir, MAPS.peerCidrs.name), MAPS.peerCidrs);
  const marks = openPinned(join(dir, MAPS.peerMarks.name), MAPS.peerMarks);
  try {
    return {
      peerCidrs: entries(cidrs).map(([k, v]) => decodeCidrKey(k, v).cidr).sort(),
      peerMarks: new Map(entries(marks).map(([k, v]) => [decodeAddressKey(k), readU32(v, 0)] as const)),
    };
  } finally {
    cidrs.close();
    marks.close();
  }
}

/** Which of our programs sit on tc ingress of `ifname` ([] if none or no such interface). */
export async function programsOn(node: NodeHandle, ifname: string): Promise<string[]> {
  const r = await node.ns.exec(['tc', '-j', 'filter', 'show', 'dev', ifname, 'ingress'], { allowFailure: true });
  if (r.code !== 0 || r.stdout.trim() === '') return [];
  const filters = JSON.parse(r.stdout) as { options?: { prog?: { name?: string } } }[];
  return filters.map((f) => f.options?.prog?.name).filter((n): n is string => n === 'kmipsec_pod' || n === 'kmipsec_node').sort();
}
