/**
 * Which KmeshNodeInfos a node plugin uses. A peer is used only if its spec is valid and its
 * validity stamp verifies against the published JWKS, names that node, matches that spec and
 * is within its lifetime (docs/trust-chain.md). Everything else is refused with a reason, and
 * its claimed pod CIDRs are passed on only so that a pair that was encrypted can be blocked
 * rather than fall back to clear text.
 *
 * Signature checks are cached per (object, stamp, JWKS): a resync with nothing new verifies
 * nothing again, only re-checks the times.
 */
import { DEFAULT_CLOCK_SKEW_SECONDS, type StampClaims, type StampKeyRing, StampFailure, verifyStamp } from '../../core/stamp.js';
import { VALIDITY_ANNOTATION } from '../../core/constants.js';
import { canonicalJson } from '../../core/canonical-json.js';
import { type KmeshNodeInfoSpec, validateNodeInfoSpec } from '../../core/nodeinfo.js';
import { formatErrors } from '../../core/result.js';
import { safeText } from '../../core/safe-text.js';
import type { PeerNode } from '../../core/plan.js';

/** Reasons a peer is refused: a stamp failure, or one of these. */
export type PeerRefusal = StampFailure | 'invalid-spec' | 'no-jwks';

export type PeerVerdict =
  | { readonly name: string; readonly used: true; readonly peer: PeerNode; readonly claims: StampClaims }
  | { readonly name: string; readonly used: false; readonly reason: PeerRefusal; readonly message: string; readonly claimed?: PeerNode };

export interface TrustInput {
  /** KmeshNodeInfo objects as the API returns them (not trusted in any way). */
  readonly objects: readonly unknown[];
  readonly localName: string;
  /** The JWKS's keys, or undefined while no valid JWKS is loaded. */
  readonly ring: StampKeyRing | undefined;
  /** Changes whenever `ring` does, so cached verifications are dropped. */
  readonly ringVersion: number;
  /** Seconds since the epoch. */
  readonly now: number;
  readonly clockSkewSeconds?: number;
}

interface Cached {
  readonly fingerprint: string;
  readonly verdict: PeerVerdict;
}

export class PeerTrust {
  readonly #cache = new Map<string, Cached>();

  async classify(input: TrustInput): Promise<PeerVerdict[]> {
    const verdicts: PeerVerdict[] = [];
    const seen = new Set<string>();
    for (const obj of input.objects) {
      const meta = readMeta(obj);
      if (!meta || meta.name === input.localName || seen.has(meta.name)) continue;
      seen.add(meta.name);
      verdicts.push(await this.#verdict(meta, obj, input));
    }
    for (const name of [...this.#cache.keys()]) if (!seen.has(name)) this.#cache.delete(name);
    return verdicts.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async #verdict(meta: { name: string; token: unknown }, obj: unknown, input: TrustInput): Promise<PeerVerdict> {
    const rawSpec = (obj as { spec?: unknown }).spec;
    const claimed = claimedPeer(meta.name, rawSpec);
    const spec = validateNodeInfoSpec(rawSpec);
    if (!spec.ok) return refused(meta.name, 'invalid-spec', formatErrors(spec.errors), claimed);
    if (!input.ring) return refused(meta.name, 'no-jwks', 'no valid stamp JWKS is loaded, so no peer can be trusted', claimed);
    const fingerprint = `${input.ringVersion}|${typeof meta.token === 'string' ? meta.token : ''}|${canonicalJson(spec.value)}`;
    const cached = this.#cache.get(meta.name);
    let verdict: PeerVerdict;
    if (cached?.fingerprint === fingerprint) verdict = cached.verdict;
    else {
      verdict = await verify(meta.name, meta.token, spec.value, input);
      this.#cache.set(meta.name, { fingerprint, verdict });
    }
    return verdict.used ? checkTimes(verdict, input) : verdict;
  }
}

async function verify(name: string, token: unknown, spec: KmeshNodeInfoSpec, input: TrustInput): Promise<PeerVerdict> {
  // Signature and binding do not change with time, lifetimes do: verify with an unbounded skew
  // so the cached result is time-free, and check the lifetime on every use (checkTimes).
  const v = await verifyStamp(token, { nodeName: name, spec }, input.ring ?? new Map(), { now: input.now, clockSkewSeconds: Number.MAX_SAFE_INTEGER });
  const peer: PeerNode = { name, spec };
  if (v.ok) return { name, used: true, peer, claims: v.claims };
  return refused(name, v.reason, v.message, peer);
}

function checkTimes(verdict: Extract<PeerVerdict, { used: true }>, input: TrustInput): PeerVerdict {
  const skew = input.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS;
  const { claims } = verdict;
  if (input.now > claims.exp + skew) return refused(verdict.name, StampFailure.Expired, `stamp expired at ${new Date(claims.exp * 1000).toISOString()}; the peer must re-publish its KmeshNodeInfo`, verdict.peer);
  if (input.now + skew < claims.nbf) return refused(verdict.name, StampFailure.NotYetValid, `stamp not valid before ${new Date(claims.nbf * 1000).toISOString()}; check the clocks`, verdict.peer);
  return verdict;
}

/** Longest refusal message kept: it is logged, raised as an Event and shown by `status`. */
const MAX_REFUSAL_CHARS = 1024;

function refused(name: string, reason: PeerRefusal, message: string, claimed: PeerNode | undefined): PeerVerdict {
  // The message quotes what the peer's object holds: escaped and bounded once, here.
  return { name, used: false, reason, message: safeText(message, MAX_REFUSAL_CHARS), ...(claimed ? { claimed } : {}) };
}

function readMeta(obj: unknown): { name: string; token: unknown } | undefined {
  if (typeof obj !== 'object' || obj === null) return undefined;
  const metadata = (obj as { metadata?: { name?: unknown; annotations?: Record<string, unknown> } }).metadata;
  if (typeof metadata?.name !== 'string') return undefined;
  return { name: metadata.name, token: metadata.annotations?.[VALIDITY_ANNOTATION] };
}

/**
 * What an untrusted spec claims, for blocking only: its pod CIDRs as strings (garbage is
 * filtered out later). Nothing else of it is used.
 */
function claimedPeer(name: string, spec: unknown): PeerNode | undefined {
  if (typeof spec !== 'object' || spec === null) return undefined;
  const cidrs = (spec as { podCIDRS?: unknown }).podCIDRS;
  if (!Array.isArray(cidrs)) return undefined;
  const podCIDRS = cidrs.filter((c): c is string => typeof c === 'string').slice(0, 64);
  return { name, spec: { spi: 0, addresses: [], bootID: '', podCIDRS } };
}
