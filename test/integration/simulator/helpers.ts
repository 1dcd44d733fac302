/**
 * Shared helpers for the AWS Marketplace simulator integration suites.
 *
 * Every suite starts one simulator (real HTTP server on a free port) with a frozen clock, resets it
 * before each test through the admin API, and talks to it with the real, unmodified AWS SDK v3
 * clients, the admin API over `fetch`, or raw AWS JSON 1.1 requests.
 */
import { MarketplaceMeteringClient, type UsageRecord, type UsageRecordResult } from '@aws-sdk/client-marketplace-metering';
import { MarketplaceEntitlementServiceClient } from '@aws-sdk/client-marketplace-entitlement-service';
import type { BilledRecord } from '../../support/metering-environment';
import { SimulatorClock, startMarketplaceSimulator } from '../../../local/simulator';
import type { RunningSimulator, SimulatorConfig, StartSimulatorOptions } from '../../../local/simulator';

// ---------------------------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------------------------

/** The frozen "now" of every suite unless a test moves the clock. */
export const T0 = new Date('2026-11-02T10:20:00Z');
/** Customers of the standard world are created here, so their licences started long before any record. */
export const EARLY = new Date('2026-10-01T00:00:00Z');

export const at = (iso: string): Date => new Date(iso);
export const minutesBefore = (date: Date, minutes: number): Date => new Date(date.getTime() - minutes * 60_000);
export const minutesAfter = (date: Date, minutes: number): Date => new Date(date.getTime() + minutes * 60_000);
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The configuration every suite runs with (explicit, so no test depends on the defaults). */
export const TEST_CONFIG: SimulatorConfig = {
  tokenLifetimeSeconds: 4 * 3600,
  timestampWindow: '24h',
  resultOrder: 'shuffled',
  rateLimitPerSecond: 0,
};

export const DEFAULT_CONFIG: SimulatorConfig = {
  tokenLifetimeSeconds: 4 * 3600,
  timestampWindow: '24h',
  resultOrder: 'shuffled',
  rateLimitPerSecond: 10,
};

// ---------------------------------------------------------------------------------------------
// Admin API (typed, over fetch)
// ---------------------------------------------------------------------------------------------

export type IdentityMode = 'license' | 'legacy';

export interface ProductInput {
  productCode: string;
  dimensions: string[];
  identityMode: IdentityMode;
  fulfillmentUrl?: string;
  title?: string;
}
export type Product = ProductInput;

export interface CustomerInput {
  productCode: string;
  customerAWSAccountId?: string;
  subscribed?: boolean;
  freeTrial?: boolean;
  registrationToken?: string;
}

export interface Customer {
  customerAWSAccountId: string;
  licenseArn: string;
  customerIdentifier?: string;
  productCode: string;
  registrationToken: string;
  agreementId: string;
  freeTrial: boolean;
  state: string;
}

export type CustomerRef = { licenseArn: string } | { customerIdentifier: string };
export type SubscriptionState = 'subscribed' | 'unsubscribe-pending' | 'unsubscribed';

export interface EntitlementInput {
  dimension: string;
  integerValue?: number;
  doubleValue?: number;
  booleanValue?: boolean;
  stringValue?: string;
  expirationDate?: string;
}

/** A billed record as the admin API returns it. */
export type MeteringRecord = BilledRecord;

export interface CallRecord {
  operation: string;
  time: string;
  outcome: string;
  httpStatus: number;
  recordCount?: number;
}

export interface FaultInput {
  operation: 'ResolveCustomer' | 'BatchMeterUsage' | 'GetEntitlements' | string;
  error?: string;
  unprocessedFraction?: number;
  emptyPage?: boolean;
  latencyMs?: number;
  count?: number | null;
}

export interface RawResponse<T = any> {
  status: number;
  headers: Headers;
  text: string;
  json: T;
}

export class AdminError extends Error {
  constructor(readonly method: string, readonly path: string, readonly status: number, readonly body: string) {
    super(`${method} ${path} answered ${status}: ${body}`);
    this.name = 'AdminError';
  }
}

/** A tiny typed client for the simulator's admin API. */
export class AdminClient {
  constructor(readonly baseUrl: string) {}

  /** Any request; `body` objects are sent as JSON, strings are sent as they are. */
  async raw<T = any>(method: string, path: string, body?: unknown): Promise<RawResponse<T>> {
    const init: RequestInit = { method, headers: {} };
    if (body !== undefined) {
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
      init.headers = { 'content-type': 'application/json' };
    }
    const response = await fetch(new URL(path, this.baseUrl), init);
    const text = await response.text();
    let json: any;
    try {
      json = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: response.status, headers: response.headers, text, json };
  }

