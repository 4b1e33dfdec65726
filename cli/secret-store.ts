/**
 * The IPsec Secret in the cluster: read, create, rotate and delete it. Writes carry the
 * resourceVersion they were computed from, so two concurrent rotations cannot both write the
 * same SPI: the loser gets 409 Conflict, re-reads and moves one SPI further.
 */
import { randomBytes } from 'node:crypto';
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { AEAD_ALGORITHM, DEFAULT_ICV_BITS, KMESH_NAMESPACE, KNI_GROUP, KNI_PLURAL, KNI_VERSION, PSK_BYTES, SECRET_NAME } from '../core/constants.js';
import { formatErrors } from '../core/result.js';
import { type IpsecKey, parseIpsecSecret, renderIpsecSecret, sameKeyMaterial } from '../core/secret.js';
import { initialSpi, nextSpi } from '../core/spi.js';
import { CliError } from './errors.js';
import { apiStatus, describeKubeError } from './kube.js';

const MAX_ATTEMPTS = 8;

export interface StoredSecret {
  readonly key: IpsecKey;
  readonly object: V1Secret;
}

export type WriteOutcome =
  | { readonly action: 'created'; readonly key: IpsecKey; readonly advertisedWarning?: string }
  | { readonly action: 'rotated'; readonly from: number; readonly key: IpsecKey };

export class SecretStore {
  readonly #kc: KubeConfig;
  readonly #core: CoreV1Api;
  readonly #custom: CustomObjectsApi;

  constructor(kc: KubeConfig) {
    this.#kc = kc;
    this.#core = kc.makeApiClient(CoreV1Api);
    this.#custom = kc.makeApiClient(CustomObjectsApi);
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

  /**
   * Create the secret (SPI above every SPI nodes advertise, so 1 on a fresh cluster) or rotate
   * it to the next SPI. `keyBytes` defaults to 36 bytes from the CSPRNG.
   */
  async createOrRotate(keyBytes?: Uint8Array): Promise<WriteOutcome> {
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const current = await this.read();
      const aeadKey = keyBytes ?? Uint8Array.from(randomBytes(PSK_BYTES));
      if (!current) {
        const { spis, warning } = await this.#advertisedSpis();
        const key = makeKey(initialSpi(spis), aeadKey);
        try {
          await this.#core.createNamespacedSecret({ namespace: KMESH_NAMESPACE, body: renderIpsecSecret(key) });
          return warning === undefined ? { action: 'created', key } : { action: 'created', key, advertisedWarning: warning };
        } catch (err: unknown) {
          if (apiStatus(err) === 409) continue; // someone created it meanwhile: rotate theirs instead
          throw this.#fail(`cannot create secret ${KMESH_NAMESPACE}/${SECRET_NAME}`, err);
        }
      }
      const key = makeKey(nextSpi(current.key.spi), aeadKey);
      if (sameKeyMaterial(key, current.key)) {
        throw new CliError(`--key is the key already stored for SPI ${current.key.spi}; a rotation needs a new key`, 2);
      }
      // Keep the user's labels and annotations; resourceVersion makes the write conditional.
      const { labels, annotations, resourceVersion } = current.object.metadata ?? {};
      const body: V1Secret = { ...renderIpsecSecret(key), metadata: { name: SECRET_NAME, namespace: KMESH_NAMESPACE, labels, annotations, resourceVersion } };
      try {
        await this.#core.replaceNamespacedSecret({ name: SECRET_NAME, namespace: KMESH_NAMESPACE, body });
        return { action: 'rotated', from: current.key.spi, key };
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
      const list = (await this.#custom.listNamespacedCustomObject({ group: KNI_GROUP, version: KNI_VERSION, namespace: KMESH_NAMESPACE, plural: KNI_PLURAL })) as { items?: { spec?: { spi?: unknown } }[] };
      return { spis: (list.items ?? []).map((i) => i.spec?.spi).filter((s): s is number => typeof s === 'number' && Number.isSafeInteger(s)) };
    } catch (err: unknown) {
      if (apiStatus(err) === 404) return { spis: [] }; // CRD not installed: no node advertises anything
      return { spis: [], warning: `could not read KmeshNodeInfos to continue above their SPIs (${describeKubeError(err, this.#kc)})` };
    }
  }

  #fail(what: string, err: unknown): CliError {
    return new CliError(`${what}: ${describeKubeError(err, this.#kc)}`);
  }
}

function makeKey(spi: number, aeadKey: Uint8Array): IpsecKey {
  return { spi, aeadKeyName: AEAD_ALGORITHM, aeadKey, icvBits: DEFAULT_ICV_BITS };
}
