import { z } from 'zod';
import { AWS_ACCOUNT_ID, MarketplaceLimits } from '../../lambda/core/marketplace-limits';
import { MODELLED_ERRORS, OPERATION_NAMES } from './errors';
import { MarketplaceState, NotFoundError, SimulatedCustomer, SimulatedEntitlement } from './state';

/** The admin API under `/_admin/` (README, "Admin API"): seed, inspect, move time, inject faults. */

export interface AdminResponse {
  status: number;
  body: unknown;
}

export class AdminRequestError extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

const dimension = z.string().min(1).max(MarketplaceLimits.maxIdentifierLength);

export const productSchema = z.strictObject({
  productCode: z.string().min(1).max(MarketplaceLimits.maxIdentifierLength),
  dimensions: z.array(dimension).min(1),
  identityMode: z.enum(['license', 'legacy']).default('license'),
  fulfillmentUrl: z.url({ protocol: /^https?$/ }).optional(),
  title: z.string().min(1).max(200).optional(),
});

export const customerSchema = z.strictObject({
  productCode: z.string().min(1),
  customerAWSAccountId: z.string().regex(AWS_ACCOUNT_ID, 'a 12-digit AWS account id').optional(),
  subscribed: z.boolean().default(true),
  freeTrial: z.boolean().default(false),
  registrationToken: z.string().min(1).max(4096).optional(),
});

const customerRef = {
  licenseArn: z.string().min(1).optional(),
  customerIdentifier: z.string().min(1).optional(),
};
const refinedRef = <T extends z.ZodObject>(schema: T) =>
  schema.refine((v: Record<string, unknown>) => (v.licenseArn === undefined) !== (v.customerIdentifier === undefined), {
    message: 'give exactly one of licenseArn and customerIdentifier',
  });

const tokenSchema = refinedRef(z.strictObject(customerRef));
const subscriptionSchema = refinedRef(
  z.strictObject({ ...customerRef, state: z.enum(['subscribed', 'unsubscribe-pending', 'unsubscribed']) }),
);
const entitlementSchema = z
  .strictObject({
    dimension,
    integerValue: z.number().int().optional(),
    doubleValue: z.number().optional(),
    booleanValue: z.boolean().optional(),
    stringValue: z.string().optional(),
    expirationDate: z.iso.datetime({ offset: true }).optional(),
  })
  .refine(
    (e) => [e.integerValue, e.doubleValue, e.booleanValue, e.stringValue].filter((v) => v !== undefined).length === 1,
    { message: 'each entitlement has exactly one of integerValue, doubleValue, booleanValue, stringValue' },
  );
const entitlementsSchema = refinedRef(z.strictObject({ ...customerRef, entitlements: z.array(entitlementSchema) }));

const clockSchema = z.union([
  z.strictObject({ now: z.iso.datetime({ offset: true }) }),
  z.strictObject({ advanceSeconds: z.number() }),
]);

const faultSchema = z
  .strictObject({
    operation: z.enum(OPERATION_NAMES),
    error: z.string().optional(),
    unprocessedFraction: z.number().min(0).max(1).optional(),
    emptyPage: z.boolean().optional(),
    latencyMs: z.number().int().min(0).max(60_000).optional(),
    count: z.number().int().min(1).nullable().default(1),
  })
  .refine((f) => f.error || f.unprocessedFraction !== undefined || f.emptyPage || f.latencyMs !== undefined, {
    message: 'a fault needs error, unprocessedFraction, emptyPage or latencyMs',
  })
  .refine((f) => !f.error || (MODELLED_ERRORS[f.operation] as readonly string[]).includes(f.error), {
    message: 'error must be one the operation is modelled to raise',
  })
  .refine((f) => f.unprocessedFraction === undefined || f.operation === 'BatchMeterUsage', {
    message: 'unprocessedFraction applies to BatchMeterUsage',
  })
  .refine((f) => !f.emptyPage || f.operation === 'GetEntitlements', { message: 'emptyPage applies to GetEntitlements' });

const configSchema = z.strictObject({
  tokenLifetimeSeconds: z.number().int().min(1).optional(),
  timestampWindow: z.enum(['24h', '6h']).optional(),
  resultOrder: z.enum(['shuffled', 'request']).optional(),
  rateLimitPerSecond: z.number().int().min(0).optional(),
  notificationUrl: z.url({ protocol: /^https?$/ }).optional(),
});

export const seedSchema = z.strictObject({
  products: z.array(productSchema).default([]),
  customers: z.array(customerSchema).default([]),
});

function parse<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  const result = schema.safeParse(body);
  if (!result.success) throw new AdminRequestError(z.prettifyError(result.error));
  return result.data;
}

export function customerView(customer: SimulatedCustomer) {
  return {
    productCode: customer.productCode,
    customerAWSAccountId: customer.customerAWSAccountId,
    licenseArn: customer.licenseArn,
    customerIdentifier: customer.customerIdentifier,
    agreementId: customer.agreementId,
    freeTrial: customer.freeTrial,
    state: customer.state,
    createdAt: customer.createdAt,
    subscribedAt: customer.subscribedAt,
    unsubscribedAt: customer.unsubscribedAt,
    entitlements: customer.entitlements.map(entitlementView),
  };
}

