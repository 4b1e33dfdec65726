/**
 * The IPsec Secret in the cluster: read, create, rotate and delete it. Writes carry the
 * resourceVersion they were computed from, so two concurrent rotations cannot both write the
 * same SPI: the loser gets 409 Conflict, re-reads and moves one SPI further. A rotation waits
 * until every node advertises the current SPI (core/cluster-keys.ts), unless forced.
 */
import { randomBytes } from 'node:crypto';
import { CoreV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { type NodeKeyStatus, clusterKeyView, observeNodeInfo, rotationHoldouts } from '../core/cluster-keys.js';
import { AEAD_ALGORITHM, DEFAULT_ICV_BITS, KMESH_NAMESPACE, PSK_BYTES, SECRET_NAME } from '../core/constants.js';
import { formatErrors } from '../core/result.js';
import { type IpsecKey, parseIpsecSecret, renderIpsecSecret, sameKeyMaterial } from '../core/secret.js';
import { initialSpi, nextSpi } from '../core/spi.js';
import { CliError } from './errors.js';
import { apiStatus, describeKubeError } from './kube.js';
import { listNodeInfos } from './node-infos.js';

const MAX_ATTEMPTS = 8;

export interface StoredSecret {
  readonly key: IpsecKey;
  readonly object: V1Secret;
}

/** What a reader learned about the Secret without failing: for status views. */
export type SecretSighting =
  | { readonly state: 'present'; readonly spi: number }
  | { readonly state: 'absent' }
  | { readonly state: 'unreadable'; readonly reason: string };

export interface WriteOptions {
  /** Rotate even while nodes are not all on the current SPI (or cannot be checked). */
  readonly force?: boolean;
  /** Decide everything, write nothing. */
  readonly dryRun?: boolean;
}

export type WriteOutcome =
  | { readonly action: 'created'; readonly key: IpsecKey; readonly dryRun: boolean; readonly advertisedWarning?: string }
  | {
      readonly action: 'rotated';
      readonly from: number;
      readonly key: IpsecKey;
      readonly dryRun: boolean;
      /** Nodes not on `from` (only non-empty when forced). */
      readonly holdouts: readonly NodeKeyStatus[];
      /** Set when forced past a failure to read the KmeshNodeInfos. */
      readonly nodesWarning?: string;
    }
  /** Nothing written: `holdouts` do not advertise `from` yet. */
  | { readonly action: 'refused'; readonly from: number; readonly to: number; readonly dryRun: boolean; readonly holdouts: readonly NodeKeyStatus[] };

export class SecretStore {
  readonly #kc: KubeConfig;
  readonly #core: CoreV1Api;

  constructor(kc: KubeConfig) {
    this.#kc = kc;
    this.#core = kc.makeApiClient(CoreV1Api);
  }

  /** The stored secret, undefined when absent; a CliError when it exists but is invalid. */
  async read(): Promise<StoredSecret | undefined> {
    let object: V1Secret;
    try {
      object = await this.#core.readNamespacedSecret({ name: SECRET_NAME, namespace: KMESH_NAMESPACE });
    } catch (err: unknown) {
      if (apiStatus(err) === 404) return undefined;
      throw this.#fail(`cannot read secret ${KMESH_NAMESPACE}/${SECRET_NAME}`, err);
    }
    const parsed = parseIpsecSecret(object);
    if (!parsed.ok) throw new CliError(`secret ${KMESH_NAMESPACE}/${SECRET_NAME} holds an invalid value: ${formatErrors(parsed.errors)}`);
    return { key: parsed.value.key, object };
  }

  /** The Secret's SPI for a status view; any failure to read it is reported, not thrown. */
  async peek(): Promise<SecretSighting> {
    try {
      const stored = await this.read();
      return stored ? { state: 'present', spi: stored.key.spi } : { state: 'absent' };
    } catch (err: unknown) {
      if (err instanceof CliError) return { state: 'unreadable', reason: err.message };
      throw err;
    }
  }

  /**
   * Create the secret (SPI above every SPI nodes advertise, so 1 on a fresh cluster) or rotate
   * it to the next SPI. `keyBytes` defaults to 36 bytes from the CSPRNG.
   */
  async createOrRotate(keyBytes?: Uint8Array, options: WriteOptions = {}): Promise<WriteOutcome> {
    const dryRun = options.dryRun ?? false;
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const current = await this.read();
      const aeadKey = keyBytes ?? Uint8Array.from(randomBytes(PSK_BYTES));
      if (!current) {
        const { spis, warning } = await this.#advertisedSpis();
        const key = makeKey(initialSpi(spis), aeadKey);
        const created: WriteOutcome = { action: 'created', key, dryRun, ...(warning === undefined ? {} : { advertisedWarning: warning }) };
        if (dryRun) return created;
        try {
          await this.#core.createNamespacedSecret({ namespace: KMESH_NAMESPACE, body: renderIpsecSecret(key) });
          return created;
        } catch (err: unknown) {
          if (apiStatus(err) === 409) continue; // someone created it meanwhile: rotate theirs instead
          throw this.#fail(`cannot create secret ${KMESH_NAMESPACE}/${SECRET_NAME}`, err);
        }
      }
      const key = makeKey(nextSpi(current.key.spi), aeadKey);
      if (sameKeyMaterial(key, current.key)) {
        throw new CliError(`--key is the key already stored for SPI ${current.key.spi}; a rotation needs a new key`, 2);
      }
      const gate = await this.#rotationGate(current.key.spi, options.force ?? false);
      if (gate.holdouts.length > 0 && options.force !== true) return { action: 'refused', from: current.key.spi, to: key.spi, dryRun, holdouts: gate.holdouts };
      const rotated: WriteOutcome = { action: 'rotated', from: current.key.spi, key, dryRun, holdouts: gate.holdouts, ...(gate.warning === undefined ? {} : { nodesWarning: gate.warning }) };
      if (dryRun) return rotated;
      // Keep the user's labels and annotations; resourceVersion makes the write conditional.
      const { labels, annotations, resourceVersion } = current.object.metadata ?? {};
      const body: V1Secret = { ...renderIpsecSecret(key), metadata: { name: SECRET_NAME, namespace: KMESH_NAMESPACE, labels, annotations, resourceVersion } };
      try {
        await this.#core.replaceNamespacedSecret({ name: SECRET_NAME, namespace: KMESH_NAMESPACE, body });
        return rotated;
      } catch (err: unknown) {
        const status = apiStatus(err);
        if (status === 409 || status === 404) continue; // lost a race: re-read and go one further
        throw this.#fail(`cannot update secret ${KMESH_NAMESPACE}/${SECRET_NAME}`, err);
      }
    }
    throw new CliError(`gave up after ${MAX_ATTEMPTS} attempts: the secret kept changing under us (another writer is rotating it)`);
  }

  /** Delete the secret; returns what was deleted, undefined when it was absent. */
  async delete(): Promise<StoredSecret | { readonly key: undefined } | undefined> {
    let before: StoredSecret | { readonly key: undefined } | undefined;
    try {
      before = await this.read();
    } catch (err: unknown) {
      if (!(err instanceof CliError) || !err.message.includes('invalid value')) throw err;
      before = { key: undefined }; // an invalid secret can still be deleted
    }
    if (!before) return undefined;
    try {
      await this.#core.deleteNamespacedSecret({ name: SECRET_NAME, namespace: KMESH_NAMESPACE });
    } catch (err: unknown) {
      if (apiStatus(err) === 404) return undefined;
      throw this.#fail(`cannot delete secret ${KMESH_NAMESPACE}/${SECRET_NAME}`, err);
    }
    return before;
  }

  /** SPIs still advertised by nodes; a failure to read them is a warning, not an error. */
  async #advertisedSpis(): Promise<{ spis: number[]; warning?: string }> {
    try {
      const spis = (await listNodeInfos(this.#kc)).map((o) => observeNodeInfo(o).spi);
      return { spis: spis.filter((s): s is number => s !== undefined) };
    } catch (err: unknown) {
      if (!(err instanceof CliError)) throw err;
      return { spis: [], warning: `could not read KmeshNodeInfos to continue above their SPIs (${err.message})` };
    }
  }

  /**
   * Nodes not yet on `currentSpi`. Rotating past them would leave them two keys behind, so
   * an unreadable node list stops the rotation too, unless forced.
   */
  async #rotationGate(currentSpi: number, force: boolean): Promise<{ holdouts: readonly NodeKeyStatus[]; warning?: string }> {
    let objects: unknown[];
    try {
      objects = await listNodeInfos(this.#kc);
    } catch (err: unknown) {
      if (!(err instanceof CliError)) throw err;
      if (!force) throw new CliError(`cannot check that SPI ${currentSpi} reached every node (${err.message}); pass --force to rotate without checking`);
      return { holdouts: [], warning: `rotating without checking the nodes: ${err.message}` };
    }
    const view = clusterKeyView({ secretSpi: currentSpi, nodes: objects.map(observeNodeInfo), now: Date.now() / 1000 });
    return { holdouts: rotationHoldouts(view.nodes, currentSpi) };
  }

  #fail(what: string, err: unknown): CliError {
    return new CliError(`${what}: ${describeKubeError(err, this.#kc)}`);
  }
}

function makeKey(spi: number, aeadKey: Uint8Array): IpsecKey {
  return { spi, aeadKeyName: AEAD_ALGORITHM, aeadKey, icvBits: DEFAULT_ICV_BITS };
}
