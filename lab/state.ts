/**
 * What a lab leaves behind, recorded in <dir>/lab.json before it is made (a namespace is
 * recorded, then created), so that `lab down` finds everything even after `lab up` was killed
 * half way. One lab command at a time per lab directory (a lock directory with the owner's pid).
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ProcessId } from './system.js';
import type { LabPlan, NodePlan } from './topology.js';

export const STATE_FILE = 'lab.json';

export interface ProcessRecord extends ProcessId {
  /** What it is: api, webhook, node (the plugin daemon of a node), pod. */
  readonly role: 'api' | 'webhook' | 'node' | 'pod';
  /** Node or pod name (the API and the webhook: their role). */
  readonly name: string;
}

export interface LabState {
  readonly version: 1;
  readonly id: string;
  readonly dir: string;
  readonly createdAt: string;
  readonly plan: LabPlan;
  /** Nodes of the plan still in the cluster (removal takes them out). */
  nodes: NodePlan[];
  /** Every namespace ever created for this lab (recorded before creation). */
  netns: string[];
  /** The private bpffs mount, once recorded. */
  bpffs?: string;
  /** Running processes by key (`node/node1`, `pod/pod-1-2`, `api`, `webhook`). */
  processes: Record<string, ProcessRecord>;
  apiPort?: number;
  webhookPort?: number;
  /** Set once `lab up` finished. */
  ready: boolean;
}

export function statePath(dir: string): string {
  return join(dir, STATE_FILE);
}

/** The lab recorded in `dir`, or undefined when there is none. Throws on a file that is not ours. */
export function readState(dir: string): LabState | undefined {
  let text: string;
  try {
    text = readFileSync(statePath(dir), 'utf8');
  } catch (err: unknown) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const state = JSON.parse(text) as Partial<LabState>;
  if (state.version !== 1 || typeof state.id !== 'string' || !Array.isArray(state.netns)) throw new Error(`${statePath(dir)}: not a lab state file`);
  return state as LabState;
}

/** Writes the state atomically (a reader never sees half a file). */
export function writeState(state: LabState): void {
  const file = statePath(state.dir);
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, file);
}

/**
 * Runs `fn` holding the lab's lock. A lock left by a process that is gone is taken over; one
 * held by a live process is an error naming it.
 */
export async function withLabLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const lock = join(dir, 'lab.lock');
  const owner = join(lock, 'pid');
  for (let attempt = 0; ; attempt++) {
    try {
      mkdirSync(lock, { mode: 0o700 });
      writeFileSync(owner, String(process.pid));
      break;
    } catch (err: unknown) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
      const pid = Number(readFileOr(owner, ''));
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new Error(`another lab command (pid ${pid}) is working on ${dir}; wait for it or stop it`, { cause: err });
      }
      rmSync(lock, { recursive: true, force: true });
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function readFileOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err: unknown) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