  /** A request that must succeed (2xx); returns the JSON answer. */
  async ok<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await this.raw<T>(method, path, body);
    if (response.status < 200 || response.status > 299) {
      throw new AdminError(method, path, response.status, response.text);
    }
    return response.json;
  }

  createProduct(product: ProductInput): Promise<Product> {
    return this.ok('POST', '/_admin/products', product);
  }
  async products(): Promise<Product[]> {
    return (await this.ok<{ products: Product[] }>('GET', '/_admin/products')).products;
  }
  createCustomer(customer: CustomerInput): Promise<Customer> {
    return this.ok('POST', '/_admin/customers', customer);
  }
  async customers(): Promise<Customer[]> {
    return (await this.ok<{ customers: Customer[] }>('GET', '/_admin/customers')).customers;
  }
  createToken(ref: CustomerRef): Promise<{ registrationToken: string; expiresAt: string }> {
    return this.ok('POST', '/_admin/tokens', ref);
  }
  setSubscription(ref: CustomerRef, state: SubscriptionState): Promise<Customer> {
    return this.ok('POST', '/_admin/customers/subscription', { ...ref, state });
  }
  setEntitlements(ref: CustomerRef, entitlements: EntitlementInput[]): Promise<unknown> {
    return this.ok('POST', '/_admin/entitlements', { ...ref, entitlements });
  }
  async meteringRecords(): Promise<MeteringRecord[]> {
    return (await this.ok<{ records: MeteringRecord[] }>('GET', '/_admin/metering-records')).records;
  }
  async calls(operation?: string): Promise<CallRecord[]> {
    const query = operation ? `?operation=${encodeURIComponent(operation)}` : '';
    return (await this.ok<{ calls: CallRecord[] }>('GET', `/_admin/calls${query}`)).calls;
  }
  async clock(): Promise<Date> {
    return new Date((await this.ok<{ now: string }>('GET', '/_admin/clock')).now);
  }
  async setClock(now: Date): Promise<Date> {
    return new Date((await this.ok<{ now: string }>('POST', '/_admin/clock', { now: now.toISOString() })).now);
  }
  async advanceClock(seconds: number): Promise<Date> {
    return new Date((await this.ok<{ now: string }>('POST', '/_admin/clock', { advanceSeconds: seconds })).now);
  }
  addFault(fault: FaultInput): Promise<unknown> {
    return this.ok('POST', '/_admin/faults', fault);
  }
  faults(): Promise<unknown> {
    return this.ok('GET', '/_admin/faults');
  }
  clearFaults(): Promise<unknown> {
    return this.ok('DELETE', '/_admin/faults');
  }
  config(): Promise<SimulatorConfig> {
    return this.ok('GET', '/_admin/config');
  }
  setConfig(config: Partial<SimulatorConfig>): Promise<SimulatorConfig> {
    return this.ok('POST', '/_admin/config', config);
  }
  reset(): Promise<unknown> {
    return this.ok('POST', '/_admin/reset');
  }

  /** Creates a customer as if it had subscribed at `when` (its licence starts then), then restores the clock. */
  async createCustomerAt(when: Date, customer: CustomerInput): Promise<Customer> {
    const before = await this.clock();
    await this.setClock(when);
    try {
      return await this.createCustomer(customer);
    } finally {
      await this.setClock(before);
    }
  }
}

/** `GET /_admin/faults` may answer `{ faults: [...] }` or a bare list; both are read as the list. */
export function faultList(answer: unknown): unknown[] {
  if (Array.isArray(answer)) return answer;
  const faults = (answer as { faults?: unknown } | undefined)?.faults;
  if (Array.isArray(faults)) return faults;
  throw new Error(`unexpected GET /_admin/faults answer: ${JSON.stringify(answer)}`);
}

// ---------------------------------------------------------------------------------------------
// SDK clients
// ---------------------------------------------------------------------------------------------

export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

/**
 * 'sdk-default': the SDK's own standard retry strategy (3 attempts, real backoff).
 * 'none': one attempt only.
 * { fastAttempts: n }: up to n attempts, retrying throttling and 5xx like the SDK, but with a 5 ms pause.
 */
export type RetryChoice = 'sdk-default' | 'none' | { fastAttempts: number };

interface SimpleRetryToken {
  getRetryCount(): number;
  getRetryDelay(): number;
}

/** A retry strategy (SDK RetryStrategyV2 shape) that retries like the standard one, only faster. */
export function fastRetryStrategy(maxAttempts: number, delayMs = 5) {
  const token = (count: number): SimpleRetryToken => ({ getRetryCount: () => count, getRetryDelay: () => delayMs });
  return {
    acquireInitialRetryToken: async (_scope: string): Promise<SimpleRetryToken> => token(0),
    refreshRetryTokenForRetry: async (previous: SimpleRetryToken, info: { errorType: string }): Promise<SimpleRetryToken> => {
      const next = previous.getRetryCount() + 1;
      const retryable = info.errorType === 'THROTTLING' || info.errorType === 'TRANSIENT' || info.errorType === 'SERVER_ERROR';
      if (!retryable || next >= maxAttempts) throw new Error('No retry token available');
      return token(next);
    },
    recordSuccess: (_token: SimpleRetryToken): void => undefined,
  };
}

