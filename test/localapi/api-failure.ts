/** The metav1.Status behind a failed client-node call, for tests asserting on server errors. */

import { ApiException } from '@kubernetes/client-node';
import type { Status } from '../../localapi/status.js';

export async function apiFailure(p: Promise<unknown>): Promise<{ code: number; status: Status }> {
  const err: unknown = await p.then(() => undefined, (e: unknown) => e);
  if (!(err instanceof ApiException)) throw new Error(`expected ApiException, got ${String(err)}`);
  const body = (err as ApiException<unknown>).body;
  return { code: err.code, status: JSON.parse(typeof body === 'string' ? body : JSON.stringify(body)) as Status };
}