function entitlementView(e: SimulatedEntitlement) {
  const [key, value] = Object.entries(e.value)[0];
  return { dimension: e.dimension, [key.charAt(0).toLowerCase() + key.slice(1)]: value, expirationDate: e.expirationDate };
}

export function addProduct(state: MarketplaceState, body: unknown) {
  const p = parse(productSchema, body);
  return state.putProduct({ ...p, title: p.title ?? p.productCode });
}

export function addCustomer(state: MarketplaceState, body: unknown) {
  const input = parse(customerSchema, body);
  if (!state.products.has(input.productCode)) throw new AdminRequestError(`unknown product ${input.productCode}`, 404);
  if (input.registrationToken && state.tokens.has(input.registrationToken)) {
    throw new AdminRequestError('that registrationToken is already in use', 409);
  }
  const { customer, token } = state.addCustomer(input);
  return { ...customerView(customer), registrationToken: token.token, tokenExpiresAt: token.expiresAt };
}

type Route = (state: MarketplaceState, body: unknown, query: URLSearchParams) => AdminResponse;
const ok = (body: unknown, status = 200): AdminResponse => ({ status, body });

const routes: Record<string, Route> = {
  'POST /_admin/products': (s, b) => ok(addProduct(s, b), 201),
  'GET /_admin/products': (s) => ok({ products: [...s.products.values()] }),
  'POST /_admin/customers': (s, b) => ok(addCustomer(s, b), 201),
  'GET /_admin/customers': (s) => ok({ customers: [...s.customers.values()].map(customerView) }),
  'POST /_admin/tokens': (s, b) => {
    const token = s.issueToken(s.findCustomer(parse(tokenSchema, b)));
    return ok({ registrationToken: token.token, expiresAt: token.expiresAt }, 201);
  },
  'POST /_admin/customers/subscription': (s, b) => {
    const input = parse(subscriptionSchema, b);
    return ok(customerView(s.setSubscription(s.findCustomer(input), input.state)));
  },
  'POST /_admin/entitlements': (s, b) => {
    const input = parse(entitlementsSchema, b);
    const customer = s.findCustomer(input);
    customer.entitlements = input.entitlements.map((e) => ({
      dimension: e.dimension,
      value:
        e.integerValue !== undefined ? { IntegerValue: e.integerValue }
        : e.doubleValue !== undefined ? { DoubleValue: e.doubleValue }
        : e.booleanValue !== undefined ? { BooleanValue: e.booleanValue }
        : { StringValue: e.stringValue },
      expirationDate: e.expirationDate ? new Date(e.expirationDate) : undefined,
    }));
    s.notify('entitlements-updated', customer);
    return ok({ entitlements: customer.entitlements.map(entitlementView) });
  },
  'GET /_admin/metering-records': (s) =>
    ok({ records: s.billedRecords.map(({ deduplicationKey: _key, ...record }) => record) }),
  'GET /_admin/calls': (s, _b, q) => {
    const operation = q.get('operation');
    return ok({ calls: s.calls.filter((c) => !operation || c.operation === operation) });
  },
  'GET /_admin/clock': (s) => ok({ now: s.clock.now() }),
  'POST /_admin/clock': (s, b) => {
    const input = parse(clockSchema, b);
    if ('now' in input) s.clock.set(new Date(input.now));
    else s.clock.advance(input.advanceSeconds);
    return ok({ now: s.clock.now() });
  },
  'POST /_admin/faults': (s, b) => {
    const { count, ...fault } = parse(faultSchema, b);
    return ok(s.addFault({ ...fault, remaining: count }), 201);
  },
  'GET /_admin/faults': (s) => ok({ faults: s.faults }),
  'DELETE /_admin/faults': (s) => {
    s.faults = [];
    return ok({ faults: [] });
  },
  'GET /_admin/notifications': (s) => ok({ notifications: s.notifications }),
  'GET /_admin/config': (s) => ok(s.config),
  'POST /_admin/config': (s, b) => {
    s.config = { ...s.config, ...parse(configSchema, b) };
    return ok(s.config);
  },
  'POST /_admin/reset': (s) => {
    s.reset();
    s.clock.reset();
    return ok({ reset: true });
  },
};

export function handleAdminRequest(
  state: MarketplaceState,
  method: string,
  path: string,
  query: URLSearchParams,
  body: unknown,
): AdminResponse {
  const route = routes[`${method} ${path}`];
  if (!route) {
    const known = Object.keys(routes).some((r) => r.endsWith(` ${path}`));
    return ok({ error: known ? `${method} is not allowed on ${path}` : `no admin route ${path}` }, known ? 405 : 404);
  }
  try {
    return route(state, body, query);
  } catch (error) {
    if (error instanceof AdminRequestError) return ok({ error: error.message }, error.status);
    if (error instanceof NotFoundError) return ok({ error: error.message }, 404);
    throw error;
  }
}

