/**
 * KmeshNodeInfo objects as node plugins publish them, with real validity stamps signed by a
 * throwaway webhook key, and status conditions in the contract's shape.
 */
import { generateStampKey } from '../../certs/stamp-keygen.js';
import { VALIDITY_ANNOTATION } from '../../core/constants.js';
import type { KmeshNodeInfoSpec } from '../../core/nodeinfo.js';
import { type StampSigningKey, importStampSigningKey, signStamp } from '../../core/stamp.js';

export async function stampKey(): Promise<StampSigningKey> {
  const imported = await importStampSigningKey((await generateStampKey()).privateJwk);
  if (!imported.ok) throw new Error('test stamp key did not import');
  return imported.value;
}

export interface ConditionSeed {
  readonly type: 'Ready' | 'KeyInSync';
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason?: string;
  readonly message?: string;
  readonly observedGeneration?: number;
}

export interface NodeInfoSeed {
  readonly name: string;
  readonly spi: number;
  /** Index used to give each node its own address and pod CIDR. */
  readonly index?: number;
  /** Stamp issue time, seconds; the stamp is valid for ttlSeconds from then. */
  readonly stampedAt: number;
  readonly ttlSeconds?: number;
  /** `false`: no stamp annotation; a string: that annotation value. Default: a real stamp. */
  readonly stamp?: false | string;
  readonly conditions?: readonly ConditionSeed[];
  readonly generation?: number;
}

export function specFor(seed: Pick<NodeInfoSeed, 'spi' | 'index'>): KmeshNodeInfoSpec {
  const i = seed.index ?? 1;
  return { spi: seed.spi, addresses: [`10.0.0.${i}`], bootID: `550e8400-e29b-41d4-a716-4466554400${String(i).padStart(2, '0')}`, podCIDRS: [`10.244.${i}.0/24`] };
}

/** Ready=True and KeyInSync=True, as a healthy plugin reports them. */
export const HEALTHY: readonly ConditionSeed[] = [
  { type: 'Ready', status: 'True', reason: 'Programmed', observedGeneration: 1 },
  { type: 'KeyInSync', status: 'True', reason: 'InSync', observedGeneration: 1 },
];

/** The object, ready for `double.store.put` or `observeNodeInfo`. */
export async function nodeInfo(seed: NodeInfoSeed, key: StampSigningKey) {
  const spec = specFor(seed);
  const token = seed.stamp ?? (await signStamp({ nodeName: seed.name, spec }, key, { now: seed.stampedAt, ttlSeconds: seed.ttlSeconds ?? 86_400 }));
  const lastTransitionTime = new Date(seed.stampedAt * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  return {
    apiVersion: 'kmesh.net/v1alpha1',
    kind: 'KmeshNodeInfo',
    metadata: {
      name: seed.name,
      namespace: 'kmesh-system',
      ...(seed.generation === undefined ? {} : { generation: seed.generation }),
      ...(token === false ? {} : { annotations: { [VALIDITY_ANNOTATION]: token } }),
    },
    spec,
    status: { conditions: (seed.conditions ?? HEALTHY).map((c) => ({ lastTransitionTime, observedGeneration: 1, message: '', reason: 'Unspecified', ...c })) },
  };
}
