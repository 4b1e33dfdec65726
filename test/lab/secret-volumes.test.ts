// The lab's kubelet stand-in: Secret volumes follow the Secret in the local API.
import test from 'ava';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalApi, type LocalApi } from '../../localapi/index.js';
import { SecretVolumes } from '../../lab/secret-volumes.js';

const secret = (text: string) => ({
  apiVersion: 'v1', kind: 'Secret', metadata: { name: 'kmesh-ipsec', namespace: 'kmesh-system' }, data: { ipSec: Buffer.from(text).toString('base64') },
});
const read = (dir: string): string | undefined => (existsSync(join(dir, 'ipSec')) ? readFileSync(join(dir, 'ipSec'), 'utf8') : undefined);

async function eventually(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`never: ${what}`);
}

let api: LocalApi;
let root: string;
test.before(async () => {
  api = await startLocalApi();
  root = mkdtempSync(join(tmpdir(), 'kmesh-volumes-'));
});
test.after.always(async () => {
  await api.close();
  rmSync(root, { recursive: true, force: true });
});

test.serial('volumes follow the Secret node by node; a held node keeps its content until released; a deleted Node is left alone', async (t) => {
  const dirs = { node1: join(root, 'n1'), node2: join(root, 'n2') };
  for (const name of ['node1', 'node2']) await api.store.put({ apiVersion: 'v1', kind: 'Node', metadata: { name } });
  const volumes = new SecretVolumes(api.store, dirs, 20);
  await volumes.start();
  t.true(existsSync(dirs.node1) && read(dirs.node1) === undefined, 'no Secret: an empty (optional) volume');

  await api.store.put(secret('one'));
  await eventually(() => read(dirs.node1) === 'one' && read(dirs.node2) === 'one', 'both volumes hold the first Secret');
  t.true(existsSync(join(dirs.node1, '..data')), 'written the kubelet way');

  volumes.hold('node2');
  await api.store.put(secret('two'));
  await eventually(() => read(dirs.node1) === 'two', 'node1 gets the new Secret');
  t.is(read(dirs.node2), 'one', 'the held node keeps the old one');
  await volumes.release('node2');
  t.is(read(dirs.node2), 'two');

  await api.store.delete('nodes', undefined, 'node1');
  await api.store.put(secret('three'));
  await eventually(() => read(dirs.node2) === 'three', 'node2 follows');
  t.is(read(dirs.node1), 'two', 'a deleted Node\'s volume is not written');

  rmSync(dirs.node2, { recursive: true });
  await volumes.add('node2', dirs.node2);
  t.is(read(dirs.node2), 'three', 'a volume emptied by a reboot is written again at once');
  t.throws(() => { volumes.hold('node9'); }, { message: 'no Secret volume for node "node9"' });
  volumes.stop();
});
