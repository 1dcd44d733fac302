/**
 * Injected faults (errors, count, latency) and the BatchMeterUsage rate limit, observed through the real
 * SDK clients, including the SDK's own default retries, and counted in GET /_admin/calls.
 */
import {
  BatchMeterUsageCommand,
  DisabledApiException,
  InternalServiceErrorException,
  InvalidTokenException,
  ResolveCustomerCommand,
  ThrottlingException,
} from '@aws-sdk/client-marketplace-metering';
import {
  GetEntitlementsCommand,
  InternalServiceErrorException as EntitlementInternalServiceErrorException,
  ThrottlingException as EntitlementThrottlingException,
} from '@aws-sdk/client-marketplace-entitlement-service';
import { faultList, licenseRecord, meteringClient, rejectionOf, seedWorld, useSimulator, type World } from './helpers';

describe('faults and throttling', () => {
  const ctx = useSimulator();
  let world: World;

  beforeEach(async () => {
    world = await seedWorld(ctx.admin);
  });

  const resolve = (client = ctx.meteringOnce) => client.send(new ResolveCustomerCommand({ RegistrationToken: world.alice.registrationToken }));
  const meterOne = (client = ctx.meteringOnce) => client.send(new BatchMeterUsageCommand({ UsageRecords: [licenseRecord(world.alice)] }));

  describe('error faults', () => {
    test('SDK default retries: a throttle lasting 2 calls costs 3 calls and succeeds on the 3rd', async () => {
      await ctx.admin.addFault({ operation: 'BatchMeterUsage', error: 'ThrottlingException', count: 2 });
      const out = await meterOne(ctx.metering); // the client with the SDK's default retry strategy
      expect(out.$metadata.attempts).toBe(3);
      expect(out.Results?.[0]?.Status).toBe('Success');
      const calls = await ctx.admin.calls('BatchMeterUsage');
      expect(calls.map((c) => c.outcome)).toEqual(['ThrottlingException', 'ThrottlingException', 'Success']);
      expect(calls.map((c) => c.httpStatus)).toEqual([400, 400, 200]);
      expect(await ctx.admin.meteringRecords()).toHaveLength(1);
    });

    test('SDK default retries: InternalServiceErrorException (500) is retried; 3 failures exhaust the 3 attempts', async () => {
      await ctx.admin.addFault({ operation: 'ResolveCustomer', error: 'InternalServiceErrorException', count: 3 });
      const error = await rejectionOf(resolve(ctx.metering));
      expect(error).toBeInstanceOf(InternalServiceErrorException);
      expect(error.$metadata.httpStatusCode).toBe(500);
      expect(error.$metadata.attempts).toBe(3);
      const calls = await ctx.admin.calls('ResolveCustomer');
      expect(calls.map((c) => [c.outcome, c.httpStatus])).toEqual(Array(3).fill(['InternalServiceErrorException', 500]));
      // The fault is used up: the next call goes through.
      await expect(resolve(ctx.metering)).resolves.toMatchObject({ LicenseArn: world.alice.licenseArn });
    });

    test('SDK default retries: a non-retryable fault (InvalidTokenException) is tried once', async () => {
      await ctx.admin.addFault({ operation: 'ResolveCustomer', error: 'InvalidTokenException' });
      const error = await rejectionOf(resolve(ctx.metering));
      expect(error).toBeInstanceOf(InvalidTokenException);
      expect(await ctx.admin.calls('ResolveCustomer')).toHaveLength(1);
    });

    test('a fault defaults to one call; the call after it succeeds', async () => {
      await ctx.admin.addFault({ operation: 'BatchMeterUsage', error: 'DisabledApiException' });
      const error = await rejectionOf(meterOne());
      expect(error).toBeInstanceOf(DisabledApiException);
      expect(error.$metadata.httpStatusCode).toBe(400);
      await expect(meterOne()).resolves.toMatchObject({ Results: [expect.objectContaining({ Status: 'Success' })] });
    });

    test('count: n fails exactly the next n calls (fast retries observe it too)', async () => {
      await ctx.admin.addFault({ operation: 'BatchMeterUsage', error: 'InternalServiceErrorException', count: 4 });
      const fast = meteringClient(ctx.sim.url, { fastAttempts: 3 });
      try {
        const error = await rejectionOf(meterOne(fast)); // calls 1-3
        expect(error).toBeInstanceOf(InternalServiceErrorException);
        expect(error.$metadata.attempts).toBe(3);
        const out = await meterOne(fast); // call 4 fails, call 5 succeeds
        expect(out.$metadata.attempts).toBe(2);
      } finally {
        fast.destroy();
      }
      const outcomes = (await ctx.admin.calls('BatchMeterUsage')).map((c) => c.outcome);
      expect(outcomes).toEqual([...Array(4).fill('InternalServiceErrorException'), 'Success']);
    });

    test('count: null fails every call until the faults are cleared', async () => {
      await ctx.admin.addFault({ operation: 'ResolveCustomer', error: 'ThrottlingException', count: null });
      for (let i = 0; i < 4; i++) {
        const error = await rejectionOf(resolve());
        expect(error).toBeInstanceOf(ThrottlingException);
      }
      expect(faultList(await ctx.admin.faults())).toHaveLength(1);
      await ctx.admin.clearFaults();
      expect(faultList(await ctx.admin.faults())).toEqual([]);
      await expect(resolve()).resolves.toMatchObject({ LicenseArn: world.alice.licenseArn });
    });

    test('POST /_admin/faults answers 201; GET /_admin/faults lists a pending fault until it is used', async () => {
      const created = await ctx.admin.raw('POST', '/_admin/faults', { operation: 'BatchMeterUsage', error: 'ThrottlingException', count: 1 });
      expect(created.status).toBe(201);
      const pending = faultList(await ctx.admin.faults());
      expect(pending).toHaveLength(1);
      expect(pending[0]).toMatchObject({ operation: 'BatchMeterUsage', error: 'ThrottlingException' });
      await rejectionOf(meterOne());
      expect(faultList(await ctx.admin.faults())).toEqual([]);
    });

    test('a fault only affects its own operation', async () => {
      await ctx.admin.addFault({ operation: 'GetEntitlements', error: 'InternalServiceErrorException' });
      await expect(resolve()).resolves.toMatchObject({ LicenseArn: world.alice.licenseArn });
      await expect(meterOne()).resolves.toBeDefined();
      expect(faultList(await ctx.admin.faults())).toHaveLength(1);
      const error = await rejectionOf(ctx.entitlementOnce.send(new GetEntitlementsCommand({ ProductCode: world.lic.productCode })));
      expect(error).toBeInstanceOf(EntitlementInternalServiceErrorException);
      expect(error.$metadata.httpStatusCode).toBe(500);
    });

    test('GetEntitlements throttling fault surfaces as the entitlement client\'s ThrottlingException', async () => {
      await ctx.admin.addFault({ operation: 'GetEntitlements', error: 'ThrottlingException' });
      const error = await rejectionOf(ctx.entitlementOnce.send(new GetEntitlementsCommand({ ProductCode: world.lic.productCode })));
      expect(error).toBeInstanceOf(EntitlementThrottlingException);
    });

    test('a fault injected for one call leaves nothing billed for that call', async () => {
      await ctx.admin.addFault({ operation: 'BatchMeterUsage', error: 'InternalServiceErrorException' });
      await rejectionOf(meterOne());
      expect(await ctx.admin.meteringRecords()).toEqual([]);
    });
  });

  describe('latency', () => {
    test('latencyMs delays the answer; the call still succeeds; the next one is prompt', async () => {
      await ctx.admin.addFault({ operation: 'ResolveCustomer', latencyMs: 400 });
      // "Prompt" is not timed (a busy machine can take 350 ms over any call): the simulator runs in
      // this process and waits with setTimeout, so its 400 ms waits are seen (the SDK sets timers too).
      const timers = jest.spyOn(global, 'setTimeout');
      const latencyWaits = () => timers.mock.calls.filter(([, ms]) => ms === 400).length;
      try {
        const started = Date.now();
        await expect(resolve()).resolves.toMatchObject({ LicenseArn: world.alice.licenseArn });
        expect(Date.now() - started).toBeGreaterThanOrEqual(380);
        expect(latencyWaits()).toBe(1);
        await resolve();
        expect(latencyWaits()).toBe(1);
      } finally {
        timers.mockRestore();
      }
    });

    test('latency combines with an error', async () => {
      await ctx.admin.addFault({ operation: 'BatchMeterUsage', latencyMs: 300, error: 'ThrottlingException' });
      const started = Date.now();
      const error = await rejectionOf(meterOne());
      expect(Date.now() - started).toBeGreaterThanOrEqual(280);
      expect(error).toBeInstanceOf(ThrottlingException);
    });
  });

  describe('rate limit (wall time)', () => {
    /**
     * The simulator (in this process) counts calls over a sliding second of Date.now(). Date is held
     * still during a burst, so the burst is within one second however slow the machine is (a real
     * clock could let a slow burst spread over more than a second and pass whole); timers stay real.
     */
    function holdTheClock(): void {
      jest.useFakeTimers({
        now: Date.now(),
        doNotFake: ['hrtime', 'nextTick', 'performance', 'queueMicrotask', 'setImmediate', 'clearImmediate', 'setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'],
      });
    }
    afterEach(() => {
      jest.useRealTimers();
    });

    async function burst(n: number) {
      const results = await Promise.allSettled(Array.from({ length: n }, () => meterOne()));
      const errors = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason);
      return { ok: results.length - errors.length, errors };
    }

    test('more than 10 BatchMeterUsage calls in one second: the 11th is ThrottlingException (retries off); later calls pass', async () => {
      await ctx.admin.setConfig({ rateLimitPerSecond: 10 });
      holdTheClock();
      const burstAt = Date.now();
      const { ok, errors } = await burst(11);
      expect(ok).toBe(10);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toBeInstanceOf(ThrottlingException);
      expect(errors[0].$metadata.httpStatusCode).toBe(400);
      const outcomes = (await ctx.admin.calls('BatchMeterUsage')).map((c) => c.outcome);
      expect(outcomes.filter((o) => o === 'ThrottlingException')).toHaveLength(1);

      // The burst counts for a whole second (the held clock would hide a shorter window), then no more.
      jest.setSystemTime(burstAt + 999);
      expect(await rejectionOf(meterOne())).toBeInstanceOf(ThrottlingException);
      jest.setSystemTime(burstAt + 1100);
      await expect(meterOne()).resolves.toMatchObject({ Results: [expect.objectContaining({ Status: 'Success' })] });
    });

    test('rateLimitPerSecond sets the limit (3 per second: the 4th is throttled)', async () => {
      await ctx.admin.setConfig({ rateLimitPerSecond: 3 });
      holdTheClock();
      const burstAt = Date.now();
      const { ok, errors } = await burst(4);
      expect(ok).toBe(3);
      expect(errors.map((e) => e.name)).toEqual(['ThrottlingException']);
      jest.setSystemTime(burstAt + 999);
      expect(await rejectionOf(meterOne())).toBeInstanceOf(ThrottlingException);
    });

    test('rateLimitPerSecond: 0 turns the limit off (30 calls at once all pass)', async () => {
      await ctx.admin.setConfig({ rateLimitPerSecond: 0 });
      const { ok, errors } = await burst(30);
      expect(errors).toEqual([]);
      expect(ok).toBe(30);
    });
  });
});
