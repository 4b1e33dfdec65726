import test from 'ava';
import { type DemoReport, demoOk, renderDemoReport } from '../../lab/demo-report.js';

const base: Omit<DemoReport, 'ok'> = {
  nodes: 3, kernel: '6.1.0-28-amd64', inVm: true, totalSeconds: 312.4,
  pairs: [
    { from: 'demo/pod-1-2', to: 'demo/pod-2-2', managed: true, encrypted: true, spis: [1] },
    { from: 'plain/plain-1', to: 'demo/pod-2-2', managed: false, encrypted: false, spis: [] },
  ],
  rotation: { fromSpi: 1, toSpi: 2, streams: 6, sent: 4212, lost: 0, convergeSeconds: 6.25, spisAfter: [2] },
  malformed: { refused: true, message: 'Error from server: admission webhook "secrets.ipsec.kmesh.net" denied the request: ...' },
  reboot: { node: 'node2', convergeSeconds: 14, pairsEncrypted: true },
  removal: { node: 'node3', convergeSeconds: 3.14 },
};

test('a report a person reads at a glance', (t) => {
  const text = renderDemoReport({ ...base, ok: demoOk(base) });
  t.is(text, `kmesh-ipsec lab demo: 3 nodes, kernel 6.1.0-28-amd64 (in the kernel VM), 312.4 s: every check held

Pod to pod over TCP, captured on the wire:
  from           to             encrypted  SPI on the wire
  demo/pod-1-2   demo/pod-2-2   yes        1
  plain/plain-1  demo/pod-2-2   no         -   (namespace not managed by Kmesh: clear, as configured)

Key rotation under traffic (SPI 1 -> 2, kmesh-ipsec secret create):
  6 UDP streams: 4212 datagrams sent, 0 lost; converged in 6.3 s; SPI on the wire afterwards: 2
Malformed secret (kubectl apply): refused
  Error from server: admission webhook "secrets.ipsec.kmesh.net" denied the request: ...
Node reboot (node2, new boot ID): converged in 14.0 s; every pair encrypted again
Node removal (node3): converged in 3.1 s; no node keeps state for it
`);
});

test('any failed check makes the report say so', (t) => {
  t.true(demoOk(base));
  for (const bad of [
    { ...base, pairs: [{ ...base.pairs[0]!, encrypted: false }] },
    { ...base, pairs: [{ ...base.pairs[1]!, encrypted: true }] },
    { ...base, rotation: { ...base.rotation, lost: 1 } },
    { ...base, rotation: { ...base.rotation, sent: 0 } },
    { ...base, rotation: { ...base.rotation, spisAfter: [1, 2] } },
    { ...base, malformed: { ...base.malformed, refused: false } },
    { ...base, reboot: { ...base.reboot, pairsEncrypted: false } },
  ]) t.false(demoOk(bad));
  t.regex(renderDemoReport({ ...base, ok: false }), /: SOME CHECKS FAILED\n/);
});
