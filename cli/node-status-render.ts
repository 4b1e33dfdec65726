/** How `kmesh-ipsec status` shows one node plugin's /status document. */
import type { NodeStatus } from '../nodeplugin/daemon/status.js';
import { safeText } from '../core/safe-text.js';
import { alignColumns } from './cluster-view-render.js';

const PEER_HEADERS = ['PEER', 'STATE', 'OUT SPI', 'IN SPIS', 'STAMP EXPIRES', 'REASON'] as const;

/** Control characters and overlong text from the cluster never reach the terminal as they are. */
function clean(text: string, max = 160): string {
  return safeText(text, max);
}

export function renderNodeStatus(s: NodeStatus): string {
  const lines: string[] = [];
  const cond = (type: string): string => {
    const c = s.conditions.find((x) => x.type === type);
    return c ? `${c.status} (${clean(c.reason, 40)})` : 'unknown';
  };
  lines.push(`node ${clean(s.node, 80)}: ${s.ready ? 'ready' : 'NOT READY'}; Ready ${cond('Ready')}, KeyInSync ${cond('KeyInSync')}${s.strict ? '; strict' : ''}`);
  lines.push(`key: current SPI ${s.keys.current}, advertised ${s.keys.advertised}, accepted inbound ${s.keys.accepted.join(', ') || 'none'}${s.rotationInProgress ? ' (rotation in progress)' : ''}`);
  lines.push(`secret: ${clean(s.secret)}`);
  if (s.factsProblem) lines.push(`node facts: ${clean(s.factsProblem, 400)}`);
  if (s.peers.length > 0) {
    const rows = s.peers.map((p) => [
      clean(p.name, 63), p.state, p.outSpi === undefined ? '-' : String(p.outSpi), p.inSpis.join(',') || '-', p.stampExpiresAt ?? '-',
      clean([p.reason ?? '', ...(p.protected ?? []).map((c) => `${c.cidr} ${c.action}`)].filter((x) => x !== '').join('; '), 120),
    ]);
    lines.push(alignColumns([[...PEER_HEADERS], ...rows]).trimEnd());
  } else lines.push('peers: none');
  const k = s.kernel;
  lines.push(`kernel: ${k.states.in} inbound and ${k.states.out} outbound SAs; policies ${k.policies.out} out, ${k.policies.in} in, ${k.policies.fwd} fwd, ${k.policies.block} block`);
  const errors = Object.entries(s.xfrmErrors);
  lines.push(`xfrm errors: ${errors.length === 0 ? 'none' : errors.map(([n, v]) => `${n}=${v}`).join(' ')}`);
  lines.push(`pods: ${s.pods.managed} managed on ${s.pods.podInterfaces.length} interface(s); node program on ${s.nodeInterfaces.join(', ') || 'no interface'}`);
  for (const p of s.pods.problems) lines.push(`  not encrypted: ${clean(p.pod, 120)}: ${clean(p.reason)}`);
  const r = s.lastRun;
  if (r) {
    const what = r.sync ? `installed ${r.sync.installed}, removed ${r.sync.removed}, unchanged ${r.sync.unchanged}` : 'no kernel round';
    lines.push(`last reconcile: ${r.ok ? 'ok' : `FAILED: ${clean(r.error ?? '', 300)}`} at ${new Date(r.at).toISOString()} in ${r.durationMs} ms (${what}; reasons ${r.reasons.join(', ')})`);
  } else lines.push('last reconcile: none yet');
  if (s.stampExpiresAt) lines.push(`own stamp expires: ${s.stampExpiresAt}`);
  return `${lines.join('\n')}\n`;
}