function retryOptions(retry: RetryChoice) {
  if (retry === 'sdk-default') return {};
  if (retry === 'none') return { maxAttempts: 1 };
  return { maxAttempts: retry.fastAttempts, retryStrategy: fastRetryStrategy(retry.fastAttempts) };
}

export function meteringClient(url: string, retry: RetryChoice = 'sdk-default'): MarketplaceMeteringClient {
  return new MarketplaceMeteringClient({ endpoint: url, region: 'us-east-1', credentials: LOCAL_CREDENTIALS, ...retryOptions(retry) });
}

export function entitlementClient(url: string, retry: RetryChoice = 'sdk-default'): MarketplaceEntitlementServiceClient {
  return new MarketplaceEntitlementServiceClient({ endpoint: url, region: 'us-east-1', credentials: LOCAL_CREDENTIALS, ...retryOptions(retry) });
}

// ---------------------------------------------------------------------------------------------
// Suite lifecycle
// ---------------------------------------------------------------------------------------------

export interface SimulatorContext {
  sim: RunningSimulator;
  clock: SimulatorClock;
  admin: AdminClient;
  /** SDK default retries. */
  metering: MarketplaceMeteringClient;
  /** No retries: a single attempt. */
  meteringOnce: MarketplaceMeteringClient;
  entitlement: MarketplaceEntitlementServiceClient;
  entitlementOnce: MarketplaceEntitlementServiceClient;
}

export interface UseSimulatorOptions {
  config?: Partial<SimulatorConfig>;
  start?: Date;
  extra?: Omit<StartSimulatorOptions, 'clock' | 'config'>;
}

/**
 * Registers beforeAll/beforeEach/afterAll hooks: one simulator per suite, reset before each test,
 * with TEST_CONFIG (+ overrides) applied and the clock set to `start` (T0).
 * The returned object is filled in by beforeAll.
 */
export function useSimulator(options: UseSimulatorOptions = {}): SimulatorContext {
  const start = options.start ?? T0;
  const config = { ...TEST_CONFIG, ...options.config };
  const ctx = {} as SimulatorContext;
  const clients: { destroy(): void }[] = [];
  beforeAll(async () => {
    ctx.clock = new SimulatorClock({ start, frozen: true });
    ctx.sim = await startMarketplaceSimulator({ port: 0, ...options.extra, clock: ctx.clock, config });
    ctx.admin = new AdminClient(ctx.sim.url);
    ctx.metering = meteringClient(ctx.sim.url);
    ctx.meteringOnce = meteringClient(ctx.sim.url, 'none');
    ctx.entitlement = entitlementClient(ctx.sim.url);
    ctx.entitlementOnce = entitlementClient(ctx.sim.url, 'none');
    clients.push(ctx.metering, ctx.meteringOnce, ctx.entitlement, ctx.entitlementOnce);
  });
  beforeEach(async () => {
    await ctx.admin.reset();
    await ctx.admin.setConfig(config);
    await ctx.admin.setClock(start);
  });
  afterAll(async () => {
    for (const client of clients) client.destroy();
    if (ctx.sim) await ctx.sim.stop();
  });
  return ctx;
}

// ---------------------------------------------------------------------------------------------
// A standard world of products and customers
// ---------------------------------------------------------------------------------------------

export const ACCOUNT_A = '111111111111';
export const ACCOUNT_B = '222222222222';
export const ACCOUNT_C = '333333333333';
export const ACCOUNT_D = '444444444444';

export interface World {
  /** Concurrent Agreements product, dimensions requests/storage/users. */
  lic: Product;
  /** A second license-mode product (dimension other-dim). */
  lic2: Product;
  /** Legacy (CustomerIdentifier) product, dimensions requests/seats. */
  legacy: Product;
  alice: Customer; // lic, account A
  bob: Customer; // lic, account B
  dave: Customer; // lic2, account D
  carol: Customer; // legacy, account C
}

/**
 * Creates the standard world with every customer subscribed at EARLY (so licences started before any record
 * hour a test uses), leaves the clock at T0 (or `now`) and gives each customer a token issued at that time.
 */
