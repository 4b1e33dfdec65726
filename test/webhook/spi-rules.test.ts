/**
 * The SPI rules as the validating webhook applies them, over HTTPS: transitions on UPDATE, and
 * on CREATE (and on any UPDATE that moves the SPI) freshness against what KmeshNodeInfos still
 * advertise, failing closed while that is unknown.
 */
import test from 'ava';
import { StaticClusterView } from '../../webhook/cluster-view.js';
import { KEY1, KEY2, type TestWebhook, advertised, ipsecSecret, ipsecValue, responseOf, secretReview, startWebhook } from './helpers.js';

let hook: TestWebhook;
const view = new StaticClusterView({ nodeInfos: [] });
test.before(async () => {
  hook = await startWebhook({ view });
});
test.after.always(async () => {
  await hook.close();
});

interface Row {
  readonly name: string;
  /** Stored secret (UPDATE) or none (CREATE). */
  readonly current?: { spi: number; key: Buffer } | 'invalid';
  readonly next: { spi: number; key: Buffer };
  /** SPIs in KmeshNodeInfos; undefined = cache not synced. */
  readonly advertised: number[] | undefined;
  readonly allowed: boolean;
  readonly code?: number;
  readonly message?: RegExp;
  readonly warning?: RegExp;
}

const rows: Row[] = [
  { name: 'first secret in a new cluster', next: { spi: 1, key: KEY1 }, advertised: [], allowed: true },
  { name: 'first secret, nodes report 0 (no key yet)', next: { spi: 1, key: KEY1 }, advertised: [0, 0, 0], allowed: true },
  { name: 're-created after delete at SPI 1 (kmeshctl default)', next: { spi: 1, key: KEY2 }, advertised: [4, 4, 3], allowed: false, code: 422, message: /must be above 4, the highest SPI nodes still advertise .*use 5/ },
  { name: 're-created after delete at the advertised SPI', next: { spi: 4, key: KEY2 }, advertised: [4, 4], allowed: false, code: 422, message: /use 5/ },
  { name: 're-created after delete above every advertised SPI', next: { spi: 5, key: KEY2 }, advertised: [4, 3], allowed: true },
  { name: 'CREATE while the cache is not synced fails closed', next: { spi: 9, key: KEY1 }, advertised: undefined, allowed: false, code: 503, message: /cannot check it against the SPIs nodes advertise yet .*retry in a few seconds/ },
  { name: 'rotation N to N+1 with a new key', current: { spi: 4, key: KEY1 }, next: { spi: 5, key: KEY2 }, advertised: [4, 4], allowed: true },
  { name: 'rotation skipping SPIs', current: { spi: 4, key: KEY1 }, next: { spi: 40, key: KEY2 }, advertised: [4], allowed: true },
  { name: 'rotation while half the nodes already moved on', current: { spi: 5, key: KEY2 }, next: { spi: 6, key: KEY1 }, advertised: [4, 5, 5], allowed: true },
  { name: 'no-op update (labels, annotations)', current: { spi: 4, key: KEY1 }, next: { spi: 4, key: KEY1 }, advertised: [4], allowed: true },
  { name: 'no-op update needs no cache', current: { spi: 4, key: KEY1 }, next: { spi: 4, key: KEY1 }, advertised: undefined, allowed: true },
  { name: 'SPI down', current: { spi: 4, key: KEY1 }, next: { spi: 3, key: KEY2 }, advertised: [4], allowed: false, code: 422, message: /must not go down: the current SPI is 4, this sets 3; use 5 with a new key/ },
  { name: 'SPI down, same key', current: { spi: 4, key: KEY1 }, next: { spi: 1, key: KEY1 }, advertised: [4], allowed: false, message: /must not go down/ },
  { name: 'new key, same SPI', current: { spi: 4, key: KEY1 }, next: { spi: 4, key: KEY2 }, advertised: [4], allowed: false, message: /a new key needs a higher SPI: set spi to 5/ },
  { name: 'same key, higher SPI', current: { spi: 4, key: KEY1 }, next: { spi: 5, key: KEY1 }, advertised: [4], allowed: false, message: /data\.ipSec\.aeadKey: a higher SPI must come with a new key; this is the key of SPI 4/ },
  { name: 'rotation onto an SPI a stale node still advertises', current: { spi: 2, key: KEY1 }, next: { spi: 3, key: KEY2 }, advertised: [2, 7], allowed: false, message: /must be above 7.*use 8/ },
  { name: 'rotation while the cache is not synced fails closed', current: { spi: 2, key: KEY1 }, next: { spi: 3, key: KEY2 }, advertised: undefined, allowed: false, code: 503 },
  { name: 'stored secret invalid: checked against advertisements, with a warning', current: 'invalid', next: { spi: 3, key: KEY2 }, advertised: [2], allowed: true, warning: /stored Secret kmesh-system\/kmesh-ipsec is invalid/ },
  { name: 'stored secret invalid and the new SPI stale', current: 'invalid', next: { spi: 2, key: KEY2 }, advertised: [2], allowed: false, message: /must be above 2/ },
  { name: 'at the top of the SPI space nothing can be fresher', next: { spi: 0x7fffffff, key: KEY1 }, advertised: [0x7fffffff], allowed: false, message: /no higher SPI is left|none is left/ },
];

// One shared view: rows run one after another.
for (const row of rows) {
  test.serial(`${row.allowed ? 'allowed' : 'denied'}: ${row.name}`, async (t) => {
    view.setNodeInfos(row.advertised?.map((spi, i) => advertised(`node-${i}`, spi)));
    const object = ipsecSecret(ipsecValue(row.next.spi, row.next.key));
    const body = row.current === undefined
      ? secretReview({ object })
      : secretReview({ operation: 'UPDATE', object, oldObject: row.current === 'invalid' ? ipsecSecret('{') : ipsecSecret(ipsecValue(row.current.spi, row.current.key)) });
    const response = responseOf(await hook.post('/validate', body));
    t.is(response.allowed, row.allowed, response.status?.message);
    if (row.code !== undefined) t.is(response.status?.code, row.code);
    if (row.message) t.regex(response.status?.message ?? '', row.message);
    if (row.warning) t.regex((response.warnings ?? []).join('\n'), row.warning);
  });
}

test.serial('readiness follows the cache', async (t) => {
  view.setNodeInfos(undefined);
  const notReady = await hook.post('/readyz', undefined, { method: 'GET' });
  t.is(notReady.status, 503);
  t.regex(notReady.text, /not ready: kmeshnodeinfo-cache/);
  const metrics = await hook.post('/metrics', undefined, { method: 'GET' });
  t.regex(metrics.text, /kmesh_ipsec_webhook_cache_synced 0/);
  view.setNodeInfos([]);
  t.is((await hook.post('/readyz', undefined, { method: 'GET' })).status, 200);
  t.regex((await hook.post('/metrics', undefined, { method: 'GET' })).text, /kmesh_ipsec_webhook_cache_synced 1/);
});

test.serial('deleting the secret warns which SPI a re-created one needs', async (t) => {
  view.setNodeInfos([advertised('a', 6), advertised('b', 5)]);
  const response = responseOf(await hook.post('/validate', secretReview({ operation: 'DELETE', oldObject: ipsecSecret(ipsecValue(6)) })));
  t.true(response.allowed);
  t.deepEqual(response.warnings, ['Secret kmesh-system/kmesh-ipsec deleted: nodes keep their states; a new secret needs spi > 6']);
});
