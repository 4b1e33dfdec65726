/**
 * Tests of test/helpers/netns.ts (root): namespace lifecycle, veth pairs, commands and workers
 * inside a namespace, clean-up of namespaces left behind by dead test processes.
 */
import '../helpers/require-root.js';
import test from 'ava';
import { CommandError, runCommand } from '../../nodeplugin/command.js';
import { Netns, createVethPair, sweepStaleNetns, uniqueName, useNetns } from '../helpers/netns.js';
import { RemoteXfrm } from './remote.js';

const netns = useNetns(test);

async function netnsNames(): Promise<string[]> {
  return (await runCommand(['ip', 'netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0] ?? '').filter(Boolean);
}

test('uniqueName fits interface names and differs each call', (t) => {
  const names = new Set(Array.from({ length: 50 }, () => uniqueName('veth-long-prefix')));
  t.is(names.size, 50);
  for (const n of names) t.true(n.length <= 15, n);
  t.regex(uniqueName('a', 40), /^a-[a-z0-9]+-[0-9a-f]{8}$/);
});

test('a namespace is isolated, runs commands, and is gone after destroy', async (t) => {
  const ns = await netns.create('life');
  t.true((await netnsNames()).includes(ns.name));
  const links = await ns.ip('-o', 'link', 'show');
  t.regex(links, /^1: lo: <LOOPBACK,UP,LOWER_UP>/);
  t.is(links.trim().split('\n').length, 1, 'only lo in a fresh namespace');
  t.is((await ns.exec(['cat', '/proc/sys/net/ipv6/conf/default/accept_dad'])).stdout.trim(), '0');
  const err = await t.throwsAsync(ns.exec(['ip', 'link', 'show', 'nosuchdev']), { instanceOf: CommandError });
  t.regex(err.message, /nosuchdev/);
  t.not(err.code, 0);
  t.is((await ns.exec(['false'], { allowFailure: true })).code, 1);
  await ns.destroy();
  await ns.destroy(); // idempotent
  t.false((await netnsNames()).includes(ns.name));
  await t.throwsAsync(ns.exec(['true']), { message: /destroyed/ });
});

test('veth pair between namespaces carries TCP (IPv4 and IPv6); workers stop with their namespace', async (t) => {
  const [a, b] = await Promise.all([netns.create('va'), netns.create('vb')]);
  const [ifA, ifB] = [uniqueName('ve'), uniqueName('ve')];
  await createVethPair(
    { ns: a, name: ifA, addresses: ['172.31.250.1/30', 'fd99::1/64'] },
    { ns: b, name: ifB, addresses: ['172.31.250.2/30', 'fd99::2/64'], mtu: 1400 },
  );
  t.regex(await b.ip('link', 'show', ifB), /mtu 1400 .*state UP/);
  const [wa, wb] = await Promise.all([RemoteXfrm.open(a), RemoteXfrm.open(b)]);
  await wb.tcpEchoServer('172.31.250.2', 9000);
  await wb.tcpEchoServer('fd99::2', 9001);
  t.is(await wa.tcpRoundTrip('172.31.250.2', 9000, 100_000), 100_000);
  t.is(await wa.tcpRoundTrip('fd99::2', 9001, 100_000), 100_000);

  // errors thrown in the worker come back with their message
  await t.throwsAsync(wa.tcpRoundTrip('172.31.250.2', 9999, 10, 5000), { message: /ECONNREFUSED/ });

  // destroying the namespace stops its workers; pending and later calls fail
  await a.destroy();
  await t.throwsAsync(wa.dumpPolicies(), { message: /exited/ });
  t.is(a.children.size, 0);
  await wb.close();
});

test('sweepStaleNetns deletes only namespaces of dead helper processes', async (t) => {
  let deadPid = 4_000_000;
  for (;;) {
    try {
      process.kill(deadPid, 0);
      deadPid--;
    } catch {
      break;
    }
  }
  const stale = `kmt-stale-${deadPid.toString(36)}-0badc0de`;
  const mine = await Netns.create('alive');
  await runCommand(['ip', 'netns', 'add', stale]);
  try {
    const removed = await sweepStaleNetns();
    t.true(removed.includes(stale));
    const names = await netnsNames();
    t.false(names.includes(stale));
    t.true(names.includes(mine.name), 'a live process keeps its namespaces');
  } finally {
    await runCommand(['ip', 'netns', 'del', stale], { allowFailure: true });
    await mine.destroy();
  }
});
