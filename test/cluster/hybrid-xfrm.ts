/**
 * An XfrmPort for host tests on kernels without ESP (this CI's): policies go to the real kernel
 * through the project's netlink socket, SAs go to a table in a file that stands in for the
 * kernel's SAD. The file survives the process (like the kernel's table survives a killed
 * plugin), so restart and `kill -9` tests mean the same as in the VM, where the real SAD is
 * used. The table follows the kernel's identity rules for SAs: (dst, SPI, proto, mark), an
 * unmarked SA colliding with any mark (see docs/mark-layout.md and the VM suite).
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { canonicalIp } from '../../core/ip.js';
import type { ChangeOutcome, XfrmPort } from '../../nodeplugin/reconciler/reconciler.js';
import { XfrmError } from '../../nodeplugin/xfrm/errors.js';
import type { XfrmSocket } from '../../nodeplugin/xfrm/index.js';
import type { XfrmChange, XfrmPolicyInfo, XfrmState, XfrmStateInfo } from '../../nodeplugin/xfrm/types.js';

interface StoredState {
  readonly state: Omit<XfrmState, 'aead'> & { readonly aead?: { readonly name: string; readonly key: string; readonly icvBits: number } };
  readonly addTime: number;
}

const sameSlot = (a: Pick<XfrmState, 'family' | 'dst' | 'spi' | 'proto' | 'mark'>, b: Pick<XfrmState, 'family' | 'dst' | 'spi' | 'proto' | 'mark'>): boolean =>
  a.family === b.family && canonicalIp(a.dst) === canonicalIp(b.dst) && a.spi === b.spi && a.proto === b.proto &&
  (a.mark === undefined || b.mark === undefined || (a.mark.value === b.mark.value && a.mark.mask === b.mark.mask));

export class FileStateTable {
  readonly #path: string;

  constructor(path: string) {
    this.#path = path;
  }

  list(): StoredState[] {
    try {
      return JSON.parse(readFileSync(this.#path, 'utf8')) as StoredState[];
    } catch (err: unknown) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  #save(states: readonly StoredState[]): void {
    // Atomic, so a kill -9 never leaves a torn table (the kernel's is never torn either).
    writeFileSync(`${this.#path}.tmp`, JSON.stringify(states));
    renameSync(`${this.#path}.tmp`, this.#path);
  }

  add(state: XfrmState): void {
    const states = this.list();
    if (states.some((s) => sameSlot(s.state, state))) throw new XfrmError({ errno: 17, operation: 'addState', object: `SA dst ${state.dst} spi ${state.spi}` });
    const { aead, ...rest } = state;
    states.push({ state: { ...rest, ...(aead ? { aead: { name: aead.name, key: Buffer.from(aead.key).toString('hex'), icvBits: aead.icvBits } } : {}) }, addTime: Math.floor(Date.now() / 1000) });
    this.#save(states);
  }

  delete(id: Pick<XfrmState, 'family' | 'dst' | 'spi' | 'proto' | 'mark'>): void {
    const states = this.list();
    const i = states.findIndex((s) => s.state.family === id.family && canonicalIp(s.state.dst) === canonicalIp(id.dst) && s.state.spi === id.spi &&
      s.state.proto === id.proto && (s.state.mark?.value ?? -1) === (id.mark?.value ?? -1));
    if (i < 0) throw new XfrmError({ errno: 3, operation: 'deleteState', object: `SA dst ${id.dst} spi ${id.spi}` });
    states.splice(i, 1);
    this.#save(states);
  }

  dump(): XfrmStateInfo[] {
    return this.list().map(({ state, addTime }) => {
      const { aead, ...rest } = state;
      const any = state.family === 4 ? '0.0.0.0/0' : '::/0';
      return {
        ...rest,
        ...(aead ? { aead: { name: aead.name, key: Uint8Array.from(Buffer.from(aead.key, 'hex')), icvBits: aead.icvBits } } : {}),
        selector: state.selector ?? { src: any, dst: any },
        replayWindow: state.replayWindow ?? 0,
        current: { bytes: 0, packets: 0, addTime, useTime: 0 },
        stats: { replayWindow: 0, replay: 0, integrityFailed: 0 },
        flags: 0,
        otherAttributes: [],
      };
    });
  }
}

export class HybridXfrmPort implements XfrmPort {
  readonly #socket: XfrmSocket;
  readonly #states: FileStateTable;

  constructor(socket: XfrmSocket, stateFile: string) {
    this.#socket = socket;
    this.#states = new FileStateTable(stateFile);
  }

  dumpStates(): Promise<readonly XfrmStateInfo[]> {
    return Promise.resolve(this.#states.dump());
  }

  dumpPolicies(): Promise<readonly XfrmPolicyInfo[]> {
    return this.#socket.dumpPolicies();
  }

  async apply(changes: readonly XfrmChange[]): Promise<readonly ChangeOutcome[]> {
    const out: ChangeOutcome[] = [];
    let policyRun: XfrmChange[] = [];
    const flush = async (): Promise<void> => {
      if (policyRun.length === 0) return;
      const results = await this.#socket.applyBatch(policyRun);
      results.forEach((r, i) => {
        const change = policyRun[i] as XfrmChange;
        out.push(r.ok ? { change } : { change, error: r.error });
      });
      policyRun = [];
    };
    for (const change of changes) {
      if (change.op === 'addPolicy' || change.op === 'updatePolicy' || change.op === 'deletePolicy') {
        policyRun.push(change);
        continue;
      }
      await flush();
      try {
        if (change.op === 'addState') this.#states.add(change.state);
        else if (change.op === 'deleteState') this.#states.delete(change.id);
        else throw new XfrmError({ errno: 95, operation: change.op, object: 'state' });
        out.push({ change });
      } catch (err: unknown) {
        out.push({ change, error: err instanceof Error ? err : new Error(String(err)) });
      }
    }
    await flush();
    return out;
  }
}
