/**
 * The HTTPS front: authentication, then discovery/OpenAPI/version documents or the resource
 * handler. Every failure leaves as a metav1.Status.
 */

import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIPv6, type AddressInfo, type Server, type Socket } from 'node:net';
import { ANONYMOUS, authenticate, bearerToken } from './auth.js';
import {
  aggregatedContentType, aggregatedDiscovery, aggregatedVersion, apiGroup, apiGroupList, apiResourceList, apiVersions,
  versionInfo, type ServerVersion,
} from './discovery.js';
import { sendError, sendJson } from './http-util.js';
import { groupVersionDocument, openApiIndex } from './openapi.js';
import { parseRequestPath } from './request-info.js';
import { handleResource, type ResourceHandlerDeps } from './resource-handler.js';
import { methodNotAllowed, resourceNotFound, unauthorized } from './status.js';
import type { JsonObject, UserInfo } from './types.js';

export interface ServerDeps extends ResourceHandlerDeps {
  tokens: ReadonlyMap<string, UserInfo>;
  anonymous: boolean;
  version: ServerVersion;
  tls: { certPem: string; keyPem: string };
}

const HEALTH_PATHS = new Set(['/healthz', '/livez', '/readyz']);

function sendFound(res: ServerResponse, body: JsonObject | undefined, contentType?: string): void {
  if (body === undefined) throw resourceNotFound();
  res.setHeader('Vary', 'Accept');
  sendJson(res, 200, body, contentType);
}

/** Everything that is not a resource: health, version, discovery, OpenAPI. */
function handleNonResource(deps: ServerDeps, req: IncomingMessage, res: ServerResponse, url: URL, serverAddress: string): boolean {
  const path = url.pathname.replace(/\/+$/, '') || '/';
  if (HEALTH_PATHS.has(path)) {
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
    res.end('ok');
    return true;
  }
  if (path === '/version') {
    sendJson(res, 200, versionInfo(deps.version));
    return true;
  }
  if (path === '/openapi/v3') {
    sendJson(res, 200, openApiIndex(deps.table, deps.version.gitVersion));
    return true;
  }
  const openapi = /^\/openapi\/v3\/(?:api\/([^/]+)|apis\/([^/]+)\/([^/]+))$/.exec(path);
  if (openapi !== null) {
    const [, coreVersion, group, version] = openapi;
    const doc = coreVersion !== undefined
      ? groupVersionDocument(deps.table, '', coreVersion, deps.version.gitVersion)
      : groupVersionDocument(deps.table, group ?? '', version ?? '', deps.version.gitVersion);
    sendFound(res, doc);
    return true;
  }
  const info = parseRequestPath(path);
  const aggregated = aggregatedVersion(req.headers.accept);
  switch (info.type) {
    case 'api':
      if (aggregated !== undefined) sendFound(res, aggregatedDiscovery(deps.table, true, aggregated), aggregatedContentType(aggregated));
      else sendFound(res, apiVersions(serverAddress));
      return true;
    case 'apis':
      if (aggregated !== undefined) sendFound(res, aggregatedDiscovery(deps.table, false, aggregated), aggregatedContentType(aggregated));
      else sendFound(res, apiGroupList(deps.table));
      return true;
    case 'group':
      sendFound(res, apiGroup(deps.table, info.group));
      return true;
    case 'groupVersion':
      sendFound(res, apiResourceList(deps.table, info.group, info.version));
      return true;
    default:
      return false;
  }
}

async function route(deps: ServerDeps, req: IncomingMessage, res: ServerResponse, serverAddress: string): Promise<void> {
  const url = new URL(req.url ?? '/', `https://${serverAddress}`);
  let user = authenticate(req, deps.tokens);
  if (user === undefined) {
    if (bearerToken(req) !== undefined || !deps.anonymous) throw unauthorized();
    user = ANONYMOUS;
  }
  const info = parseRequestPath(url.pathname);
  if (info.type === 'resource') {
    await handleResource(deps, req, res, info, url, user);
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') throw methodNotAllowed();
  if (!handleNonResource(deps, req, res, url, serverAddress)) {
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
    res.end('404 page not found\n');
  }
}

export interface ListenAddress {
  /** Bind address. */
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Host clients are told to use (differs from `host` for wildcard binds). */
  advertise: string;
}

export interface RunningServer {
  url: string;
  /** Drops every connection and stops listening; state lives on elsewhere. */
  suspend(): Promise<void>;
  /** Listens again on the same address and port. */
  resume(): Promise<void>;
  /** Like suspend, for good (extra listeners are closed too). */
  close(): Promise<void>;
  /**
   * Serves the connections `listener` accepts as well, e.g. a socket listening in another
   * network namespace (handed over by a process started there). While suspended, they are
   * dropped at once.
   */
  alsoServe(listener: Server): void;
}

function hostPort(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

export async function listen(deps: ServerDeps, address: ListenAddress): Promise<RunningServer> {
  let serverAddress = hostPort(address.advertise, address.port);
  const server = https.createServer({ cert: deps.tls.certPem, key: deps.tls.keyPem }, (req, res) => {
    route(deps, req, res, serverAddress).catch((err: unknown) => {
      sendError(res, err);
    });
  });
  // Raw TCP sockets, so that suspend can also cut connections still in the TLS handshake.
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  let port = address.port;
  const start = (): Promise<void> => new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const stop = (): Promise<void> => {
    if (!server.listening) return Promise.resolve();
    const closed = new Promise<void>((resolve) => {
      server.close(() => {
        resolve();
      });
    });
    // Abruptly, as a crashed or partitioned apiserver would: watches break, requests reset.
    for (const socket of sockets) socket.destroy();
    return closed;
  };
  const extras = new Set<Server>();
  await start();
  port = (server.address() as AddressInfo).port;
  serverAddress = hostPort(address.advertise, port);
  return {
    url: `https://${serverAddress}`,
    suspend: stop,
    resume: () => (server.listening ? Promise.resolve() : start()),
    close: async () => {
      for (const extra of extras) extra.close();
      extras.clear();
      await stop();
    },
    alsoServe(listener) {
      extras.add(listener);
      listener.on('connection', (socket: Socket) => {
        if (server.listening) server.emit('connection', socket);
        else socket.destroy();
      });
    },
  };
}
