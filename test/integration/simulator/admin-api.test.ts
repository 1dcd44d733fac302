/**
 * The admin API: products, customers (licence ARN format, legacy CustomerIdentifier, tokens), tokens,
 * subscription state, the calls log, the clock, config, reset, the `seed` option, and 400 on bad bodies.
 */
import {
  BatchMeterUsageCommand,
  ResolveCustomerCommand,
} from '@aws-sdk/client-marketplace-metering';
import { GetEntitlementsCommand } from '@aws-sdk/client-marketplace-entitlement-service';
import { SimulatorClock, startMarketplaceSimulator } from '../../../local/simulator';
import {
  AdminClient,
  DEFAULT_CONFIG,
  LICENSE_ARN_PATTERN,
  T0,
  TEST_CONFIG,
  TOKEN_SPECIAL_CHARACTERS,
  faultList,
  licenseRecord,
  meteringClient,
  rejectionOf,
  seedWorld,
  sleep,
  useSimulator,
} from './helpers';

describe('admin API', () => {
  const ctx = useSimulator();

  describe('products', () => {
    test('POST /_admin/products answers 201 with the product; GET lists it', async () => {
      const body = { productCode: 'prod-a', dimensions: ['requests', 'storage'], identityMode: 'license', fulfillmentUrl: 'https://seller.example/register', title: 'Product A' };
      const created = await ctx.admin.raw('POST', '/_admin/products', body);
      expect(created.status).toBe(201);
      expect(created.json).toMatchObject(body);
      expect(await ctx.admin.products()).toEqual([expect.objectContaining(body)]);
    });

    test('posting the same productCode replaces the product', async () => {
      await ctx.admin.createProduct({ productCode: 'prod-a', dimensions: ['requests'], identityMode: 'license' });
      const replaced = await ctx.admin.raw('POST', '/_admin/products', { productCode: 'prod-a', dimensions: ['seats'], identityMode: 'legacy' });
      expect(replaced.status).toBe(201);
      const products = await ctx.admin.products();
      expect(products).toHaveLength(1);
      expect(products[0]).toMatchObject({ productCode: 'prod-a', dimensions: ['seats'], identityMode: 'legacy' });
    });
  });

  describe('customers', () => {
    test('a Concurrent Agreements customer: 201, licence ARN format, 12-digit account, token with + / = . : _ -, no CustomerIdentifier', async () => {
      await ctx.admin.createProduct({ productCode: 'prod-a', dimensions: ['requests'], identityMode: 'license' });
      const response = await ctx.admin.raw('POST', '/_admin/customers', { productCode: 'prod-a' });
      expect(response.status).toBe(201);
      const customer = response.json;
      expect(customer).toMatchObject({ productCode: 'prod-a', freeTrial: false, state: 'subscribed' });
      expect(customer.licenseArn).toMatch(LICENSE_ARN_PATTERN);
      expect(customer.customerAWSAccountId).toMatch(/^\d{12}$/);
      expect(customer.agreementId).toEqual(expect.any(String));
      expect(customer.agreementId.length).toBeGreaterThan(0);
      expect(customer.customerIdentifier).toBeUndefined();
      for (const character of TOKEN_SPECIAL_CHARACTERS) expect(customer.registrationToken).toContain(character);
      expect(await ctx.admin.customers()).toEqual([expect.objectContaining({ licenseArn: customer.licenseArn, customerAWSAccountId: customer.customerAWSAccountId })]);
    });

    test('a legacy customer has a CustomerIdentifier (and a licence ARN too)', async () => {
      await ctx.admin.createProduct({ productCode: 'prod-l', dimensions: ['requests'], identityMode: 'legacy' });
      const customer = await ctx.admin.createCustomer({ productCode: 'prod-l' });
      expect(customer.customerIdentifier).toEqual(expect.any(String));
      expect(customer.customerIdentifier?.length).toBeGreaterThan(0);
      expect(customer.licenseArn).toMatch(LICENSE_ARN_PATTERN);
    });

    test('given fields are kept: account id, freeTrial, subscribed: false, registrationToken', async () => {
      await ctx.admin.createProduct({ productCode: 'prod-a', dimensions: ['requests'], identityMode: 'license' });
      const customer = await ctx.admin.createCustomer({ productCode: 'prod-a', customerAWSAccountId: '123456789012', freeTrial: true, subscribed: false, registrationToken: 'my+token/=.:_-' });
      expect(customer).toMatchObject({ customerAWSAccountId: '123456789012', freeTrial: true, registrationToken: 'my+token/=.:_-' });
      expect(customer.state).not.toBe('subscribed');
    });

    test('generated identifiers are unique per customer; one account can hold several licences', async () => {
      await ctx.admin.createProduct({ productCode: 'prod-a', dimensions: ['requests'], identityMode: 'license' });
      const customers = [
        await ctx.admin.createCustomer({ productCode: 'prod-a' }),
        await ctx.admin.createCustomer({ productCode: 'prod-a' }),
        await ctx.admin.createCustomer({ productCode: 'prod-a', customerAWSAccountId: '123456789012' }),
        await ctx.admin.createCustomer({ productCode: 'prod-a', customerAWSAccountId: '123456789012' }),
      ];
      for (const field of ['licenseArn', 'registrationToken', 'agreementId'] as const) {
        expect(new Set(customers.map((c) => c[field])).size).toBe(4);
      }
      expect(customers[0].customerAWSAccountId).not.toBe(customers[1].customerAWSAccountId);
      expect(customers[2].customerAWSAccountId).toBe(customers[3].customerAWSAccountId);
      expect(await ctx.admin.customers()).toHaveLength(4);
    });

    test('POST /_admin/customers/subscription changes the state and answers the customer', async () => {
      const world = await seedWorld(ctx.admin);
      const pending = await ctx.admin.setSubscription({ licenseArn: world.alice.licenseArn }, 'unsubscribe-pending');
      expect(pending).toMatchObject({ licenseArn: world.alice.licenseArn, state: 'unsubscribe-pending' });
      const legacy = await ctx.admin.setSubscription({ customerIdentifier: world.carol.customerIdentifier ?? '' }, 'unsubscribed');
      expect(legacy).toMatchObject({ customerIdentifier: world.carol.customerIdentifier, state: 'unsubscribed' });
      const states = Object.fromEntries((await ctx.admin.customers()).map((c) => [c.licenseArn, c.state]));
      expect(states[world.alice.licenseArn]).toBe('unsubscribe-pending');
      expect(states[world.carol.licenseArn]).toBe('unsubscribed');
      expect(states[world.bob.licenseArn]).toBe('subscribed');
    });
  });

  describe('tokens', () => {
    test('POST /_admin/tokens answers 201 with a new token for the same customer, expiring after the lifetime', async () => {
      const world = await seedWorld(ctx.admin);
      const response = await ctx.admin.raw('POST', '/_admin/tokens', { licenseArn: world.bob.licenseArn });
      expect(response.status).toBe(201);
      const { registrationToken, expiresAt } = response.json;
      expect(registrationToken).not.toBe(world.bob.registrationToken);
      for (const character of TOKEN_SPECIAL_CHARACTERS) expect(registrationToken).toContain(character);
      expect(Date.parse(expiresAt)).toBe(T0.getTime() + TEST_CONFIG.tokenLifetimeSeconds * 1000);
      const out = await ctx.metering.send(new ResolveCustomerCommand({ RegistrationToken: registrationToken }));
      expect(out).toMatchObject({ LicenseArn: world.bob.licenseArn, CustomerAWSAccountId: world.bob.customerAWSAccountId });
    });
  });

  describe('calls log', () => {
    test('every API call is logged with operation, time, outcome, HTTP status (and record count); ?operation= filters', async () => {
      const world = await seedWorld(ctx.admin);
      await ctx.metering.send(new ResolveCustomerCommand({ RegistrationToken: world.alice.registrationToken }));
      await rejectionOf(ctx.metering.send(new ResolveCustomerCommand({ RegistrationToken: 'bogus' })));
      await ctx.metering.send(new BatchMeterUsageCommand({ UsageRecords: [licenseRecord(world.alice), licenseRecord(world.bob)] }));
      await ctx.entitlement.send(new GetEntitlementsCommand({ ProductCode: world.lic.productCode }));

      const calls = await ctx.admin.calls();
      expect(calls.map((c) => [c.operation, c.outcome, c.httpStatus])).toEqual([
        ['ResolveCustomer', 'Success', 200],
        ['ResolveCustomer', 'InvalidTokenException', 400],
        ['BatchMeterUsage', 'Success', 200],
        ['GetEntitlements', 'Success', 200],
      ]);
      for (const call of calls) expect(Number.isNaN(Date.parse(call.time))).toBe(false);
      expect(calls[2].recordCount).toBe(2);

      const resolves = await ctx.admin.calls('ResolveCustomer');
      expect(resolves).toHaveLength(2);
      expect(resolves.every((c) => c.operation === 'ResolveCustomer')).toBe(true);
      expect(await ctx.admin.calls('BatchMeterUsage')).toHaveLength(1);
    });

    test('admin requests are not API calls', async () => {
      await seedWorld(ctx.admin);
      await ctx.admin.products();
      await ctx.admin.meteringRecords();
      expect(await ctx.admin.calls()).toEqual([]);
    });
  });

  describe('clock', () => {
    test('GET shows the frozen clock; POST {now} sets it; POST {advanceSeconds} moves it; the in-process clock is the same', async () => {
      expect(ctx.sim.clock).toBe(ctx.clock);
      expect((await ctx.admin.clock()).getTime()).toBe(T0.getTime());
      await sleep(20);
      expect((await ctx.admin.clock()).getTime()).toBe(T0.getTime()); // frozen: wall time does not move it

      const set = await ctx.admin.raw('POST', '/_admin/clock', { now: '2026-12-24T18:00:00Z' });
      expect(set.status).toBe(200);
      expect(Date.parse(set.json.now)).toBe(Date.parse('2026-12-24T18:00:00Z'));
      expect(ctx.clock.now().toISOString()).toBe('2026-12-24T18:00:00.000Z');

      expect((await ctx.admin.advanceClock(90)).toISOString()).toBe('2026-12-24T18:01:30.000Z');
      ctx.clock.advance(30);
      expect((await ctx.admin.clock()).toISOString()).toBe('2026-12-24T18:02:00.000Z');
      ctx.clock.set(new Date('2027-01-01T00:00:00Z'));
      expect((await ctx.admin.clock()).toISOString()).toBe('2027-01-01T00:00:00.000Z');
    });

    test('the clock drives token expiry through the admin API as well', async () => {
      const world = await seedWorld(ctx.admin);
      await ctx.admin.advanceClock(TEST_CONFIG.tokenLifetimeSeconds + 1);
      const error = await rejectionOf(ctx.metering.send(new ResolveCustomerCommand({ RegistrationToken: world.alice.registrationToken })));
      expect(error.name).toBe('ExpiredTokenException');
    });

    test('SimulatorClock: a running clock ticks with real time from its start; a frozen one does not', async () => {
      const start = new Date('2030-01-01T00:00:00Z');
      const running = new SimulatorClock({ start });
      const frozen = new SimulatorClock({ start, frozen: true });
      await sleep(30);
      expect(running.now().getTime()).toBeGreaterThanOrEqual(start.getTime() + 25);
      expect(running.now().getTime()).toBeLessThan(start.getTime() + 5000);
      expect(frozen.now().getTime()).toBe(start.getTime());
      const realTime = new SimulatorClock();
      expect(Math.abs(realTime.now().getTime() - Date.now())).toBeLessThan(1000);
    });
  });

  describe('config', () => {
    test('GET shows the configuration; POST changes only the given keys', async () => {
      expect(await ctx.admin.config()).toEqual(TEST_CONFIG);
      const changed = await ctx.admin.setConfig({ timestampWindow: '6h' });
      expect(changed).toEqual({ ...TEST_CONFIG, timestampWindow: '6h' });
      expect(await ctx.admin.config()).toEqual({ ...TEST_CONFIG, timestampWindow: '6h' });
    });

    test('defaults: 4 h tokens, 24h window, shuffled results, 10 calls per second; start options override them', async () => {
      const plain = await startMarketplaceSimulator();
      const tuned = await startMarketplaceSimulator({ config: { resultOrder: 'request', tokenLifetimeSeconds: 60 } });
      try {
        expect(plain.url).toBe(`http://127.0.0.1:${plain.port}`);
        expect(tuned.port).not.toBe(plain.port);
        expect(await new AdminClient(plain.url).config()).toEqual(DEFAULT_CONFIG);
        expect(await new AdminClient(tuned.url).config()).toEqual({ ...DEFAULT_CONFIG, resultOrder: 'request', tokenLifetimeSeconds: 60 });
      } finally {
        await plain.stop();
        await tuned.stop();
      }
    });
  });

  describe('reset', () => {
    test('POST /_admin/reset empties products, customers, records, calls and faults, and restores clock and configuration', async () => {
      const world = await seedWorld(ctx.admin);
      await ctx.metering.send(new BatchMeterUsageCommand({ UsageRecords: [licenseRecord(world.alice)] }));
      await ctx.admin.addFault({ operation: 'ResolveCustomer', error: 'ThrottlingException', count: null });
      await ctx.admin.setConfig({ timestampWindow: '6h', resultOrder: 'request' });
      await ctx.admin.advanceClock(7200);
      expect(await ctx.admin.meteringRecords()).toHaveLength(1);

      await ctx.admin.reset();

      expect(await ctx.admin.products()).toEqual([]);
      expect(await ctx.admin.customers()).toEqual([]);
      expect(await ctx.admin.meteringRecords()).toEqual([]);
      expect(await ctx.admin.calls()).toEqual([]);
      expect(faultList(await ctx.admin.faults())).toEqual([]);
      expect((await ctx.admin.clock()).getTime()).toBe(T0.getTime());
      // The suite's simulator was started with TEST_CONFIG: "the start" is that configuration.
      expect(await ctx.admin.config()).toEqual(TEST_CONFIG);
      // The old customers and their tokens are gone.
      const error = await rejectionOf(ctx.metering.send(new ResolveCustomerCommand({ RegistrationToken: world.alice.registrationToken })));
      expect(error.name).toBe('InvalidTokenException');
    });
  });

  describe('seed option', () => {
    test('products and customers given as `seed` exist at start, and their tokens resolve', async () => {
      const clock = new SimulatorClock({ start: T0, frozen: true });
      const seeded = await startMarketplaceSimulator({
        clock,
        config: { rateLimitPerSecond: 0 },
        seed: {
          products: [
            { productCode: 'seed-lic', dimensions: ['requests'], identityMode: 'license', fulfillmentUrl: 'https://seller.example/register' },
            { productCode: 'seed-legacy', dimensions: ['requests'], identityMode: 'legacy' },
          ],
          customers: [
            { productCode: 'seed-lic', customerAWSAccountId: '121212121212', registrationToken: 'seed+token/one=.:_-' },
            { productCode: 'seed-legacy', customerAWSAccountId: '343434343434', registrationToken: 'seed+token/two=.:_-' },
          ],
        },
      });
      const client = meteringClient(seeded.url);
      try {
        const admin = new AdminClient(seeded.url);
        expect((await admin.products()).map((p) => p.productCode).sort()).toEqual(['seed-legacy', 'seed-lic']);
        const customers = await admin.customers();
        expect(customers.map((c) => c.customerAWSAccountId).sort()).toEqual(['121212121212', '343434343434']);
        const lic = await client.send(new ResolveCustomerCommand({ RegistrationToken: 'seed+token/one=.:_-' }));
        expect(lic).toMatchObject({ ProductCode: 'seed-lic', CustomerAWSAccountId: '121212121212' });
        expect(lic.LicenseArn).toMatch(LICENSE_ARN_PATTERN);
        const legacy = await client.send(new ResolveCustomerCommand({ RegistrationToken: 'seed+token/two=.:_-' }));
        expect(legacy).toMatchObject({ ProductCode: 'seed-legacy', CustomerAWSAccountId: '343434343434', CustomerIdentifier: expect.any(String) });
      } finally {
        client.destroy();
        await seeded.stop();
      }
    });
  });

  describe('bad bodies get 400 {"error": "..."}', () => {
    const cases: [string, string, string, unknown][] = [
      ['products: not JSON', 'POST', '/_admin/products', '{not json'],
      ['products: no productCode', 'POST', '/_admin/products', { dimensions: ['requests'], identityMode: 'license' }],
      ['products: dimensions not a list', 'POST', '/_admin/products', { productCode: 'p', dimensions: 'requests', identityMode: 'license' }],
      ['products: unknown identityMode', 'POST', '/_admin/products', { productCode: 'p', dimensions: ['requests'], identityMode: 'hybrid' }],
      ['customers: no productCode', 'POST', '/_admin/customers', {}],
      ['customers: account id not 12 digits', 'POST', '/_admin/customers', { productCode: 'prod-a', customerAWSAccountId: '1234' }],
      ['customers: subscribed not a boolean', 'POST', '/_admin/customers', { productCode: 'prod-a', subscribed: 'yes' }],
      ['tokens: neither licenseArn nor customerIdentifier', 'POST', '/_admin/tokens', {}],
      ['subscription: unknown state', 'POST', '/_admin/customers/subscription', { licenseArn: 'LICENSE', state: 'paused' }],
      ['entitlements: two values in one entitlement', 'POST', '/_admin/entitlements', { licenseArn: 'LICENSE', entitlements: [{ dimension: 'requests', integerValue: 1, stringValue: 'x' }] }],
      ['entitlements: no value', 'POST', '/_admin/entitlements', { licenseArn: 'LICENSE', entitlements: [{ dimension: 'requests' }] }],
      ['clock: now not a date', 'POST', '/_admin/clock', { now: 'yesterday' }],
      ['clock: advanceSeconds not a number', 'POST', '/_admin/clock', { advanceSeconds: 'ten' }],
      ['faults: no operation', 'POST', '/_admin/faults', { error: 'ThrottlingException' }],
      ['faults: unprocessedFraction above 1', 'POST', '/_admin/faults', { operation: 'BatchMeterUsage', unprocessedFraction: 1.5 }],
      ['config: timestampWindow 1h', 'POST', '/_admin/config', { timestampWindow: '1h' }],
      ['config: resultOrder random', 'POST', '/_admin/config', { resultOrder: 'random' }],
    ];
    test.each(cases)('%s', async (_name, method, path, body) => {
      await ctx.admin.createProduct({ productCode: 'prod-a', dimensions: ['requests'], identityMode: 'license' });
      const customer = await ctx.admin.createCustomer({ productCode: 'prod-a' });
      const realBody = typeof body === 'object' && body !== null && (body as { licenseArn?: string }).licenseArn === 'LICENSE' ? { ...body, licenseArn: customer.licenseArn } : body;
      const before = { products: await ctx.admin.products(), customers: await ctx.admin.customers(), config: await ctx.admin.config(), clock: await ctx.admin.clock() };
      const response = await ctx.admin.raw(method, path, realBody);
      expect(response.status).toBe(400);
      expect(response.json).toEqual({ error: expect.any(String) });
      // Nothing changed.
      expect({ products: await ctx.admin.products(), customers: await ctx.admin.customers(), config: await ctx.admin.config(), clock: await ctx.admin.clock() }).toEqual(before);
    });

    test('a customer, token or subscription for something unknown is refused (4xx with an error)', async () => {
      // README: "A bad body gets 400"; whether an unknown product or licence is a bad body (400) or not found (404) is not said.
      const requests: [string, unknown][] = [
        ['/_admin/customers', { productCode: 'no-such-product' }],
        ['/_admin/tokens', { licenseArn: 'arn:aws:license-manager::123456789012:license:l-0000' }],
        ['/_admin/customers/subscription', { customerIdentifier: 'nobody', state: 'subscribed' }],
      ];
      for (const [path, body] of requests) {
        const response = await ctx.admin.raw('POST', path, body);
        expect({ path, status: [400, 404].includes(response.status) }).toEqual({ path, status: true });
        expect(response.json).toEqual({ error: expect.any(String) });
      }
    });
  });
});
