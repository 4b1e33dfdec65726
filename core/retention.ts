/**
 * When an inbound SPI may go. After a rotation, peers keep sending with the old SPI until they
 * load the new key and see that we advertise it. An old inbound SPI therefore stays until every
 * peer advertises at least our current SPI, and then for a grace period more (packets in
 * flight, peers whose informer lags). Pure: the caller keeps the returned clock state.
 */
export interface RetentionInput {
  /** SPI this node advertises (its newest key); 0 when it has none. */
  readonly localSpi: number;
  /** SPIs accepted inbound until now (including ones adopted from the kernel after a restart). */
  readonly accepted: readonly number[];
  /** SPIs the peers advertise right now. */
  readonly peerSpis: readonly number[];
  /** When each old SPI became unused (ms since epoch); from the previous call. */
  readonly unusedSince: ReadonlyMap<number, number>;
  readonly now: number;
  readonly graceMs: number;
}

export interface RetentionResult {
  /** SPIs to accept inbound, ascending. */
  readonly keep: readonly number[];
  readonly unusedSince: ReadonlyMap<number, number>;
  /** Earliest time a kept old SPI becomes removable, so the caller can schedule a reconcile. */
  readonly nextExpiry?: number;
}

export function inboundSpisToKeep(input: RetentionInput): RetentionResult {
  const { localSpi, now, graceMs } = input;
  const keep = new Set<number>();
  // Without any key (a restart while the Secret is missing) nothing can replace what the kernel
  // holds, so every accepted SPI stays and no clock runs: removing them would only break peers.
  if (localSpi <= 0) return { keep: [...new Set(input.accepted.filter((s) => s > 0))].sort((a, b) => a - b), unusedSince: new Map() };
  keep.add(localSpi);
  const unusedSince = new Map<number, number>();
  const allCaughtUp = input.peerSpis.every((s) => s >= localSpi);
  let nextExpiry: number | undefined;
  for (const spi of input.accepted) {
    if (spi <= 0 || spi >= localSpi) continue;
    if (!allCaughtUp) {
      keep.add(spi); // some peer may still send with it: the clock does not run
      continue;
    }
    const since = input.unusedSince.get(spi) ?? now;
    const expiry = since + graceMs;
    if (expiry <= now) continue;
    keep.add(spi);
    unusedSince.set(spi, since);
    nextExpiry = nextExpiry === undefined ? expiry : Math.min(nextExpiry, expiry);
  }
  return { keep: [...keep].sort((a, b) => a - b), unusedSince, ...(nextExpiry === undefined ? {} : { nextExpiry }) };
}
