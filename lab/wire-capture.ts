/**
 * tcpdump on every port of a wire bridge (`-i any` inside the wire namespace: the bridge device
 * itself only sees frames addressed to it), around a piece of work. Returns the raw capture, in
 * which a plaintext marker can be searched byte for byte, and tcpdump's text view, in which
 * ESP and its SPI can be read.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { run } from './system.js';

export interface Capture<T> {
  readonly result: T;
  readonly pcap: Buffer;
  readonly text: string;
}

/** Captures on the wire namespace at `netnsPath` (/run/netns/NAME) while `fn` runs. */
export async function captureWire<T>(netnsPath: string, fn: () => Promise<T>): Promise<Capture<T>> {
  const file = join(tmpdir(), `kmesh-wire-${randomBytes(4).toString('hex')}.pcap`);
  const dump = spawn('nsenter', [`--net=${netnsPath}`, '--', 'tcpdump', '-i', 'any', '-nn', '-U', '--immediate-mode', '-s', '0', '-w', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let said = '';
    const timer = setTimeout(() => { reject(new Error(`tcpdump did not start: ${said.trim()}`)); }, 60_000);
    dump.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`tcpdump exited (${String(code)}): ${said.trim()}`));
    });
    dump.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    dump.stderr.on('data', (d: Buffer) => {
      said += d.toString();
      if (said.includes('listening on')) {
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
    const text = (await run(['tcpdump', '-r', file, '-nn'], { allowFailure: true })).stdout;
    rmSync(file, { force: true });
    return { pcap, text };
  };
  try {
    const result = await fn();
    // Packets still in flight when fn returned.
    await sleep(500);
    return { result, ...(await stop()) };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Source and destination of a packet line (a port, if any, dropped). */
function endpoints(line: string): [string, string] | undefined {
  const m = / IP (\d+\.\d+\.\d+\.\d+)(?:\.\d+)? > (\d+\.\d+\.\d+\.\d+)(?:\.\d+)?: /.exec(line) ?? / IP6 ([0-9a-f:]+)(?:\.\d+)? > ([0-9a-f:]+)(?:\.\d+)?: /.exec(line);
  return m === null ? undefined : [m[1] ?? '', m[2] ?? ''];
}

/** IP packets in a capture's text view between two of `addresses` (node-to-node traffic). */
export function packetsBetween(text: string, addresses: readonly string[]): string[] {
  const set = new Set(addresses);
  return text.split('\n').filter((l) => {
    const e = endpoints(l);
    return e !== undefined && set.has(e[0]) && set.has(e[1]);
  });
}

/** SPIs of the ESP packets from `src` to `dst` in a capture's text view. */
export function espSpis(text: string, src: string, dst: string): number[] {
  const spis = new Set<number>();
  for (const line of text.split('\n')) {
    const e = endpoints(line);
    if (e?.[0] !== src || e[1] !== dst) continue;
    const spi = /: ESP\(spi=(0x[0-9a-f]+),/.exec(line)?.[1];
    if (spi !== undefined) spis.add(Number(spi));
  }
  return [...spis].sort((a, b) => a - b);
}
