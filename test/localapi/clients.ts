/** client-node wiring for tests: a KubeConfig that talks to the double as a given user. */

import type { IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import type { LocalApi } from '../../localapi/index.js';

export function kubeConfigFor(double: Pick<LocalApi, 'kubeconfig'>, username?: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromString(double.kubeconfig(username));
  return kc;
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json(): unknown;
}

/**
 * One HTTPS request trusting the double's CA, for asserting on wire details (headers, exact
 * bodies) that client libraries hide. `token: null` sends no Authorization header.
 */
export function rawRequest(
  double: Pick<LocalApi, 'url' | 'caPem' | 'tokenFor'>,
  method: string,
  path: string,
  options: { token?: string | null; body?: string; headers?: Record<string, string> } = {},
): Promise<RawResponse> {
  const token = options.token === undefined ? double.tokenFor() : options.token;
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${double.url}${path}`, {
      method,
      ca: double.caPem,
      headers: { ...(token === null ? {} : { Authorization: `Bearer ${token}` }), ...options.headers },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (s: string) => (text += s));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) as unknown });
      });
    });
    req.on('error', reject);
    req.end(options.body);
  });
}
