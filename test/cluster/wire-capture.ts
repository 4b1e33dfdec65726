/**
 * tcpdump on every port of a wire bridge (`-i any` inside the wire namespace: the bridge device
 * itself only sees frames addressed to it), around a piece of work. Returns the raw capture, in
 * which a plaintext marker can be searched byte for byte, and tcpdump's text view, in which
 * ESP and its SPI can be read.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { runCommand } from '../../nodeplugin/command.js';
import type { Netns } from '../helpers/netns.js';

export interface Capture<T> {
  readonly result: T;
  readonly pcap: Buffer;
  readonly text: string;
}

export async function captureWire<T>(wire: Netns, fn: () => Promise<T>): Promise<Capture<T>> {
  const file = `/tmp/kmesh-wire-${randomBytes(4).toString('hex')}.pcap`;
  const dump = spawn('nsenter', [`--net=${wire.path}`, '--', 'tcpdump', '-i', 'any', '-nn', '-U', '--immediate-mode', '-s', '0', '-w', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error('tcpdump did not start')); }, 60_000);
    dump.stderr.on('data', (d: Buffer) => {
      if (d.toString().includes('listening on')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  const stop = async (): Promise<{ pcap: Buffer; text: string }> => {
    const exited = new Promise((r) => dump.once('exit', r));
    dump.kill('SIGINT');
    await exited;
    const pcap = readFileSync(file);
    const text = (await runCommand(['tcpdump', '-r', file, '-nn'], { allowFailure: true })).stdout;
    rmSync(file, { force: true });
    return { pcap, text };
  };
  try {
    const result = await fn();
    await sleep(500);
    return { result, ...(await stop()) };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** IP packets in a capture's text view between two of `addresses` (node-to-node traffic). */
export function packetsBetween(text: string, addresses: readonly string[]): string[] {
  const set = new Set(addresses);
  return text.split('\n').filter((l) => {
    const m = / IP (\d+\.\d+\.\d+\.\d+)(?:\.\d+)? > (\d+\.\d+\.\d+\.\d+)(?:\.\d+)?: /.exec(l) ?? / IP6 ([0-9a-f:]+)(?:\.\d+)? > ([0-9a-f:]+)(?:\.\d+)?: /.exec(l);
    return m !== null && set.has(m[1] ?? '') && set.has(m[2] ?? '');
  });
}
