/**
 * When is the lab's cluster "there": read from outside the daemons, through the API and the
 * kernels. Through the API, every node's KmeshNodeInfo advertises the SPI with Ready and
 * KeyInSync (the verdict `kmesh-ipsec status --cluster` gives) and the node's current boot ID.
 * In the kernels, every ordered pair of nodes, in every address family both have, holds one
 * outbound SA at the sender and the matching inbound SA at the receiver with that SPI and the
 * same key (compared by digest).
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { ClusterVerdict, clusterKeyView, observeNodeInfo } from '../core/cluster-keys.js';
import { listNodeInfos } from '../cli/node-infos.js';
import { statesIn, type StateView } from './kernel.js';
import type { NodePlan } from './topology.js';

export interface ConvergenceTarget {
  readonly spi: number;
  /** Node name -> boot ID its KmeshNodeInfo must carry. */
  readonly bootIds: Readonly<Record<string, string>>;
  /** Also require that no node holds any other SA of ours (an old SPI, a removed node). */
  readonly exact?: boolean;
}

/** What is still missing through the API; [] when every node is in sync. */
export async function apiProblems(kc: KubeConfig, nodes: readonly NodePlan[], target: ConvergenceTarget): Promise<string[]> {
  const names = new Set(nodes.map((n) => n.name));
  const objects = (await listNodeInfos(kc)).filter((o) => names.has(observeNodeInfo(o).name));
  const problems: string[] = [];
  const seen = new Set(objects.map((o) => observeNodeInfo(o).name));
  const missing = nodes.filter((n) => !seen.has(n.name)).map((n) => n.name);
  if (missing.length > 0) problems.push(`no KmeshNodeInfo yet for ${missing.join(', ')}`);
  for (const o of objects) {
    const obs = observeNodeInfo(o);
    const bootID = obs.spec.ok ? obs.spec.value.bootID : undefined;
    if (bootID !== target.bootIds[obs.name]) problems.push(`${obs.name} still publishes its previous boot ID`);
  }
  const view = clusterKeyView({ secretSpi: target.spi, nodes: objects.map(observeNodeInfo), now: Date.now() / 1000 });
  if (view.verdict !== ClusterVerdict.InSync && objects.length > 0) problems.push(view.summary);
  return problems;
}

/** What is still missing in the kernels; [] when every pair is programmed. */
export async function kernelProblems(nodes: readonly NodePlan[], target: ConvergenceTarget): Promise<string[]> {
  const states = new Map<string, StateView[]>();
  await Promise.all(nodes.map(async (n) => states.set(n.name, await statesIn(n.netns))));
  return pairProblems(nodes, states, target);
}

/** Pure part of kernelProblems. */
export function pairProblems(nodes: readonly NodePlan[], states: ReadonlyMap<string, readonly StateView[]>, target: ConvergenceTarget): string[] {
  const problems: string[] = [];
  for (const a of nodes) {
    const expected = new Set<StateView>();
    for (const b of nodes) {
      if (a === b) continue;
      for (const [src, dst] of addressPairs(a, b)) {
        const match = (s: StateView): boolean => s.src === src && s.dst === dst && s.spi === target.spi;
        const out = (states.get(a.name) ?? []).filter(match);
        const inbound = (states.get(b.name) ?? []).filter(match);
        const back = (states.get(a.name) ?? []).filter((s) => s.src === dst && s.dst === src && s.spi === target.spi);
        for (const s of [...out, ...back]) expected.add(s);
        if (out.length !== 1) problems.push(`${a.name} has ${out.length === 0 ? 'no' : out.length} SA to ${b.name} (${dst}) with SPI ${target.spi}`);
        else if (inbound.length !== 1) problems.push(`${b.name} has no SA from ${a.name} (${src}) with SPI ${target.spi}`);
        else if (out[0]?.keyTag !== inbound[0]?.keyTag) problems.push(`${a.name} -> ${b.name} (${src} -> ${dst}): the two ends hold different keys`);
      }
    }
    const extra = (states.get(a.name) ?? []).filter((s) => !expected.has(s));
    if (target.exact === true && extra.length > 0) problems.push(`${a.name} still holds ${extra.length} other SA(s) (${extra.map((s) => `${s.src} -> ${s.dst} SPI ${s.spi}`).join(', ')})`);
  }
  return problems;
}

/** (src, dst) node addresses of a -> b, per family both nodes have. */
export function addressPairs(a: NodePlan, b: NodePlan): [string, string][] {
  return [[a.ip, b.ip], ...(a.ip6 !== undefined && b.ip6 !== undefined ? [[a.ip6, b.ip6] as [string, string]] : [])];
}
