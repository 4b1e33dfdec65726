/** Request/response plumbing shared by the handlers: bodies, JSON answers, Status errors, warnings. */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseYaml } from 'yaml';
import { requestEntityTooLarge, StatusError, badRequest, unsupportedMediaType, type Status } from './status.js';

/** The apiserver's request body limit. */
const MAX_BODY_BYTES = 3 * 1024 * 1024;

export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw requestEntityTooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

/** Decodes a create/update body; JSON and YAML are accepted, like the real server. */
export function decodeObjectBody(contentType: string | undefined, text: string, expectedKind: string): unknown {
  const type = mediaType(contentType);
  try {
    if (type === '' || type === 'application/json') return JSON.parse(text);
    if (type === 'application/yaml') return parseYaml(text);
  } catch (err) {
    throw badRequest(`the object provided is unrecognized (must be of type ${expectedKind}): couldn't get version/kind; json parse error: ${err instanceof Error ? err.message : String(err)}`);
  }
  throw unsupportedMediaType(type);
}

/**
 * Warning headers in the RFC 7234 form the apiserver uses; kubectl prints each as
 * "Warning: <text>". Quotes and backslashes are escaped as quoted-string requires.
 */
export function setWarnings(res: ServerResponse, warnings: readonly string[]): void {
  const unique = [...new Set(warnings)];
  if (unique.length === 0 || res.headersSent) return;
  res.setHeader('Warning', unique.map((w) => `299 - "${w.replace(/[\\"]/g, (c) => `\\${c}`)}"`));
}

export function sendJson(res: ServerResponse, code: number, body: unknown, contentType = 'application/json'): void {
  const payload = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(payload) });
  res.end(payload);
}

export function sendStatus(res: ServerResponse, status: Status): void {
  sendJson(res, status.code ?? 500, status);
}

export function sendError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (err instanceof StatusError) {
    sendStatus(res, err.status);
    return;
  }
  const message = err instanceof Error ? err.message : String(err);
  sendStatus(res, new StatusError({ code: 500, reason: 'InternalError', message: `Internal error occurred: ${message}` }).status);
}

/** Whether any entry of an Accept header asks for `param=value` (e.g. as=Table). */
export function acceptEntries(accept: string | undefined): Array<{ type: string; params: Record<string, string> }> {
  return (accept ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '')
    .map((entry) => {
      const [type = '', ...rest] = entry.split(';').map((s) => s.trim());
      const params: Record<string, string> = {};
      for (const p of rest) {
        const [k, v] = p.split('=', 2);
        if (k !== undefined && v !== undefined) params[k.toLowerCase()] = v;
      }
      return { type: type.toLowerCase(), params };
    });
}

/** JSON is the only encoding the double writes; refuse clients that would not take it. */
export function acceptsJson(accept: string | undefined): boolean {
  const entries = acceptEntries(accept);
  if (entries.length === 0) return true;
  return entries.some((e) => ['application/json', '*/*', 'application/*'].includes(e.type));
}

export function notAcceptable(): StatusError {
  return new StatusError({
    message: 'only the following media types are accepted: application/json',
    reason: 'NotAcceptable',
    code: 406,
  });
}
