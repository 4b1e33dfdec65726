/**
 * What a node's kernel holds, read from outside the daemon with the tools an operator would
 * use: `ip xfrm` for policies (and SAs in the VM), the hybrid daemon's SA file on hosts without
 * ESP, bpffs pins for the maps, `tc` for attachments.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MAPS, decodeCidrKey, decodeAddressKey, readU32 } from '../../nodeplugin/bpf/layout.js';
import { entries, openPinned } from '../../nodeplugin/bpf/maps.js';
import { OWNED_REQID } from '../../core/marks.js';
import type { NodeHandle, PluginCluster } from './plugin-cluster.js';

export interface PolicyView {
  readonly dir: string;
  readonly dst: string;
  readonly action: string;
  readonly mark: string;
  readonly tmplDst: string;
  readonly spi: number;
}

export interface StateView {
  readonly src: string;
  readonly dst: string;
  readonly spi: number;
  readonly mark?: number;
  /** A short digest of the key, so tests can see a rekey without handling keys. */
  readonly keyTag: string;
}

/** Our xfrm policies (reqid 0x6b6d), as `ip xfrm policy` shows them. */
export async function ownedPolicies(node: NodeHandle): Promise<PolicyView[]> {
  const out = (await node.ns.exec(['ip', 'xfrm', 'policy', 'list'])).stdout;
  const views: PolicyView[] = [];
  for (const block of out.split(/\n(?=src )/)) {
    if (!block.includes(`reqid ${OWNED_REQID} `) && !block.includes(`reqid ${OWNED_REQID}\n`) && !block.endsWith(`reqid ${OWNED_REQID}`)) continue;
    const dst = /^src \S+ dst (\S+)/.exec(block)?.[1] ?? '';
    const dir = /dir (\w+)/.exec(block)?.[1] ?? '';
    const action = /action (\w+)/.exec(block)?.[1] ?? 'allow';
    const mark = /mark (\S+)/.exec(block)?.[1] ?? '';
    const tmpl = /tmpl src \S+ dst (\S+)/.exec(block);
    const spi = /spi (0x[0-9a-f]+)/.exec(block)?.[1];
    views.push({ dir, dst, action, mark, tmplDst: tmpl?.[1] ?? '', spi: spi ? Number(spi) : 0 });
  }
  return views.sort((a, b) => `${a.dir}${a.dst}`.localeCompare(`${b.dir}${b.dst}`));
}

/** Our SAs: from the kernel (`cli` daemons, the VM) or the hybrid daemon's table. */
export async function ownedStates(cluster: PluginCluster, node: NodeHandle): Promise<StateView[]> {
  if (cluster.options.daemon === 'hybrid') {
    let table: { state: { src: string; dst: string; spi: number; reqid: number; mark?: { value: number }; aead?: { key: string } } }[];
    try {
      table = JSON.parse(readFileSync(node.stateFile, 'utf8')) as typeof table;
    } catch {
      return [];
    }
    return table.filter((s) => s.state.reqid === OWNED_REQID).map(({ state }) => ({
      src: state.src, dst: state.dst, spi: state.spi, ...(state.mark ? { mark: state.mark.value } : {}), keyTag: (state.aead?.key ?? '').slice(0, 8),
    })).sort(byState);
  }
  const out = (await node.ns.exec(['ip', 'xfrm', 'state', 'list'])).stdout;
  const views: StateView[] = [];
  for (const block of out.split(/\n(?=src )/)) {
    if (!new RegExp(`reqid ${OWNED_REQID} `).test(block)) continue;
    const m = /^src (\S+) dst (\S+)/.exec(block);
    const spi = /spi (0x[0-9a-f]+)/.exec(block)?.[1];
    const mark = /\n\s*mark (0x[0-9a-f]+)/.exec(block)?.[1];
    const key = /aead \S+ 0x([0-9a-f]+)/.exec(block)?.[1] ?? '';
    views.push({ src: m?.[1] ?? '', dst: m?.[2] ?? '', spi: spi ? Number(spi) : 0, ...(mark ? { mark: Number(mark) } : {}), keyTag: key.slice(0, 8) });
  }
  return views.sort(byState);
}

function byState(a: StateView, b: StateView): number {
  return `${a.src}>${a.dst}/${a.spi}`.localeCompare(`${b.src}>${b.dst}/${b.spi}`);
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
