/** How the CLI shows the cluster key view: an aligned table with a verdict line, or JSON. */
import { type ClusterKeyView, type NodeCondition, type NodeKeyStatus, StampState, isoTime } from '../core/cluster-keys.js';
import type { SecretSighting } from './secret-store.js';

const HEADERS = ['NODE', 'SPI', 'STAMP EXPIRES', 'READY', 'KEY-IN-SYNC', 'MESSAGE'] as const;

/** One line per node, then `<verdict>: <summary>`. `now` in seconds since the epoch. */
export function renderClusterText(view: ClusterKeyView, now: number): string {
  const verdict = `${view.verdict}: ${view.summary}\n`;
  if (view.nodes.length === 0) return verdict;
  const rows = view.nodes.map((n) => [n.name, n.spi === undefined ? '-' : String(n.spi), stampCell(n, now), conditionCell(n.ready), conditionCell(n.keyInSync), n.notes.join('; ')]);
  return `${alignColumns([[...HEADERS], ...rows])}${verdict}`;
}

/** The same facts as data: times in RFC 3339, absent values as null. */
export function clusterJson(view: ClusterKeyView, secret: SecretSighting): unknown {
  return {
    verdict: view.verdict,
    summary: view.summary,
    secret,
    targetSpi: view.targetSpi,
    nodes: view.nodes.map((n) => ({
      name: n.name,
      spi: n.spi ?? null,
      state: n.state,
      stamp: { state: n.stamp.state, expiresAt: n.stamp.expiresAt === undefined ? null : isoTime(n.stamp.expiresAt) },
      ready: n.ready ?? null,
      keyInSync: n.keyInSync ?? null,
      notes: n.notes,
    })),
  };
}

/** "node-b on SPI 3", "node-c has no key": a node a rotation waits for, for one-line messages. */
export function describeHoldout(n: { readonly name: string; readonly spi?: number | null }): string {
  if (n.spi === undefined || n.spi === null) return `${n.name} has an invalid spec`;
  if (n.spi === 0) return `${n.name} has no key`;
  return `${n.name} on SPI ${n.spi}`;
}

function stampCell(n: NodeKeyStatus, now: number): string {
  if (n.stamp.state === StampState.Missing) return 'none';
  if (n.stamp.state === StampState.Malformed || n.stamp.expiresAt === undefined) return 'unreadable';
  const left = n.stamp.expiresAt - now;
  return left > 0 ? `in ${formatDuration(left)}` : `expired ${formatDuration(-left)} ago`;
}

function conditionCell(c: NodeCondition | undefined): string {
  if (!c) return '-';
  return c.stale ? `${c.status} (stale)` : c.status;
}

/** kubectl-style durations: 45s, 5m3s, 23h59m, 2d3h. */
export function formatDuration(seconds: number): string {
  const s = Math.floor(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return compound(Math.floor(s / 60), 'm', s % 60, 's');
  if (s < 86_400) return compound(Math.floor(s / 3600), 'h', Math.floor((s % 3600) / 60), 'm');
  return compound(Math.floor(s / 86_400), 'd', Math.floor((s % 86_400) / 3600), 'h');
}

function compound(major: number, majorUnit: string, minor: number, minorUnit: string): string {
  return minor === 0 ? `${major}${majorUnit}` : `${major}${majorUnit}${minor}${minorUnit}`;
}

/** Columns padded to their widest cell, two spaces apart, no trailing blanks. */
export function alignColumns(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => `${row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd()}\n`).join('');
}
