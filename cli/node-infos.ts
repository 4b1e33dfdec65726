/** Reading every KmeshNodeInfo for the CLI: page by page, so a large cluster is many bounded reads. */
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { KMESH_NAMESPACE, KNI_GROUP, KNI_PLURAL, KNI_VERSION } from '../core/constants.js';
import { CliError } from './errors.js';
import { apiStatus, describeKubeError } from './kube.js';

/** kubectl's chunk size. */
const PAGE_SIZE = 500;
/** 50 000 objects, ten times Kubernetes' supported node count: a server that keeps paging beyond this is broken. */
const MAX_PAGES = 100;

/** Every KmeshNodeInfo in kmesh-system as the API returns it; [] when the CRD is not installed. */
export async function listNodeInfos(kc: KubeConfig): Promise<unknown[]> {
  const api = kc.makeApiClient(CustomObjectsApi);
  const items: unknown[] = [];
  let next: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    let body: { items?: unknown; metadata?: { continue?: unknown } };
    try {
      body = (await api.listNamespacedCustomObject({
        group: KNI_GROUP, version: KNI_VERSION, namespace: KMESH_NAMESPACE, plural: KNI_PLURAL, limit: PAGE_SIZE, ...(next === undefined ? {} : { _continue: next }),
      })) as typeof body;
    } catch (err: unknown) {
      if (apiStatus(err) === 404) return []; // CRD not installed: no node publishes anything
      throw new CliError(`cannot list KmeshNodeInfos in ${KMESH_NAMESPACE}: ${describeKubeError(err, kc)}`);
    }
    // One item at a time: a server that ignores `limit` could send more than push(...) takes.
    if (Array.isArray(body.items)) {
      for (const item of body.items as unknown[]) {
        if (items.length >= MAX_PAGES * PAGE_SIZE) throw new CliError(`cannot list KmeshNodeInfos in ${KMESH_NAMESPACE}: the API returned more than ${MAX_PAGES * PAGE_SIZE} objects`);
        items.push(item);
      }
    }
    const token = body.metadata?.continue;
    if (typeof token !== 'string' || token === '') return items;
    next = token;
  }
  throw new CliError(`cannot list KmeshNodeInfos in ${KMESH_NAMESPACE}: the API kept paging past ${MAX_PAGES * PAGE_SIZE} objects`);
}
