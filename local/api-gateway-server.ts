import { createServer, IncomingMessage, Server } from 'node:http';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { listen, ListeningServer } from './services/http-listen';

/**
 * A local stand-in for API Gateway's REST proxy integration: each HTTP request becomes an
 * `APIGatewayProxyEvent` (binary-safe: the body is handed over base64-encoded, as API Gateway does
 * for binary media types) and the handler's result becomes the HTTP response.
 */

export interface LocalRoute {
  readonly method: string;
  /** The API Gateway resource path, e.g. `/register/details`. */
  readonly resource: string;
  readonly handler: (event: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult>;
}

export type LocalApiServer = ListeningServer;

/** API Gateway's payload limit is 10 MB; the handlers enforce their own, smaller ones. */
const MAX_BODY_BYTES = 10 * 1024 * 1024;

export async function startLocalApiServer(options: {
  routes: readonly LocalRoute[];
  port?: number;
  host?: string;
}): Promise<LocalApiServer> {
  const server: Server = createServer((req, res) => {
    readBody(req)
      .then(async (body) => {
        const url = new URL(req.url ?? '/', 'http://local');
        const path = url.pathname.replace(/(.)\/+$/, '$1');
        const candidates = options.routes.filter((r) => r.resource === path);
        const route = candidates.find((r) => r.method === req.method);
        if (!route) {
          const status = candidates.length ? 405 : 404;
          res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ message: status === 405 ? 'Method Not Allowed' : 'Not Found' }));
          return;
        }
        const result = await route.handler(toEvent(req, url, route.resource, body));
        res.writeHead(result.statusCode, stringHeaders(result.headers));
        res.end(result.isBase64Encoded ? Buffer.from(result.body, 'base64') : result.body);
      })
      .catch((error) => {
        const tooLarge = error instanceof BodyTooLargeError;
        if (!tooLarge) console.error('local API: handler failed', error);
        res.writeHead(tooLarge ? 413 : 502, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ message: tooLarge ? 'Request Too Long' : 'Internal server error' }));
      });
  });
  return listen(server, options.port, options.host);
}

class BodyTooLargeError extends Error {}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new BodyTooLargeError());
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function toEvent(req: IncomingMessage, url: URL, resource: string, body: Buffer): APIGatewayProxyEvent {
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const [name, value] = [req.rawHeaders[i], req.rawHeaders[i + 1]];
    headers[name] = headers[name] === undefined ? value : `${headers[name]},${value}`;
    (multiValueHeaders[name] ??= []).push(value);
  }
  const query = Object.fromEntries(url.searchParams);
  const multiQuery: Record<string, string[]> = {};
  url.searchParams.forEach((value, key) => (multiQuery[key] ??= []).push(value));
  return {
    resource,
    path: url.pathname,
    httpMethod: req.method ?? 'GET',
    headers,
    multiValueHeaders,
    queryStringParameters: Object.keys(query).length ? query : null,
    multiValueQueryStringParameters: Object.keys(multiQuery).length ? multiQuery : null,
    pathParameters: null,
    stageVariables: null,
    body: body.length ? body.toString('base64') : null,
    isBase64Encoded: body.length > 0,
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      authorizer: null,
      protocol: `HTTP/${req.httpVersion}`,
      httpMethod: req.method ?? 'GET',
      identity: { sourceIp: req.socket.remoteAddress ?? '127.0.0.1', userAgent: req.headers['user-agent'] ?? null } as APIGatewayProxyEvent['requestContext']['identity'],
      path: url.pathname,
      stage: 'local',
      requestId: crypto.randomUUID(),
      requestTimeEpoch: Date.now(),
      resourceId: 'local',
      resourcePath: resource,
    },
  };
}

function stringHeaders(headers: APIGatewayProxyResult['headers']): Record<string, string> {
  return Object.fromEntries(Object.entries(headers ?? {}).map(([k, v]) => [k, String(v)]));
}
