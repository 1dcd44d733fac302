import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { handleAdminRequest } from './admin-api';
import { renderProductList, renderSubscribed, SUBSCRIBE_PATH } from './buyer-page';
import { MarketplaceApiError, OperationName } from './errors';
import { batchMeterUsage } from './operations/batch-meter-usage';
import { getEntitlements } from './operations/get-entitlements';
import { resolveCustomer } from './operations/resolve-customer';
import { MarketplaceState } from './state';

/**
 * The simulator's HTTP front: AWS JSON 1.1 on `POST /` (dispatch on X-Amz-Target), the admin API
 * under `/_admin/`, and the buyer page on `GET /`.
 */

const TARGETS: Record<string, OperationName> = {
  'AWSMPMeteringService.ResolveCustomer': 'ResolveCustomer',
  'AWSMPMeteringService.BatchMeterUsage': 'BatchMeterUsage',
  'AWSMPEntitlementService.GetEntitlements': 'GetEntitlements',
};
/** Bodies are read up to this size; BatchMeterUsage rejects 1 MB and more itself, with its own error. */
const MAX_BODY_BYTES = 8 * 1024 * 1024;
const AMZ_JSON = 'application/x-amz-json-1.1';

/**
 * @param onChange called after each request that may have changed the state (every request but a
 *   GET), once its answer is sent: where the state is kept in a file, it is saved.
 */
export function createSimulatorServer(state: MarketplaceState, onChange?: () => void): Server {
  const rateWindow: number[] = [];

  async function handleApi(req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
    const target = String(req.headers['x-amz-target'] ?? '');
    const operation = TARGETS[target];
    const requestId = randomUUID();
    const send = (status: number, payload: unknown, outcome: string, recordCount?: number) => {
      state.recordCall({ operation: operation ?? (target || 'unknown'), outcome, httpStatus: status, recordCount });
      const headers: Record<string, string> = { 'content-type': AMZ_JSON, 'x-amzn-requestid': requestId };
      if (status >= 400) headers['x-amzn-errortype'] = outcome;
      res.writeHead(status, headers).end(JSON.stringify(payload));
    };
    const sendError = (error: MarketplaceApiError, recordCount?: number) =>
      send(error.httpStatus, { __type: error.type, message: error.message }, error.type, recordCount);

    if (!operation) {
      return sendError(new MarketplaceApiError('UnknownOperationException', `Unknown operation ${target || '(no X-Amz-Target)'}`));
    }
    let input: Record<string, unknown>;
    try {
      const parsed = JSON.parse(body.length ? body.toString('utf8') : '{}');
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      input = parsed;
    } catch {
      return sendError(new MarketplaceApiError('SerializationException', 'The request body is not a JSON object'));
    }
    const recordCount = Array.isArray(input.UsageRecords) ? input.UsageRecords.length : undefined;

    const faults = state.takeFaults(operation);
    if (faults.latencyMs) await new Promise((r) => setTimeout(r, faults.latencyMs));
    try {
      if (faults.error) throw new MarketplaceApiError(faults.error, `Injected fault: ${faults.error}`);
      if (operation === 'BatchMeterUsage') throttle();
      const output =
        operation === 'ResolveCustomer' ? resolveCustomer(state, input)
        : operation === 'BatchMeterUsage' ? batchMeterUsage(state, input, body.length, faults.unprocessedFraction)
        : getEntitlements(state, input, faults.emptyPage);
      send(200, output, 'Success', recordCount);
    } catch (error) {
      if (error instanceof MarketplaceApiError) return sendError(error, recordCount);
      sendError(new MarketplaceApiError('InternalServiceErrorException', 'Simulator error'), recordCount);
      console.error('simulator: unexpected error', error);
    }
  }

  /** The per-account request quota of BatchMeterUsage, over a sliding second of wall time. */
  function throttle(): void {
    const limit = state.config.rateLimitPerSecond;
    if (limit <= 0) return;
    const now = Date.now();
    while (rateWindow.length && rateWindow[0] <= now - 1000) rateWindow.shift();
    if (rateWindow.length >= limit) throw new MarketplaceApiError('ThrottlingException', 'Rate exceeded');
    rateWindow.push(now);
  }

  async function handleAdmin(req: IncomingMessage, res: ServerResponse, url: URL, body: Buffer): Promise<void> {
    let parsed: unknown;
    try {
      parsed = body.length ? JSON.parse(body.toString('utf8')) : {};
    } catch {
      return sendJson(res, 400, { error: 'the body is not JSON' });
    }
    const response = handleAdminRequest(state, req.method ?? 'GET', url.pathname.replace(/\/+$/, ''), url.searchParams, parsed);
    if (url.pathname === '/_admin/reset') rateWindow.length = 0;
    // The seller has heard of a change by the time the admin call that made it returns.
    await state.deliverNotifications();
    sendJson(res, response.status, response.body);
  }

  async function handleSubscribe(res: ServerResponse, body: Buffer): Promise<void> {
    const form = new URLSearchParams(body.toString('utf8'));
    const product = state.products.get(form.get('productCode') ?? '');
    if (!product) return sendHtml(res, 404, '<!doctype html><title>Not found</title><p>No such product.</p>');
    const freeTrial = form.get('offerType') === 'free-trial';
    const { customer, token } = state.addCustomer({ productCode: product.productCode, freeTrial });
    await state.deliverNotifications();
    sendHtml(
      res,
      200,
      renderSubscribed({
        productTitle: product.title,
        fulfillmentUrl: product.fulfillmentUrl,
        token: token.token,
        freeTrial,
        customerAWSAccountId: customer.customerAWSAccountId,
      }),
    );
  }

  return createServer((req, res) => {
    if (onChange && req.method !== 'GET') res.on('finish', onChange);
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://simulator');
      if (size > MAX_BODY_BYTES) return sendJson(res, 413, { error: `request body over ${MAX_BODY_BYTES} bytes` });
      const body = Buffer.concat(chunks);
      const route = async () => {
        if (url.pathname.startsWith('/_admin/')) return handleAdmin(req, res, url, body);
        if (req.method === 'POST' && url.pathname === SUBSCRIBE_PATH) return handleSubscribe(res, body);
        if (req.method === 'POST' && url.pathname === '/') return handleApi(req, res, body);
        if (req.method === 'GET' && url.pathname === '/') return sendHtml(res, 200, renderProductList(state));
        sendJson(res, 404, { error: `no route ${req.method} ${url.pathname}` });
      };
      route().catch((error) => {
        console.error('simulator: request failed', error);
        if (!res.headersSent) sendJson(res, 500, { error: 'simulator error' });
      });
    });
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

function sendHtml(res: ServerResponse, status: number, page: string): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' }).end(page);
}

