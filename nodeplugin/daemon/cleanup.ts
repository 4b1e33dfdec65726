/**
 * `kmesh-ipsec node cleanup`: the uninstall path. Removes exactly what this project owns on
 * the node (docs/mark-layout.md, "Ownership") and nothing else: xfrm policies and states with
 * our reqid and marks, our tc filters, our pins, and this node's KmeshNodeInfo. Kmesh's own
 * objects and any other IPsec user's stay. Pod traffic to peers is in clear afterwards: run it
 * only when kmesh-ipsec is being removed from the cluster (or from this node).
 */
import type { Logger } from 'pino';
import { removeNodePins } from '../bpf/index.js';
import { DEFAULT_TOOLS } from '../bpf/exec.js';
import * as tc from '../bpf/tc.js';
import { isOwnedPolicy, isOwnedState } from '../reconciler/ownership.js';
import type { XfrmPort } from '../reconciler/reconciler.js';
import type { XfrmChange } from '../xfrm/types.js';

export interface CleanupReport {
  readonly policies: number;
  readonly states: number;
  readonly filters: readonly string[];
  readonly pins: readonly string[];
  readonly nodeInfoDeleted: boolean;
  readonly errors: readonly string[];
}

export interface CleanupDeps {
  readonly xfrm: XfrmPort;
  readonly logger: Logger;
  /** Deletes this node's KmeshNodeInfo; omitted with --keep-node-info. */
  readonly deleteNodeInfo?: () => Promise<boolean>;
}

export async function cleanupNode(pinDir: string, deps: CleanupDeps): Promise<CleanupReport> {
  const errors: string[] = [];
  const [states, policies] = await Promise.all([deps.xfrm.dumpStates(), deps.xfrm.dumpPolicies()]);
  // Policies first, so no packet is steered to a state that is already gone.
  const changes: XfrmChange[] = [
    ...policies.filter((p) => !p.socket && isOwnedPolicy(p)).map((p): XfrmChange => ({
      op: 'deletePolicy', id: { dir: p.dir, selector: p.selector, ...(p.mark ? { mark: p.mark } : {}), type: p.type },
    })),
    ...states.filter(isOwnedState).map((s): XfrmChange => ({
      op: 'deleteState', id: { family: s.family, dst: s.dst, spi: s.spi, proto: s.proto, src: s.src, ...(s.mark ? { mark: s.mark } : {}) },
    })),
  ];
  let removedPolicies = 0;
  let removedStates = 0;
  for (const o of changes.length > 0 ? await deps.xfrm.apply(changes) : []) {
    if (o.error) errors.push(`${o.change.op}: ${o.error.message}`);
    else if (o.change.op === 'deletePolicy') removedPolicies++;
    else removedStates++;
  }

  const filters: string[] = [];
  try {
    for (const f of await tc.listAll({ tools: DEFAULT_TOOLS })) {
      if (await tc.detach(f.ifname, f.program, { tools: DEFAULT_TOOLS })) filters.push(`${f.ifname}/${f.program}`);
    }
  } catch (err: unknown) {
    errors.push(`tc: ${err instanceof Error ? err.message : String(err)}`);
  }

  let pins: string[] = [];
  try {
    pins = await removeNodePins(pinDir);
  } catch (err: unknown) {
    errors.push(`pins: ${err instanceof Error ? err.message : String(err)}`);
  }

  let nodeInfoDeleted = false;
  if (deps.deleteNodeInfo) {
    try {
      nodeInfoDeleted = await deps.deleteNodeInfo();
    } catch (err: unknown) {
      errors.push(`KmeshNodeInfo: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  const report = { policies: removedPolicies, states: removedStates, filters, pins, nodeInfoDeleted, errors };
  deps.logger.info({ ...report, errors: errors.slice(0, 10) }, 'cleanup done');
  return report;
}