export async function seedWorld(admin: AdminClient, now: Date = T0): Promise<World> {
  const lic = await admin.createProduct({ productCode: 'prod-license', dimensions: ['requests', 'storage', 'users'], identityMode: 'license' });
  const lic2 = await admin.createProduct({ productCode: 'prod-license-2', dimensions: ['other-dim'], identityMode: 'license' });
  const legacy = await admin.createProduct({ productCode: 'prod-legacy', dimensions: ['requests', 'seats'], identityMode: 'legacy' });
  await admin.setClock(EARLY);
  const alice = await admin.createCustomer({ productCode: lic.productCode, customerAWSAccountId: ACCOUNT_A });
  const bob = await admin.createCustomer({ productCode: lic.productCode, customerAWSAccountId: ACCOUNT_B });
  const dave = await admin.createCustomer({ productCode: lic2.productCode, customerAWSAccountId: ACCOUNT_D });
  const carol = await admin.createCustomer({ productCode: legacy.productCode, customerAWSAccountId: ACCOUNT_C });
  await admin.setClock(now);
  // The tokens issued at EARLY have long expired: give every customer a fresh one, valid from `now`.
  for (const customer of [alice, bob, dave, carol]) {
    customer.registrationToken = (await admin.createToken({ licenseArn: customer.licenseArn })).registrationToken;
  }
  return { lic, lic2, legacy, alice, bob, dave, carol };
}

/** A Concurrent Agreements usage record for the customer (no ProductCode on the request). */
export function licenseRecord(customer: Customer, overrides: Partial<UsageRecord> = {}): UsageRecord {
  return {
    Timestamp: at('2026-11-02T10:05:00Z'),
    Dimension: 'requests',
    Quantity: 1,
    CustomerAWSAccountId: customer.customerAWSAccountId,
    LicenseArn: customer.licenseArn,
    ...overrides,
  };
}

/** A legacy usage record (request carries ProductCode) identified by CustomerIdentifier. */
export function legacyRecord(customer: Customer, overrides: Partial<UsageRecord> = {}): UsageRecord {
  return {
    Timestamp: at('2026-11-02T10:05:00Z'),
    Dimension: 'requests',
    Quantity: 1,
    CustomerIdentifier: customer.customerIdentifier,
    ...overrides,
  };
}

/** Two records are "the same" when every identity field, the dimension, the timestamp and the quantity agree. */
export function sameRecord(a: UsageRecord | undefined, b: UsageRecord): boolean {
  if (!a) return false;
  return (
    (a.LicenseArn ?? undefined) === (b.LicenseArn ?? undefined) &&
    (a.CustomerAWSAccountId ?? undefined) === (b.CustomerAWSAccountId ?? undefined) &&
    (a.CustomerIdentifier ?? undefined) === (b.CustomerIdentifier ?? undefined) &&
    a.Dimension === b.Dimension &&
    a.Timestamp?.getTime() === b.Timestamp?.getTime() &&
    (a.Quantity ?? 0) === (b.Quantity ?? 0)
  );
}

/** The result that belongs to `record`, matched by content (never by position). */
export function resultFor(results: UsageRecordResult[] | undefined, record: UsageRecord): UsageRecordResult {
  const matches = (results ?? []).filter((result) => sameRecord(result.UsageRecord, record));
  if (matches.length !== 1) {
    throw new Error(`expected exactly one result for ${describeRecord(record)}, found ${matches.length} in ${JSON.stringify(results)}`);
  }
  return matches[0];
}

export function describeRecord(record: UsageRecord): string {
  return `${record.LicenseArn ?? record.CustomerIdentifier ?? record.CustomerAWSAccountId}/${record.Dimension}/${record.Timestamp?.toISOString()}/${record.Quantity}`;
}

// ---------------------------------------------------------------------------------------------
// Errors and raw wire calls
// ---------------------------------------------------------------------------------------------

/** The error a promise rejects with; fails the test if it resolves. */
export async function rejectionOf(promise: Promise<unknown>): Promise<any> {
  try {
    const value = await promise;
    throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('expected a rejection')) throw error;
    return error;
  }
}

export const TARGET = {
  resolveCustomer: 'AWSMPMeteringService.ResolveCustomer',
  batchMeterUsage: 'AWSMPMeteringService.BatchMeterUsage',
  getEntitlements: 'AWSMPEntitlementService.GetEntitlements',
} as const;

/** An unsigned AWS JSON 1.1 call; `body` objects are JSON-encoded, strings are sent as they are. */
export async function rawCall(url: string, target: string | undefined, body: unknown): Promise<RawResponse> {
  const headers: Record<string, string> = { 'content-type': 'application/x-amz-json-1.1' };
  if (target !== undefined) headers['x-amz-target'] = target;
  const response = await fetch(url + '/', { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await response.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

/** Epoch seconds as the wire carries them. */
export const epochSeconds = (date: Date): number => date.getTime() / 1000;

/** Characters every generated registration token must contain. */
export const TOKEN_SPECIAL_CHARACTERS = ['+', '/', '=', '.', ':', '_', '-'];

export const LICENSE_ARN_PATTERN = /^arn:aws:license-manager::\d{12}:license:l-[0-9a-f]+$/;
