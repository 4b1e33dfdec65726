/**
 * The kubelet's part in the lab: every node's Secret volume (the node plugin's --secret-dir)
 * follows the Secret kmesh-system/kmesh-ipsec in the API, written the way the kubelet writes
 * Secret volumes (projected-volume.ts). Nodes are updated one after another with a gap, as
 * kubelets on different nodes sync at different moments. A node can be held back (its
 * kubelet is late) and released; a deleted Node is no longer updated.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { KMESH_NAMESPACE, SECRET_NAME } from '../core/constants.js';
import type { LocalApiStore } from '../localapi/index.js';
import { writeProjectedVolume } from './projected-volume.js';

type Files = Readonly<Record<string, string>> | undefined;

export class SecretVolumes {
  readonly #store: LocalApiStore;
  readonly #dirs = new Map<string, string>();
  readonly #held = new Set<string>();
  /** What each node's volume holds now, as JSON (undefined: nothing written yet). */
  readonly #written = new Map<string, string>();
  readonly #gapMs: number;
  #queue: Promise<void> = Promise.resolve();
  #unsubscribe: (() => void) | undefined;

  constructor(store: LocalApiStore, volumes: Readonly<Record<string, string>>, gapMs: number) {
    this.#store = store;
    this.#gapMs = gapMs;
    for (const [node, dir] of Object.entries(volumes)) this.#dirs.set(node, dir);
  }

  /** Writes every volume now, then follows changes of the Secret and deletions of Nodes. */
  start(): Promise<void> {
    this.#unsubscribe = this.#store.onChange((e) => {
      if (e.resource === 'secrets' && e.object.metadata.namespace === KMESH_NAMESPACE && e.object.metadata.name === SECRET_NAME) void this.#enqueue(() => this.#syncAll());
      if (e.resource === 'nodes' && e.type === 'DELETED') this.#dirs.delete(e.object.metadata.name ?? '');
    });
    return this.#enqueue(() => this.#syncAll(0));
  }

  stop(): void {
    this.#unsubscribe?.();
  }

  /** A node whose volume is (again) at `dir`, e.g. after a reboot emptied it; written at once. */
  add(node: string, dir: string): Promise<void> {
    this.#dirs.set(node, dir);
    this.#written.delete(node);
    return this.#enqueue(async () => { await this.#sync(node); });
  }

  /** The node's kubelet is late: its volume keeps what it has until release(). */
  hold(node: string): void {
    this.#known(node);
    this.#held.add(node);
  }

  /** Resolves once the node's volume holds the current Secret. */
  release(node: string): Promise<void> {
    this.#known(node);
    this.#held.delete(node);
    return this.#enqueue(async () => { await this.#sync(node); });
  }

  #known(node: string): void {
    if (!this.#dirs.has(node)) throw new RangeError(`no Secret volume for node ${JSON.stringify(node)}`);
  }

  #enqueue(work: () => Promise<void>): Promise<void> {
    const next = this.#queue.then(work);
    // One failure must not stop later updates; the caller of this step still sees it.
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #syncAll(gapMs = this.#gapMs): Promise<void> {
    let first = true;
    for (const node of [...this.#dirs.keys()]) {
      if (this.#held.has(node)) continue;
      const changed = await this.#sync(node, first ? 0 : gapMs);
      if (changed) first = false;
    }
  }

  /** Writes the node's volume if it differs from the Secret; true when it wrote. */
  async #sync(node: string, delayMs = 0): Promise<boolean> {
    const dir = this.#dirs.get(node);
    if (dir === undefined || this.#held.has(node)) return false;
    const files = this.#files();
    const text = JSON.stringify(files ?? null);
    if (this.#written.get(node) === text) return false;
    if (delayMs > 0) await sleep(delayMs);
    await writeProjectedVolume(dir, files);
    this.#written.set(node, text);
    return true;
  }

  /** The Secret's data as files (undefined: no Secret; the volume is optional, so it empties). */
  #files(): Files {
    const secret = this.#store.get('secrets', KMESH_NAMESPACE, SECRET_NAME) as { data?: Record<string, string> } | undefined;
    if (secret === undefined) return undefined;
    return Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
  }
}
