/** The report of `kmesh-ipsec lab demo`: its data (`--json`) and how a person reads it. Pure. */

export interface PairResult {
  readonly from: string;
  readonly to: string;
  /** The sender's namespace is labelled for Kmesh: its traffic must be encrypted. */
  readonly managed: boolean;
  /** ESP between the two nodes and the payload nowhere in clear on the wire. */
  readonly encrypted: boolean;
  /** SPIs of the ESP packets from the sender's node to the receiver's during the exchange; none when the payload was seen in clear. */
  readonly spis: readonly number[];
}

export interface DemoReport {
  readonly nodes: number;
  readonly kernel: string;
  readonly inVm: boolean;
  readonly pairs: readonly PairResult[];
  readonly rotation: {
    readonly fromSpi: number;
    readonly toSpi: number;
    readonly streams: number;
    readonly sent: number;
    readonly lost: number;
    readonly convergeSeconds: number;
    /** SPIs on the wire after the rotation converged. */
    readonly spisAfter: readonly number[];
  };
  readonly malformed: { readonly refused: boolean; readonly message: string };
  readonly reboot: { readonly node: string; readonly convergeSeconds: number; readonly pairsEncrypted: boolean };
  readonly removal: { readonly node: string; readonly convergeSeconds: number };
  readonly totalSeconds: number;
  /** Every check held: managed pairs encrypted, others in clear, nothing lost, malformed refused. */
  readonly ok: boolean;
}

export function demoOk(r: Omit<DemoReport, 'ok'>): boolean {
  return r.pairs.every((p) => p.encrypted === p.managed) && r.rotation.lost === 0 && r.rotation.sent > 0 &&
    !r.rotation.spisAfter.includes(r.rotation.fromSpi) && r.malformed.refused && r.reboot.pairsEncrypted;
}

const seconds = (s: number): string => `${s.toFixed(1)} s`;
const spiList = (spis: readonly number[]): string => (spis.length === 0 ? '-' : spis.join(', '));

export function renderDemoReport(r: DemoReport): string {
  const width = Math.max(4, ...r.pairs.flatMap((p) => [p.from.length, p.to.length]));
  const pad = (s: string): string => s.padEnd(width + 2);
  const lines = [
    `kmesh-ipsec lab demo: ${r.nodes} nodes, kernel ${r.kernel}${r.inVm ? ' (in the kernel VM)' : ''}, ${seconds(r.totalSeconds)}: ${r.ok ? 'every check held' : 'SOME CHECKS FAILED'}`,
    '',
    'Pod to pod over TCP, captured on the wire:',
    `  ${pad('from')}${pad('to')}encrypted  SPI on the wire`,
    ...r.pairs.map((p) => `  ${pad(p.from)}${pad(p.to)}${(p.encrypted ? 'yes' : 'no').padEnd(11)}${spiList(p.spis)}${p.managed ? '' : '   (namespace not managed by Kmesh: clear, as configured)'}`),
    '',
    `Key rotation under traffic (SPI ${r.rotation.fromSpi} -> ${r.rotation.toSpi}, kmesh-ipsec secret create):`,
    `  ${r.rotation.streams} UDP streams: ${r.rotation.sent} datagrams sent, ${r.rotation.lost} lost; converged in ${seconds(r.rotation.convergeSeconds)}; SPI on the wire afterwards: ${spiList(r.rotation.spisAfter)}`,
    `Malformed secret (kubectl apply): ${r.malformed.refused ? 'refused' : 'ACCEPTED'}`,
    `  ${r.malformed.message}`,
    `Node reboot (${r.reboot.node}, new boot ID): converged in ${seconds(r.reboot.convergeSeconds)}; every pair ${r.reboot.pairsEncrypted ? 'encrypted again' : 'NOT all encrypted'}`,
    `Node removal (${r.removal.node}): converged in ${seconds(r.removal.convergeSeconds)}; no node keeps state for it`,
  ];
  return `${lines.join('\n')}\n`;
}
