/**
 * What the lab asks of the kernel, and what it reads back from outside the daemons with the
 * tools an operator would use: whether ESP with rfc4106(gcm(aes)) works here, our xfrm states
 * and policies in a node namespace (`ip xfrm`), and /proc/net/xfrm_stat. Keys are never kept:
 * a state's key becomes a short digest, enough to see a rekey.
 */
import { createHash, randomBytes } from 'node:crypto';
import { AEAD_ALGORITHM } from '../core/constants.js';
import { OWNED_REQID } from '../core/marks.js';
import { addNetns, deleteNetns, inNetns, ipIn, run } from './system.js';

export interface StateView {
  readonly src: string;
  readonly dst: string;
  readonly spi: number;
  readonly mark?: number;
  /** sha256 of the key, first 8 hex digits: equal keys, equal tags. */
  readonly keyTag: string;
}

export interface PolicyView {
  readonly dir: string;
  readonly src: string;
  readonly dst: string;
  readonly action: string;
  readonly mark: string;
  readonly tmplSrc: string;
  readonly tmplDst: string;
  readonly spi: number;
}

/** Splits `ip xfrm state|policy list` into one block per object. */
function blocks(text: string): string[] {
  return text.split(/\n(?=src )/).filter((b) => b.startsWith('src '));
}

const ours = (block: string): boolean => new RegExp(`\\breqid ${OWNED_REQID}\\b`).test(block);

/** Our SAs (reqid 0x6b6d) from `ip xfrm state list` output, sorted. */
export function parseStates(text: string): StateView[] {
  return blocks(text).filter(ours).map((block) => {
    const m = /^src (\S+) dst (\S+)/.exec(block);
    const spi = /\bspi (0x[0-9a-f]+)/.exec(block)?.[1];
    const mark = /\n\s*mark (0x[0-9a-f]+)/.exec(block)?.[1];
    const key = /\baead \S+ 0x([0-9a-f]+)/.exec(block)?.[1] ?? '';
    return {
      src: m?.[1] ?? '', dst: m?.[2] ?? '', spi: spi === undefined ? 0 : Number(spi), ...(mark === undefined ? {} : { mark: Number(mark) }),
      keyTag: createHash('sha256').update(key).digest('hex').slice(0, 8),
    };
  }).sort((a, b) => `${a.src}>${a.dst}/${a.spi}`.localeCompare(`${b.src}>${b.dst}/${b.spi}`));
}

/** Our policies from `ip xfrm policy list` output, sorted. */
export function parsePolicies(text: string): PolicyView[] {
  return blocks(text).filter(ours).map((block) => {
    const sel = /^src (\S+) dst (\S+)/.exec(block);
    const tmpl = /tmpl src (\S+) dst (\S+)/.exec(block);
    const spi = /\bspi (0x[0-9a-f]+)/.exec(block)?.[1];
    return {
      dir: /\bdir (\w+)/.exec(block)?.[1] ?? '',
      src: sel?.[1] ?? '',
      dst: sel?.[2] ?? '',
      action: /\baction (\w+)/.exec(block)?.[1] ?? 'allow',
      mark: /\bmark (\S+)/.exec(block)?.[1] ?? '',
      tmplSrc: tmpl?.[1] ?? '',
      tmplDst: tmpl?.[2] ?? '',
      spi: spi === undefined ? 0 : Number(spi),
    };
  }).sort((a, b) => `${a.dir}${a.dst}${a.src}`.localeCompare(`${b.dir}${b.dst}${b.src}`));
}

/** Non-zero counters of /proc/net/xfrm_stat. */
export function parseXfrmStat(text: string): Record<string, number> {
  const nonZero: Record<string, number> = {};
  for (const [k, v] of text.trim().split('\n').map((l) => l.trim().split(/\s+/))) if (k && v !== undefined && v !== '0') nonZero[k] = Number(v);
  return nonZero;
}

export async function statesIn(netns: string): Promise<StateView[]> {
  return parseStates(await ipIn(netns, 'xfrm', 'state', 'list'));
}

export async function policiesIn(netns: string): Promise<PolicyView[]> {
  return parsePolicies(await ipIn(netns, 'xfrm', 'policy', 'list'));
}

export async function xfrmErrorsIn(netns: string): Promise<Record<string, number>> {
  return parseXfrmStat((await run(inNetns(netns, ['cat', '/proc/net/xfrm_stat']))).stdout);
}

/**
 * Whether this kernel can hold ESP states with rfc4106(gcm(aes)), IPv4 and IPv6: one tries, in
 * a throw-away namespace (the modules load on demand). Resolves with the reason when not.
 */
export async function probeEsp(): Promise<{ readonly ok: true } | { readonly ok: false; readonly reason: string }> {
  const netns = `kml-probe-${process.pid}`;
  await deleteNetns(netns);
  try {
    await addNetns(netns);
    for (const [src, dst] of [['192.0.2.1', '192.0.2.2'], ['2001:db8::1', '2001:db8::2']] as const) {
      const r = await run(['ip', '-n', netns, 'xfrm', 'state', 'add', 'src', src, 'dst', dst, 'proto', 'esp', 'spi', '0x100', 'reqid', '1', 'mode', 'tunnel',
        'aead', AEAD_ALGORITHM, `0x${randomBytes(36).toString('hex')}`, '128'], { allowFailure: true });
      if (r.code !== 0) {
        const said = (r.stderr.trim().split('\n')[0] ?? '').replace(/^Error: /, '').replace(/\.$/, '') || `ip exited ${String(r.code)}`;
        return { ok: false, reason: `no ESP with ${AEAD_ALGORITHM} over ${src.includes(':') ? 'IPv6' : 'IPv4'} (ip xfrm state add: ${said})` };
      }
    }
    return { ok: true };
  } catch (err: unknown) {
    return { ok: false, reason: err instanceof Error ? err.message.split('\n')[0] ?? '' : String(err) };
  } finally {
    await deleteNetns(netns);
  }
}
