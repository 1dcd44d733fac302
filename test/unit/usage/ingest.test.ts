import { bucketKeyOf } from '../../../lambda/core/metering/hour-bucket';
import { EventResult, ingestMessage, IngestPorts, MessageResult } from '../../../lambda/core/usage/ingest';
import { tagSetKey } from '../../../lambda/core/usage/usage-rules';
import {
  FakeCustomerDirectory,
  FakeUsageLedger,
  LEGACY_CUSTOMER,
  LICENSE_ARN,
  LICENSE_CUSTOMER,
  LICENSE_ID,
  NOW,
  OTHER_LICENSE_ARN,
  OTHER_LICENSE_CUSTOMER,
  PRODUCTS,
} from './fake-usage-ports';

const event = (change: Record<string, unknown> = {}) => ({
  licenseArn: LICENSE_ARN,
  dimension: 'requests',
  quantity: 5,
  timestamp: '2026-11-02T10:15:00Z',
  ...change,
});

const licenseBucket = (hour: string, dimension = 'requests') => bucketKeyOf(LICENSE_CUSTOMER.customerKey, dimension, hour);

function setup(now: Date = NOW) {
  const ledger = new FakeUsageLedger();
  const customers = new FakeCustomerDirectory();
  const ports: IngestPorts = { ledger, customers, products: PRODUCTS, now: () => now };
  let counter = 0;
  const ingest = (body: unknown, messageId = `msg-${++counter}`) =>
    ingestMessage(ports, { messageId, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { ledger, customers, ports, ingest };
}

function eventsOf(result: MessageResult): readonly EventResult[] {
  if (!('events' in result)) throw new Error(`the message was rejected: ${JSON.stringify(result.rejectedMessage)}`);
  return result.events;
}

async function single(promise: Promise<MessageResult>): Promise<EventResult> {
  const events = eventsOf(await promise);
  expect(events).toHaveLength(1);
  return events[0];
}

describe('ingestMessage: hour buckets', () => {
  it.each([
    ['2026-11-02T09:00:00.000Z', '2026-11-02T09:00:00.000Z'],
    ['2026-11-02T09:59:59.999Z', '2026-11-02T09:00:00.000Z'],
    ['2026-11-02T10:00:00.000Z', '2026-11-02T10:00:00.000Z'],
    ['2026-11-02T15:29:59+05:30', '2026-11-02T09:00:00.000Z'],
    ['2026-11-02T15:30:00+05:30', '2026-11-02T10:00:00.000Z'],
    [Date.UTC(2026, 10, 2, 9, 59, 59, 999), '2026-11-02T09:00:00.000Z'],
  ])('counts usage at %j in the hour starting %s', async (timestamp, hour) => {
    const { ledger, ingest } = setup();
    const result = await single(ingest(event({ timestamp, quantity: 7 })));
    expect(result).toEqual({ status: 'counted', bucketKey: licenseBucket(hour), rolledOver: false });
    expect(ledger.quantityOf(licenseBucket(hour))).toBe(7);
    expect(ledger.buckets.size).toBe(1);
  });

  it('adds up events of the same customer, dimension and hour, and keeps other dimensions and hours apart', async () => {
    const { ledger, ingest } = setup();
    const results = eventsOf(
      await ingest([
        event({ quantity: 1, timestamp: '2026-11-02T10:01:00Z' }),
        event({ quantity: 2, timestamp: '2026-11-02T10:19:59Z' }),
        event({ quantity: 4, timestamp: '2026-11-02T09:59:00Z' }),
        event({ quantity: 8, dimension: 'storage' }),
        event({ quantity: 16, licenseArn: OTHER_LICENSE_ARN }),
      ]),
    );
    expect(results.every((r) => r.status === 'counted')).toBe(true);
    expect(ledger.quantityOf(licenseBucket('2026-11-02T10:00:00.000Z'))).toBe(3);
    expect(ledger.quantityOf(licenseBucket('2026-11-02T09:00:00.000Z'))).toBe(4);
    expect(ledger.quantityOf(licenseBucket('2026-11-02T10:00:00.000Z', 'storage'))).toBe(8);
    expect(ledger.quantityOf(bucketKeyOf(OTHER_LICENSE_CUSTOMER.customerKey, 'requests', '2026-11-02T10:00:00.000Z'))).toBe(16);
    expect(ledger.totalQuantity()).toBe(31);
  });

  it('takes the bucket identity from the registered customer, not from the event', async () => {
    const { ledger, ingest } = setup();
    await ingest(event());
    const [stored] = [...ledger.buckets.values()];
    expect(stored.addition).toEqual({
      bucketKey: licenseBucket('2026-11-02T10:00:00.000Z'),
      customerKey: `license#${LICENSE_ID}`,
      productCode: 'prod-license',
      identityMode: 'license',
      customerAWSAccountId: '111122223333',
      licenseArn: LICENSE_ARN,
      customerIdentifier: undefined,
      dimension: 'requests',
      hourStart: '2026-11-02T10:00:00.000Z',
    });
    expect(ledger.calls[0].at).toEqual(NOW);
  });

  it('sums allocations per tag set, whatever the key order of the tags', async () => {
    const { ledger, ingest } = setup();
    await ingest([
      event({ quantity: 5, allocations: [{ quantity: 3, tags: { team: 'a', env: 'prod' } }, { quantity: 2, tags: { team: 'b' } }] }),
      event({ quantity: 4, allocations: [{ quantity: 4, tags: { env: 'prod', team: 'a' } }] }),
    ]);
    const stored = ledger.buckets.get(licenseBucket('2026-11-02T10:00:00.000Z'))!;
    expect(stored.quantity).toBe(9);
    expect(stored.allocations).toEqual({ [tagSetKey({ team: 'a', env: 'prod' })]: 7, [tagSetKey({ team: 'b' })]: 2 });
  });
});

describe('ingestMessage: de-duplication', () => {
  it('counts an eventId once, also when it comes again in another message', async () => {
    const { ledger, ingest } = setup();
    expect((await single(ingest(event({ eventId: 'evt-1' }), 'msg-a'))).status).toBe('counted');
    const again = await single(ingest(event({ eventId: 'evt-1', quantity: 999 }), 'msg-b'));
    expect(again).toEqual({ status: 'duplicate', eventKey: `${LICENSE_CUSTOMER.customerKey}|evt-1` });
    expect(ledger.totalQuantity()).toBe(5);
  });

  it('adds nothing when a message without eventIds is redelivered (same message id)', async () => {
    const { ledger, ingest } = setup();
    const body = [event({ quantity: 1 }), event({ quantity: 2 }), event({ quantity: 4, dimension: 'storage' })];
    expect(eventsOf(await ingest(body, 'msg-1')).map((r) => r.status)).toEqual(['counted', 'counted', 'counted']);
    expect(eventsOf(await ingest(body, 'msg-1')).map((r) => r.status)).toEqual(['duplicate', 'duplicate', 'duplicate']);
    expect(ledger.totalQuantity()).toBe(7);
  });

  it('defaults the eventId to the message id and the position', async () => {
    const { ledger, ingest } = setup();
    await ingest([event(), event({ eventId: 'own-id' }), event()], 'msg-42');
    expect(ledger.calls.map((c) => c.eventKey)).toEqual([
      `${LICENSE_CUSTOMER.customerKey}|msg-42#0`,
      `${LICENSE_CUSTOMER.customerKey}|own-id`,
      `${LICENSE_CUSTOMER.customerKey}|msg-42#2`,
    ]);
    // The same events in a new message are new usage.
    await ingest([event(), event()], 'msg-43');
    expect(ledger.totalQuantity()).toBe(25);
  });

  it('scopes an eventId to its customer', async () => {
    const { ledger, ingest } = setup();
    const results = eventsOf(await ingest([event({ eventId: 'shared' }), event({ eventId: 'shared', licenseArn: OTHER_LICENSE_ARN })]));
    expect(results.map((r) => r.status)).toEqual(['counted', 'counted']);
    expect(ledger.totalQuantity()).toBe(10);
  });
});

describe('ingestMessage: late events', () => {
  it('adds an event whose hour is sealed to the current open hour', async () => {
    const { ledger, ingest } = setup();
    ledger.sealed.add(licenseBucket('2026-11-02T09:00:00.000Z'));
    const result = await single(ingest(event({ timestamp: '2026-11-02T09:30:00Z', quantity: 6 })));
    expect(result).toEqual({ status: 'counted', bucketKey: licenseBucket('2026-11-02T10:00:00.000Z'), rolledOver: true });
    expect(ledger.quantityOf(licenseBucket('2026-11-02T09:00:00.000Z'))).toBe(0);
    expect(ledger.quantityOf(licenseBucket('2026-11-02T10:00:00.000Z'))).toBe(6);
  });

  it('does not roll over events whose hour is still open, nor other customers of a sealed hour', async () => {
    const { ledger, ingest } = setup();
    ledger.sealed.add(licenseBucket('2026-11-02T09:00:00.000Z'));
    const result = await single(ingest(event({ timestamp: '2026-11-02T09:30:00Z', licenseArn: OTHER_LICENSE_ARN })));
    expect(result).toMatchObject({ status: 'counted', rolledOver: false });
  });

  it('counts a redelivered late event once', async () => {
    const { ledger, ingest } = setup();
    ledger.sealed.add(licenseBucket('2026-11-02T09:00:00.000Z'));
    const late = event({ timestamp: '2026-11-02T09:30:00Z', eventId: 'late-1' });
    expect((await single(ingest(late))).status).toBe('counted');
    expect((await single(ingest(late))).status).toBe('duplicate');
    expect(ledger.totalQuantity()).toBe(5);
  });

  it('treats an event counted before its hour was sealed as a duplicate when redelivered', async () => {
    const { ledger, ingest } = setup();
    const early = event({ timestamp: '2026-11-02T09:30:00Z', eventId: 'e-1' });
    await ingest(early);
    ledger.sealed.add(licenseBucket('2026-11-02T09:00:00.000Z'));
    expect((await single(ingest(early))).status).toBe('duplicate');
    expect(ledger.quantityOf(licenseBucket('2026-11-02T10:00:00.000Z'))).toBe(0);
  });

  it('rejects the event when even the current hour is sealed (metered early, the customer leaving)', async () => {
    const { ledger, ingest } = setup();
    ledger.sealed.add(licenseBucket('2026-11-02T10:00:00.000Z'));
    const result = await single(ingest(event()));
    expect(result).toMatchObject({ status: 'rejected', rejection: { reason: 'hour-already-billed' } });
  });
});

describe('ingestMessage: subscription state', () => {
  it('counts usage inside the final window of a customer who is leaving', async () => {
    const { customers, ledger, ingest } = setup();
    const key = LICENSE_CUSTOMER.customerKey;
    customers.setSubscription(key, { status: 'unsubscribe-pending', finalUsageUntil: '2026-11-02T11:00:00.000Z' });
    expect(await single(ingest(event()))).toMatchObject({ status: 'counted' });
    expect(ledger.calls).toHaveLength(1);
  });

  it('rejects usage once the final window has closed, writing nothing', async () => {
    const { customers, ledger, ingest } = setup();
    const key = LICENSE_CUSTOMER.customerKey;
    customers.setSubscription(key, { status: 'unsubscribed', finalUsageUntil: '2026-11-02T09:30:00.000Z' });
    expect(await single(ingest(event()))).toMatchObject({ status: 'rejected', rejection: { reason: 'customer-not-subscribed' } });
    expect(ledger.calls).toHaveLength(0);
  });

  it('counts usage of a pending customer (metering holds it)', async () => {
    const { customers, ingest } = setup();
    const key = LICENSE_CUSTOMER.customerKey;
    customers.setSubscription(key, { status: 'pending' });
    expect(await single(ingest(event()))).toMatchObject({ status: 'counted' });
  });
});

describe('ingestMessage: customers', () => {
  it('rejects usage of an unknown customer, writing nothing', async () => {
    const { ledger, ingest } = setup();
    const result = await single(ingest(event({ licenseArn: 'arn:aws:license-manager::999999999999:license:l-unknown00000000000' })));
    expect(result).toMatchObject({ status: 'rejected', position: 0, rejection: { reason: 'unknown-customer' } });
    expect(ledger.calls).toHaveLength(0);
  });

  it('rejects a legacy event for an unknown customer identifier', async () => {
    const { ingest } = setup();
    const result = await single(ingest({ productCode: 'prod-legacy', customerIdentifier: 'nobody', dimension: 'requests', quantity: 1, timestamp: '2026-11-02T10:00:00Z' }));
    expect(result).toMatchObject({ status: 'rejected', rejection: { reason: 'unknown-customer' } });
  });

  it.each([
    ['an account id that is not the licence holder', { customerAWSAccountId: '999999999999' }],
    ['another product code', { productCode: 'prod-legacy' }],
    ['a customer identifier next to the licence', { customerIdentifier: 'someone-else' }],
  ])('rejects %s as an identity mismatch', async (_what, change) => {
    const { ledger, ingest } = setup();
    const result = await single(ingest(event(change)));
    expect(result).toMatchObject({ status: 'rejected', rejection: { reason: 'identity-mismatch' } });
    expect(ledger.calls).toHaveLength(0);
  });

  it('accepts the matching account id and product code', async () => {
    const { ingest } = setup();
    const result = await single(ingest(event({ customerAWSAccountId: '111122223333', productCode: 'prod-license' })));
    expect(result.status).toBe('counted');
  });

  it.each([
    ['without its arn: prefix', `aws:license-manager::111122223333:license:${LICENSE_ID}`],
    ['with a region and a slash', `arn:aws:license-manager:us-east-1:111122223333:license/${LICENSE_ID}`],
    ['as the bare licence id', LICENSE_ID],
  ])('finds the customer from a licence ARN %s', async (_what, licenseArn) => {
    const { ledger, customers, ingest } = setup();
    const result = await single(ingest(event({ licenseArn })));
    expect(result).toEqual({ status: 'counted', bucketKey: licenseBucket('2026-11-02T10:00:00.000Z'), rolledOver: false });
    expect(customers.lookups).toEqual([LICENSE_CUSTOMER.customerKey]);
    // The bucket carries the ARN AWS gave us, not the one in the event.
    expect([...ledger.buckets.values()][0].addition.licenseArn).toBe(LICENSE_ARN);
  });

  it('rejects a licence ARN without a licence id', async () => {
    const { customers, ingest } = setup();
    const result = await single(ingest(event({ licenseArn: 'arn:aws:license-manager::111122223333:license:' })));
    expect(result).toMatchObject({ status: 'rejected', rejection: { reason: 'invalid-event' } });
    expect(customers.lookups).toHaveLength(0);
  });

  it('counts a legacy event under product code + customer identifier', async () => {
    const { ledger, customers, ingest } = setup();
    const result = await single(ingest({ productCode: 'prod-legacy', customerIdentifier: 'cust-legacy-1', dimension: 'requests', quantity: 3, timestamp: '2026-11-02T10:00:00Z' }));
    const bucketKey = bucketKeyOf('legacy#prod-legacy#cust-legacy-1', 'requests', '2026-11-02T10:00:00.000Z');
    expect(result).toEqual({ status: 'counted', bucketKey, rolledOver: false });
    expect(customers.lookups).toEqual([LEGACY_CUSTOMER.customerKey]);
    expect(ledger.buckets.get(bucketKey)!.addition).toMatchObject({
      identityMode: 'legacy',
      productCode: 'prod-legacy',
      customerIdentifier: 'cust-legacy-1',
      customerAWSAccountId: '777788889999',
    });
  });

  it('rejects usage of a customer of a product this stack does not serve', async () => {
    const { ingest } = setup();
    const result = await single(ingest(event({ licenseArn: 'arn:aws:license-manager::111122223333:license:l-0000000000foreign0000' })));
    expect(result).toMatchObject({ status: 'rejected', rejection: { reason: 'unknown-product' } });
  });
});

describe('ingestMessage: rejections', () => {
  it('rejects a message that is not JSON as a whole', async () => {
    const { ledger, ingest } = setup();
    expect(await ingest('{oops')).toEqual({ rejectedMessage: { reason: 'invalid-json', message: expect.any(String) } });
    expect(ledger.calls).toHaveLength(0);
  });

  it('rejects only the bad events of a message, with their positions, and counts the rest', async () => {
    const { ledger, ingest } = setup();
    const results = eventsOf(
      await ingest([
        event({ quantity: 1 }),
        event({ quantity: -1 }),
        event({ dimension: 'unknown' }),
        event({ timestamp: '2026-11-02T11:00:00Z' }),
        event({ timestamp: '2026-11-01T09:00:00Z' }),
        event({ quantity: 4, allocations: [{ quantity: 3, tags: { team: 'a' } }] }),
        event({ quantity: 2 }),
      ]),
    );
    expect(results.map((r) => (r.status === 'rejected' ? [r.position, r.rejection.reason] : r.status))).toEqual([
      'counted',
      [1, 'invalid-event'],
      [2, 'unknown-dimension'],
      [3, 'timestamp-in-future'],
      [4, 'timestamp-out-of-window'],
      [5, 'allocation-sum-mismatch'],
      'counted',
    ]);
    expect(ledger.totalQuantity()).toBe(3);
    // The rejected event travels with its reason.
    expect(results[2]).toMatchObject({ event: { dimension: 'unknown' } });
  });

  it('rejects, with a reason and without throwing, an epoch timestamp beyond what a Date can hold', async () => {
    const { ledger, ingest } = setup();
    const result = await single(ingest(event({ timestamp: 8_700_000_000_000_000 })));
    expect(result).toMatchObject({ status: 'rejected', rejection: { reason: 'invalid-event' } });
    expect(ledger.calls).toHaveLength(0);
  });

  it('lets an infrastructure error propagate, so the message is retried', async () => {
    const { ledger, ingest } = setup();
    ledger.failWith = new Error('ProvisionedThroughputExceededException');
    await expect(ingest(event())).rejects.toThrow('ProvisionedThroughputExceededException');
  });
});

describe('ingestMessage: several buckets in one message', () => {
  it("hands the message's events to the ledger in one call, and keeps results in message order", async () => {
    const { ledger, ports } = setup();
    const calls: number[] = [];
    const add = ledger.addUsage.bind(ledger);
    ledger.addUsage = async (additions) => {
      calls.push(additions.length);
      return add(additions);
    };
    const events = [0, 1, 2, 3].flatMap((i) => [
      event({ eventId: `a${i}`, dimension: 'requests' }),
      event({ eventId: `b${i}`, dimension: 'storage', timestamp: `2026-11-02T0${i}:30:00Z` }),
    ]);
    const result = await ingestMessage(ports, { messageId: 'm', body: JSON.stringify(events) });
    const results = eventsOf(result);
    expect(results.map((r) => r.status)).toEqual(Array(8).fill('counted'));
    // Result i is event i's: its bucket is of that event's dimension and hour.
    results.forEach((r, i) => {
      const e = events[i] as { dimension: string; timestamp: string };
      expect(r.status === 'counted' && r.bucketKey).toBe(`${LICENSE_CUSTOMER.customerKey}|${e.dimension}|${new Date(Math.floor(new Date(e.timestamp).getTime() / 3_600_000) * 3_600_000).toISOString()}`);
    });
    expect(calls).toEqual([8]);
  });

  it('counts an event repeated inside one message once', async () => {
    const { ledger, ports } = setup();
    const body = JSON.stringify([event({ eventId: 'same' }), event({ eventId: 'same' }), event({ eventId: 'other' })]);
    const results = eventsOf(await ingestMessage(ports, { messageId: 'm', body }));
    expect(results.map((r) => r.status)).toEqual(['counted', 'duplicate', 'counted']);
    expect(ledger.totalQuantity()).toBe(2 * (JSON.parse(body)[0] as { quantity: number }).quantity);
  });
});
