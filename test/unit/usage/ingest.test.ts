import { bucketKeyOf } from '../../../lambda/core/metering/hour-bucket';
import { EventResult, ingestMessage, ingestMessages, IngestPorts, MessageResult } from '../../../lambda/core/usage/ingest';
import { MAX_EVENTS_PER_MESSAGE } from '../../../lambda/core/usage/usage-event';
import { entryIdOf, JournalEntry } from '../../../lambda/core/usage/usage-journal';
import { tagSetKey } from '../../../lambda/core/usage/usage-rules';
import {
  FakeCustomerDirectory,
  FakeUsageJournal,
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

const H09 = '2026-11-02T09:00:00.000Z';
const H10 = '2026-11-02T10:00:00.000Z';
const LICENSE_KEY = LICENSE_CUSTOMER.customerKey;
const OTHER_KEY = OTHER_LICENSE_CUSTOMER.customerKey;

const licenseBucket = (hour: string, dimension = 'requests') => bucketKeyOf(LICENSE_KEY, dimension, hour);

const setupWithRefusals = (now?: Date) => setup(now);

function setup(now: Date = NOW) {
  const journal = new FakeUsageJournal();
  const customers = new FakeCustomerDirectory();
  const clock = { now };
  const ports: IngestPorts = { journal, customers, products: PRODUCTS, now: () => clock.now };
  let counter = 0;
  const ingest = (body: unknown, messageId = `msg-${++counter}`) =>
    ingestMessage(ports, { messageId, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { journal, customers, ports, ingest, clock };
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

const statuses = (results: readonly EventResult[]) => results.map((r) => (r.status === 'rejected' ? r.rejection.reason : r.status));

/** An entry's events as [customerKey, dimension, quantity, position, eventId, allocations]. */
const eventRows = (entry: JournalEntry) => entry.events.map((e) => [entry.customers[e.c].customerKey, e.d, e.q, e.p, e.id, e.a]);

describe('ingestMessage: journal entries', () => {
  it.each([
    ['2026-11-02T09:00:00.000Z', H09],
    ['2026-11-02T09:59:59.999Z', H09],
    ['2026-11-02T10:00:00.000Z', H10],
    ['2026-11-02T15:29:59+05:30', H09],
    ['2026-11-02T15:30:00+05:30', H10],
    [Date.UTC(2026, 10, 2, 9, 59, 59, 999), H09],
  ])('counts usage at %j in the hour starting %s', async (timestamp, hour) => {
    const { journal, ingest } = setup();
    const result = await single(ingest(event({ timestamp, quantity: 7 }), 'm-1'));
    expect(result).toEqual({ status: 'counted', bucketKey: licenseBucket(hour), rolledOver: false });
    const entries = journal.entries();
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ messageId: 'm-1', hourStart: hour });
    expect(eventRows(entries[0])).toEqual([[LICENSE_KEY, 'requests', 7, 0, undefined, undefined]]);
  });

  it("writes one entry per message and hour, with each event's customer, dimension, quantity, position and eventId", async () => {
    const { journal, ingest } = setup();
    const results = eventsOf(
      await ingest(
        [
          event({ quantity: 1, timestamp: '2026-11-02T10:01:00Z', eventId: 'e-1' }),
          event({ quantity: 2, timestamp: '2026-11-02T10:19:59Z' }),
          event({ quantity: 4, timestamp: '2026-11-02T09:59:00Z', eventId: 'e-3' }),
          event({ quantity: 8, dimension: 'storage' }),
          event({ quantity: 16, licenseArn: OTHER_LICENSE_ARN }),
        ],
        'm-1',
      ),
    );
    expect(results).toEqual([
      { status: 'counted', bucketKey: licenseBucket(H10), rolledOver: false },
      { status: 'counted', bucketKey: licenseBucket(H10), rolledOver: false },
      { status: 'counted', bucketKey: licenseBucket(H09), rolledOver: false },
      { status: 'counted', bucketKey: licenseBucket(H10, 'storage'), rolledOver: false },
      { status: 'counted', bucketKey: bucketKeyOf(OTHER_KEY, 'requests', H10), rolledOver: false },
    ]);
    const [ten, nine] = journal.entries();
    expect(journal.entries()).toHaveLength(2);
    expect(ten).toMatchObject({ messageId: 'm-1', hourStart: H10, writtenAt: NOW.toISOString() });
    expect(ten.rolledFrom).toBeUndefined();
    expect(ten.part).toBeUndefined();
    // Each customer once per entry; events point at it.
    expect(ten.customers.map((c) => c.customerKey)).toEqual([LICENSE_KEY, OTHER_KEY]);
    expect(eventRows(ten)).toEqual([
      [LICENSE_KEY, 'requests', 1, 0, 'e-1', undefined],
      [LICENSE_KEY, 'requests', 2, 1, undefined, undefined],
      [LICENSE_KEY, 'storage', 8, 3, undefined, undefined],
      [OTHER_KEY, 'requests', 16, 4, undefined, undefined],
    ]);
    expect(nine).toMatchObject({ messageId: 'm-1', hourStart: H09 });
    expect(eventRows(nine)).toEqual([[LICENSE_KEY, 'requests', 4, 2, 'e-3', undefined]]);
    // All of it in one append.
    expect(journal.appendCalls).toHaveLength(1);
    expect(journal.appendCalls[0]).toHaveLength(2);
  });

  it('gives a message whose events span two hours two entries', async () => {
    const { journal, ingest } = setup();
    await ingest([event({ timestamp: '2026-11-02T09:30:00Z', quantity: 3 }), event({ timestamp: '2026-11-02T10:10:00Z', quantity: 4 })], 'm-2h');
    const entries = journal.entries();
    expect(entries.map((e) => [e.messageId, e.hourStart, e.events.map((ev) => [ev.p, ev.q])])).toEqual([
      ['m-2h', H09, [[0, 3]]],
      ['m-2h', H10, [[1, 4]]],
    ]);
  });

  it('records the customer as registered (identity from the Customers table, not from the event)', async () => {
    const { journal, ingest } = setup();
    await ingest(event({ licenseArn: LICENSE_ID }));
    expect(journal.entries()[0].customers).toEqual([
      { customerKey: `license#${LICENSE_ID}`, productCode: 'prod-license', identityMode: 'license', customerAWSAccountId: '111122223333', licenseArn: LICENSE_ARN, customerIdentifier: undefined },
    ]);
  });

  it('stores allocations per tag set, whatever the key order of the tags', async () => {
    const { journal, ingest } = setup();
    await ingest([
      event({ quantity: 5, allocations: [{ quantity: 3, tags: { team: 'a', env: 'prod' } }, { quantity: 2, tags: { team: 'b' } }] }),
      event({ quantity: 4, allocations: [{ quantity: 4, tags: { env: 'prod', team: 'a' } }] }),
    ]);
    const [entry] = journal.entries();
    expect(entry.events.map((e) => e.a)).toEqual([
      { [tagSetKey({ env: 'prod', team: 'a' })]: 3, [tagSetKey({ team: 'b' })]: 2 },
      { [tagSetKey({ team: 'a', env: 'prod' })]: 4 },
    ]);
    expect(tagSetKey({ team: 'a', env: 'prod' })).toBe(tagSetKey({ env: 'prod', team: 'a' }));
  });

  it('leaves repeated eventIds to the fold: both events are in the entry with their id', async () => {
    const { journal, ingest } = setup();
    const results = eventsOf(await ingest([event({ eventId: 'same' }), event({ eventId: 'same' })]));
    expect(statuses(results)).toEqual(['counted', 'counted']);
    expect(journal.entries()[0].events.map((e) => e.id)).toEqual(['same', 'same']);
  });
});

describe('ingestMessage: redelivery', () => {
  it('adds nothing when a message is redelivered (same message id): every event is a duplicate', async () => {
    const { journal, ingest } = setup();
    const body = [event({ quantity: 1 }), event({ quantity: 2, eventId: 'x' }), event({ quantity: 4, timestamp: '2026-11-02T09:10:00Z' })];
    expect(statuses(eventsOf(await ingest(body, 'msg-1')))).toEqual(['counted', 'counted', 'counted']);
    const again = eventsOf(await ingest(body, 'msg-1'));
    expect(again).toEqual([
      { status: 'duplicate', messageId: 'msg-1', hourStart: H10 },
      { status: 'duplicate', messageId: 'msg-1', hourStart: H10 },
      { status: 'duplicate', messageId: 'msg-1', hourStart: H09 },
    ]);
    expect(journal.entries()).toHaveLength(2);
    expect(journal.totalQuantity()).toBe(7);
  });

  it('counts the same events in another message as new usage (eventIds are the fold’s business)', async () => {
    const { journal, ingest } = setup();
    await ingest([event(), event()], 'msg-42');
    await ingest([event(), event()], 'msg-43');
    expect(journal.entries().map((e) => e.messageId)).toEqual(['msg-42', 'msg-43']);
    expect(journal.totalQuantity()).toBe(20);
  });

  it('treats a message counted before its hour was sealed as a duplicate when redelivered', async () => {
    const { journal, ingest } = setup();
    const early = event({ timestamp: '2026-11-02T09:30:00Z', eventId: 'e-1' });
    await ingest(early, 'm-early');
    journal.sealed.add(H09);
    expect(await single(ingest(early, 'm-early'))).toEqual({ status: 'duplicate', messageId: 'm-early', hourStart: H09 });
    expect(journal.quantityOf(LICENSE_KEY, 'requests', H10)).toBe(0);
    expect(journal.entries()).toHaveLength(1);
  });
});

describe('ingestMessage: a redelivered message judged differently', () => {
  // The producer's clock is 6 minutes fast: at 10:20 the event at 10:26 is refused (more than 5
  // minutes ahead); by the redelivery at 10:26:30 it is fine.
  const onTime = event({ eventId: 'a', quantity: 5, timestamp: '2026-11-02T10:15:00Z' });
  const ahead = event({ eventId: 'b', quantity: 7, timestamp: '2026-11-02T10:26:00Z' });
  const LATER = new Date('2026-11-02T10:26:30Z');
  const deliver = (ports: IngestPorts, body: unknown, receiveCount: number) =>
    ingestMessage(ports, { messageId: 'm-1', body: JSON.stringify(body), receiveCount });
  /**
   * Each earlier delivery wrote its entries and stopped before recording its refusals (it crashed),
   * so before any dead letter was sent: a redelivery judges the refused events anew.
   */
  const setup = (now?: Date) => {
    const made = setupWithRefusals(now);
    made.journal.recordRefused = async () => undefined;
    return made;
  };

  it('counts on redelivery an event the first delivery refused, in a supplement entry; the counted one stays a duplicate', async () => {
    const { journal, ports, clock } = setup();
    expect(statuses(eventsOf(await deliver(ports, [onTime, ahead], 1)))).toEqual(['counted', 'timestamp-in-future']);
    clock.now = LATER;
    const again = eventsOf(await deliver(ports, [onTime, ahead], 2));
    expect(again).toEqual([
      { status: 'duplicate', messageId: 'm-1', hourStart: H10 },
      { status: 'counted', bucketKey: licenseBucket(H10), rolledOver: false },
    ]);
    expect(journal.totalQuantity()).toBe(12);
    expect(journal.entries().map((e) => [e.messageId, e.supplement, eventRows(e).map((r) => r[3])])).toEqual([
      ['m-1', undefined, [0]],
      ['m-1', 1, [1]],
    ]);
    // The first delivery's check before refusing (another delivery may have counted it), the redelivery's read.
    expect(journal.storedPositionsCalls).toEqual([
      { messageId: 'm-1', hours: [H10] },
      { messageId: 'm-1', hours: [H10] },
    ]);

    // A third delivery counts nothing more.
    expect(statuses(eventsOf(await deliver(ports, [onTime, ahead], 3)))).toEqual(['duplicate', 'duplicate']);
    expect(journal.totalQuantity()).toBe(12);
    expect(journal.entries()).toHaveLength(2);
  });

  it('reads nothing before writing a first delivery (once after, before refusing an event ahead of the clock); an entry found written already (a redelivery SQS counted as the first, or one running alongside) is reconciled after', async () => {
    const { journal, ports, clock } = setup();
    const appendsBeforeTheRead: number[] = [];
    const read = journal.storedPositions.bind(journal);
    journal.storedPositions = async (messageId, hours) => {
      appendsBeforeTheRead.push(journal.appendCalls.length);
      return read(messageId, hours);
    };
    await deliver(ports, [onTime, ahead], 1);
    expect(journal.storedPositionsCalls).toEqual([{ messageId: 'm-1', hours: [H10] }]);
    expect(appendsBeforeTheRead).toEqual([1]);
    clock.now = LATER;
    expect(statuses(eventsOf(await deliver(ports, [onTime, ahead], 1)))).toEqual(['duplicate', 'counted']);
    expect(journal.storedPositionsCalls).toEqual([
      { messageId: 'm-1', hours: [H10] },
      { messageId: 'm-1', hours: [H10] },
    ]);
    expect(journal.totalQuantity()).toBe(12);
  });

  it('counts what an overlapping delivery did not: both read before either wrote, and judged differently', async () => {
    const { journal, ports, clock } = setup();
    // Delivery 2 runs at 10:20 (b refused), delivery 3 at 10:26:30 (b fine); both read an empty journal first.
    const reads: (() => void)[] = [];
    const realRead = journal.storedPositions.bind(journal);
    journal.storedPositions = async (messageId, hours) => {
      const positions = await realRead(messageId, hours);
      if (reads.length < 2) await new Promise<void>((resolve) => reads.push(resolve));
      return positions;
    };
    const second = deliver(ports, [onTime, ahead], 2);
    await new Promise((r) => setImmediate(r));
    clock.now = LATER;
    const third = deliver(ports, [onTime, ahead], 3);
    await new Promise((r) => setImmediate(r));
    expect(reads).toHaveLength(2);
    reads[0]();
    expect(statuses(eventsOf(await second))).toEqual(['counted', 'timestamp-in-future']);
    reads[1]();
    expect(statuses(eventsOf(await third))).toEqual(['duplicate', 'counted']);
    expect(journal.totalQuantity()).toBe(12);
    expect(journal.entries().map((e) => entryIdOf(e))).toEqual(['m-1', 'm-1#more1']);
  });

  it('reports an event counted by an earlier delivery as a duplicate, not a rejection, even when it would be refused now', async () => {
    const { journal, ports } = setup();
    let registered = true;
    const directory = new FakeCustomerDirectory();
    const ports2: IngestPorts = { ...ports, customers: { find: async (keys) => (registered ? directory.find(keys) : new Map()) } };
    expect(statuses(eventsOf(await deliver(ports2, [onTime], 1)))).toEqual(['counted']);
    registered = false;
    expect(eventsOf(await deliver(ports2, [onTime, event({ eventId: 'c', quantity: 3 })], 2))).toEqual([
      { status: 'duplicate', messageId: 'm-1', hourStart: H10 },
      expect.objectContaining({ status: 'rejected', rejection: expect.objectContaining({ reason: 'unknown-customer' }) }),
    ]);
    expect(journal.totalQuantity()).toBe(5);
  });

  it('follows a late entry from its own hour to the hour it was counted in', async () => {
    const { journal, ports, clock } = setup();
    journal.sealed.add(H09);
    const late = event({ eventId: 'l', quantity: 4, timestamp: '2026-11-02T09:30:00Z' });
    expect(eventsOf(await deliver(ports, [late, ahead], 1)).map((r) => r.status)).toEqual(['counted', 'rejected']);
    clock.now = LATER;
    const again = eventsOf(await deliver(ports, [late, ahead], 2));
    expect(again).toEqual([
      { status: 'duplicate', messageId: 'm-1', hourStart: H09 },
      { status: 'counted', bucketKey: licenseBucket(H10), rolledOver: false },
    ]);
    expect(journal.quantityOf(LICENSE_KEY, 'requests', H10)).toBe(11);
    // The first delivery's check before refusing the event ahead, the redelivery's read.
    expect(journal.storedPositionsCalls).toEqual([
      { messageId: 'm-1', hours: [H09, H10] },
      { messageId: 'm-1', hours: [H09, H10] },
    ]);
  });

  it('names a supplement by the smallest position it writes, so a third delivery\'s supplement is new too (an event refused each time)', async () => {
    const { journal, ports, clock } = setup();
    const body = [
      event({ eventId: 'x', licenseArn: OTHER_LICENSE_ARN, quantity: 1, dimension: 'no-such-dimension' }),
      onTime,
      ahead,
      event({ eventId: 'c', quantity: 11, timestamp: '2026-11-02T10:35:00Z' }),
    ];
    expect(statuses(eventsOf(await deliver(ports, body, 1)))).toEqual(['unknown-dimension', 'counted', 'timestamp-in-future', 'timestamp-in-future']);
    clock.now = LATER;
    expect(statuses(eventsOf(await deliver(ports, body, 2)))).toEqual(['unknown-dimension', 'duplicate', 'counted', 'timestamp-in-future']);
    clock.now = new Date('2026-11-02T10:33:00Z');
    expect(statuses(eventsOf(await deliver(ports, body, 3)))).toEqual(['unknown-dimension', 'duplicate', 'duplicate', 'counted']);
    expect(journal.entries().map((e) => [entryIdOf(e), eventRows(e).map((r) => r[3])])).toEqual([
      ['m-1', [1]],
      ['m-1#more2', [2]],
      ['m-1#more3', [3]],
    ]);
    expect(journal.totalQuantity()).toBe(5 + 7 + 11);
  });

  it('writes ordinary entries when the earlier deliveries wrote nothing', async () => {
    const { journal, ports } = setup();
    expect(statuses(eventsOf(await deliver(ports, [onTime], 2)))).toEqual(['counted']);
    expect(journal.entries().map((e) => [e.messageId, e.supplement])).toEqual([['m-1', undefined]]);
  });
});

describe('ingestMessage: a refusal another delivery of the message may not have reached', () => {
  const onTime = event({ eventId: 'a', quantity: 5, timestamp: '2026-11-02T10:15:00Z' });
  // SQS's at-least-once duplicate: the same receive count, so it reads nothing before writing.
  const deliver = (ports: IngestPorts, body: unknown) => ingestMessage(ports, { messageId: 'm-1', body: JSON.stringify(body), receiveCount: 1 });

  it.each([
    ['the final usage window closed', 'customer-not-subscribed', (s: ReturnType<typeof setup>) => s.customers.setSubscription(LICENSE_KEY, { status: 'unsubscribed', finalUsageUntil: '2026-11-02T10:30:00.000Z' }), new Date('2026-11-02T10:40:00Z')],
    ['the event grew too old to bill', 'timestamp-out-of-window', () => undefined, new Date('2026-11-04T10:20:00Z')],
    ['the buyer is not in this container\'s cache (nor found)', 'unknown-customer', (s: ReturnType<typeof setup>) => s.customers.forget(LICENSE_KEY), NOW],
  ])('%s: what another delivery wrote is a duplicate, not refused (%s); one read', async (_what, reason, change, later) => {
    const made = setup();
    expect(statuses(eventsOf(await deliver(made.ports, [onTime])))).toEqual(['counted']);
    change(made);
    made.clock.now = later;
    const refusedAlone = await ingestMessage(made.ports, { messageId: 'm-2', body: JSON.stringify([onTime]), receiveCount: 1 });
    expect(statuses(eventsOf(refusedAlone))).toEqual([reason]);
    made.journal.storedPositionsCalls.length = 0;

    expect(eventsOf(await deliver(made.ports, [onTime]))).toEqual([{ status: 'duplicate', messageId: 'm-1', hourStart: H10 }]);
    expect(made.journal.storedPositionsCalls).toEqual([{ messageId: 'm-1', hours: [H10] }]);
    expect(made.journal.totalQuantity()).toBe(5);
  });

  it('reads nothing for refusals every delivery reaches (the body alone decides)', async () => {
    const { journal, ports } = setup();
    const result = eventsOf(await deliver(ports, [onTime, { dimension: 'requests' }, event({ dimension: 'bogus' })]));
    expect(statuses(result)).toEqual(['counted', 'invalid-event', 'unknown-dimension']);
    expect(journal.storedPositionsCalls).toEqual([]);
  });
});

describe('ingestMessage: refusals recorded before the dead letters are sent', () => {
  const onTime = event({ eventId: 'a', quantity: 5, timestamp: '2026-11-02T10:15:00Z' });
  // 6 minutes ahead at 10:20 (refused), fine at 10:26:30.
  const ahead = event({ eventId: 'b', quantity: 7, timestamp: '2026-11-02T10:26:00Z' });
  const LATER = new Date('2026-11-02T10:26:30Z');
  const deliver = (ports: IngestPorts, body: unknown, receiveCount: number) =>
    ingestMessage(ports, { messageId: 'm-1', body: JSON.stringify(body), receiveCount });

  it('records the positions a delivery refused, with their reasons; nothing for a message with none refused', async () => {
    const { journal, ports } = setup();
    await deliver(ports, [onTime, ahead, { dimension: 'requests' }], 1);
    expect([...journal.refused.get('m-1')!].map(([position, r]) => [position, r.reason])).toEqual([
      [1, 'timestamp-in-future'],
      [2, 'invalid-event'],
    ]);
    await ingestMessage(ports, { messageId: 'm-2', body: JSON.stringify([onTime]) });
    await ingestMessage(ports, { messageId: 'm-3', body: 'not json' });
    expect([...journal.refused.keys()]).toEqual(['m-1']);
  });

  it('refuses again, for the same reason, what an earlier delivery refused, though it would count it now: its dead letter may have landed', async () => {
    const { journal, ports, clock } = setup();
    expect(statuses(eventsOf(await deliver(ports, [onTime, ahead], 1)))).toEqual(['counted', 'timestamp-in-future']);
    // The delivery failed after that (its dead letters could not all be sent): SQS delivers it again.
    clock.now = LATER;
    const again = eventsOf(await deliver(ports, [onTime, ahead], 2));
    expect(again[0]).toEqual({ status: 'duplicate', messageId: 'm-1', hourStart: H10 });
    expect(again[1]).toMatchObject({ status: 'rejected', position: 1, event: ahead, rejection: { reason: 'timestamp-in-future' } });
    expect(journal.totalQuantity()).toBe(5);
    expect(journal.entries().map((e) => entryIdOf(e))).toEqual(['m-1']);
  });

  it('keeps the entries\' own ids when the earlier delivery counted nothing but refused something', async () => {
    const { journal, ports, clock } = setup();
    journal.failWith = new Error('DynamoDB unavailable');
    await expect(deliver(ports, [onTime, ahead], 1)).rejects.toThrow('DynamoDB unavailable');
    journal.failWith = undefined;
    // Another way to that state: every event refused but one that now counts.
    journal.refused.set('m-1', new Map([[1, { reason: 'timestamp-in-future', message: 'ahead' }]]));
    clock.now = LATER;
    expect(statuses(eventsOf(await deliver(ports, [onTime, ahead], 2)))).toEqual(['counted', 'timestamp-in-future']);
    expect(journal.entries().map((e) => [entryIdOf(e), eventRows(e).map((r) => r[3])])).toEqual([['m-1', [0]]]);
  });

  it('fails the delivery when the refusals cannot be recorded, before any dead letter: the redelivery judges anew', async () => {
    const { journal, ports, clock } = setup();
    const record = journal.recordRefused.bind(journal);
    journal.recordRefused = async () => {
      throw new Error('throttled');
    };
    await expect(deliver(ports, [onTime, ahead], 1)).rejects.toThrow('throttled');
    journal.recordRefused = record;
    clock.now = LATER;
    expect(statuses(eventsOf(await deliver(ports, [onTime, ahead], 2)))).toEqual(['duplicate', 'counted']);
    expect(journal.totalQuantity()).toBe(12);
  });
});

describe('ingestMessage: late events', () => {
  it('counts events whose hour is sealed in the current hour, as a late entry', async () => {
    const { journal, ingest } = setup();
    journal.sealed.add(H09);
    const results = eventsOf(await ingest([event({ timestamp: '2026-11-02T09:30:00Z', quantity: 6 }), event({ quantity: 1 })], 'm-late'));
    expect(results).toEqual([
      { status: 'counted', bucketKey: licenseBucket(H10), rolledOver: true },
      { status: 'counted', bucketKey: licenseBucket(H10), rolledOver: false },
    ]);
    expect(journal.quantityOf(LICENSE_KEY, undefined, H09)).toBe(0);
    const entries = journal.entries();
    expect(entries.map((e) => [e.messageId, e.hourStart, e.rolledFrom, e.events.map((ev) => ev.q)])).toEqual([
      ['m-late', H10, undefined, [1]],
      ['m-late', H10, H09, [6]],
    ]);
    // The late entry leaves a placeholder under its own hour.
    expect(journal.items.get(`${H09}|m-late`)).toEqual({ countedIn: H10 });
  });

  it('does not roll over events whose hour is still open', async () => {
    const { journal, ingest } = setup();
    journal.sealed.add(H09);
    const result = await single(ingest(event({ timestamp: '2026-11-02T10:05:00Z' })));
    expect(result).toEqual({ status: 'counted', bucketKey: licenseBucket(H10), rolledOver: false });
    expect(journal.entries()[0].rolledFrom).toBeUndefined();
  });

  it('counts a redelivered late message once', async () => {
    const { journal, ingest } = setup();
    journal.sealed.add(H09);
    const late = event({ timestamp: '2026-11-02T09:30:00Z', eventId: 'late-1' });
    expect(await single(ingest(late, 'm-late'))).toMatchObject({ status: 'counted', rolledOver: true });
    expect(await single(ingest(late, 'm-late'))).toEqual({ status: 'duplicate', messageId: 'm-late', hourStart: H09 });
    expect(journal.entries()).toHaveLength(1);
    expect(journal.totalQuantity()).toBe(5);
  });

  it('counts a late message once also when it is redelivered in a later hour', async () => {
    const { journal, ingest, clock } = setup();
    journal.sealed.add(H09);
    const late = event({ timestamp: '2026-11-02T09:30:00Z' });
    expect(await single(ingest(late, 'm-late'))).toMatchObject({ status: 'counted', rolledOver: true });
    journal.sealed.add(H10);
    clock.now = new Date('2026-11-02T11:05:00Z');
    expect(await single(ingest(late, 'm-late'))).toEqual({ status: 'duplicate', messageId: 'm-late', hourStart: H09 });
    expect(journal.entries().map((e) => [e.hourStart, e.rolledFrom])).toEqual([[H10, H09]]);
  });

  it('rejects the events when the current hour is sealed too', async () => {
    const { journal, ingest } = setup();
    journal.sealed.add(H09);
    journal.sealed.add(H10);
    const results = eventsOf(await ingest([event({ timestamp: '2026-11-02T09:30:00Z' }), event()]));
    expect(results).toEqual([
      expect.objectContaining({ status: 'rejected', position: 0, rejection: expect.objectContaining({ reason: 'hour-already-billed' }), event: expect.objectContaining({ timestamp: '2026-11-02T09:30:00Z' }) }),
      expect.objectContaining({ status: 'rejected', position: 1, rejection: expect.objectContaining({ reason: 'hour-already-billed' }) }),
    ]);
    expect(journal.entries()).toHaveLength(0);
  });
});

describe('ingestMessage: subscription state', () => {
  it('counts usage inside the final window of a customer who is leaving', async () => {
    const { customers, journal, ingest } = setup();
    customers.setSubscription(LICENSE_KEY, { status: 'unsubscribe-pending', finalUsageUntil: '2026-11-02T11:00:00.000Z' });
    expect(await single(ingest(event()))).toMatchObject({ status: 'counted' });
    expect(journal.totalQuantity()).toBe(5);
  });

  // Whether a leaving customer's hour was metered early is the hour's fold's to say (fold tests):
  // two deliveries of one message may judge it differently (a late event rolled into different
  // hours on either side of an hour turn), and only the entry keys they write decide between them.
  // So ingestion has no way to ask (the journal port has none) and writes such usage like any other.
  it("writes a leaving customer's events like any other, next to other customers' events", async () => {
    const { customers, journal, ingest } = setup();
    customers.setSubscription(LICENSE_KEY, { status: 'unsubscribe-pending', finalUsageUntil: '2026-11-02T11:00:00.000Z' });
    const results = eventsOf(await ingest([event({ quantity: 1 }), event({ quantity: 2, licenseArn: OTHER_LICENSE_ARN }), event({ quantity: 3, dimension: 'storage' })], 'm-mixed'));
    expect(statuses(results)).toEqual(['counted', 'counted', 'counted']);
    expect(journal.entries()).toHaveLength(1);
    expect(journal.quantityOf(LICENSE_KEY)).toBe(1 + 3);
  });

  it('rolls a leaving customer’s late event into the current hour', async () => {
    const { customers, journal, ingest } = setup();
    customers.setSubscription(LICENSE_KEY, { status: 'unsubscribed', finalUsageUntil: '2026-11-02T11:00:00.000Z' });
    journal.sealed.add(H09);
    const result = await single(ingest(event({ timestamp: '2026-11-02T09:30:00Z' })));
    expect(result).toEqual({ status: 'counted', bucketKey: licenseBucket(H10), rolledOver: true });
    expect(journal.entries().map((e) => [e.hourStart, e.rolledFrom])).toEqual([[H10, H09]]);
  });

  it('rejects usage once the final window has closed, writing nothing', async () => {
    const { customers, journal, ingest } = setup();
    customers.setSubscription(LICENSE_KEY, { status: 'unsubscribed', finalUsageUntil: '2026-11-02T09:30:00.000Z' });
    expect(await single(ingest(event()))).toMatchObject({ status: 'rejected', rejection: { reason: 'customer-not-subscribed' } });
    expect(journal.appendCalls).toHaveLength(0);
  });

  it('counts usage of a pending customer (metering holds it)', async () => {
    const { customers, ingest } = setup();
    customers.setSubscription(LICENSE_KEY, { status: 'pending' });
    expect(await single(ingest(event()))).toMatchObject({ status: 'counted' });
  });
});

describe('ingestMessage: customers', () => {
  it('rejects usage of an unknown customer, writing nothing', async () => {
    const { journal, ingest } = setup();
    const result = await single(ingest(event({ licenseArn: 'arn:aws:license-manager::999999999999:license:l-unknown00000000000' })));
    expect(result).toMatchObject({ status: 'rejected', position: 0, rejection: { reason: 'unknown-customer' } });
    expect(journal.appendCalls).toHaveLength(0);
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
    const { journal, ingest } = setup();
    const result = await single(ingest(event(change)));
    expect(result).toMatchObject({ status: 'rejected', rejection: { reason: 'identity-mismatch' } });
    expect(journal.appendCalls).toHaveLength(0);
  });

  describe('a legacy event that also names a licence (ResolveCustomer gives legacy buyers a LicenseArn too)', () => {
    const legacyEvent = (licenseArn: string) => ({ productCode: 'prod-legacy', customerIdentifier: 'cust-legacy-1', licenseArn, dimension: 'requests', quantity: 2, timestamp: '2026-11-02T10:00:00Z' });
    const LEGACY_LICENSE = 'arn:aws:license-manager::777788889999:license:l-legacy0000000000001';

    it('is counted for the legacy customer when no customer holds the licence', async () => {
      const { journal, customers, ingest } = setup();
      expect(await single(ingest(legacyEvent(LEGACY_LICENSE)))).toEqual({ status: 'counted', bucketKey: bucketKeyOf(LEGACY_CUSTOMER.customerKey, 'requests', H10), rolledOver: false });
      expect(journal.quantityOf(LEGACY_CUSTOMER.customerKey)).toBe(2);
      // One lookup for both keys.
      expect(customers.calls).toEqual([[`license#l-legacy0000000000001`, LEGACY_CUSTOMER.customerKey]]);
    });

    it('is refused when the legacy customer holds another licence', async () => {
      const journal = new FakeUsageJournal();
      const customers = new FakeCustomerDirectory([{ ...LEGACY_CUSTOMER, licenseArn: 'arn:aws:license-manager::777788889999:license:l-legacy0000000000002' }]);
      const ports: IngestPorts = { journal, customers, products: PRODUCTS, now: () => NOW };
      const result = await single(ingestMessage(ports, { messageId: 'm-1', body: JSON.stringify(legacyEvent(LEGACY_LICENSE)) }));
      expect(result).toMatchObject({ status: 'rejected', rejection: { reason: 'identity-mismatch', message: 'licenseArn does not match the customer' } });
    });

    it('goes to the licence\'s customer when there is one (license mode wins)', async () => {
      const { ingest } = setup();
      const result = await single(ingest(legacyEvent(LICENSE_ARN)));
      // The licence's customer has no CustomerIdentifier: the event does not match it.
      expect(result).toMatchObject({ status: 'rejected', rejection: { reason: 'identity-mismatch' } });
    });
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
    const { journal, customers, ingest } = setup();
    const result = await single(ingest(event({ licenseArn })));
    expect(result).toEqual({ status: 'counted', bucketKey: licenseBucket(H10), rolledOver: false });
    expect(customers.calls).toEqual([[LICENSE_KEY]]);
    // The entry carries the ARN AWS gave us, not the one in the event.
    expect(journal.entries()[0].customers[0].licenseArn).toBe(LICENSE_ARN);
  });

  it('rejects a licence ARN without a licence id', async () => {
    const { customers, ingest } = setup();
    const result = await single(ingest(event({ licenseArn: 'arn:aws:license-manager::111122223333:license:' })));
    expect(result).toMatchObject({ status: 'rejected', rejection: { reason: 'invalid-event' } });
    expect(customers.lookups).toHaveLength(0);
  });

  it('counts a legacy event under product code + customer identifier', async () => {
    const { journal, customers, ingest } = setup();
    const result = await single(ingest({ productCode: 'prod-legacy', customerIdentifier: 'cust-legacy-1', dimension: 'requests', quantity: 3, timestamp: '2026-11-02T10:00:00Z' }));
    const bucketKey = bucketKeyOf('legacy#prod-legacy#cust-legacy-1', 'requests', H10);
    expect(result).toEqual({ status: 'counted', bucketKey, rolledOver: false });
    expect(customers.lookups).toEqual([LEGACY_CUSTOMER.customerKey]);
    expect(journal.entries()[0].customers[0]).toMatchObject({
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
    const { journal, ingest } = setup();
    expect(await ingest('{oops')).toEqual({ rejectedMessage: { reason: 'invalid-json', message: expect.any(String) } });
    expect(journal.appendCalls).toHaveLength(0);
  });

  it('rejects a message with too many events as a whole', async () => {
    const { journal, ingest } = setup();
    const result = await ingest(Array.from({ length: MAX_EVENTS_PER_MESSAGE + 1 }, () => event()));
    expect(result).toEqual({ rejectedMessage: { reason: 'too-many-events', message: expect.any(String) } });
    expect(journal.appendCalls).toHaveLength(0);
  });

  it('rejects only the bad events of a message, with their positions, and counts the rest', async () => {
    const { journal, ingest } = setup();
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
    expect(journal.totalQuantity()).toBe(3);
    expect(journal.entries()[0].events.map((e) => e.p)).toEqual([0, 6]);
    // The rejected event travels with its reason.
    expect(results[2]).toMatchObject({ event: { dimension: 'unknown' } });
  });

  it('rejects, with a reason and without throwing, an epoch timestamp beyond what a Date can hold', async () => {
    const { journal, ingest } = setup();
    const result = await single(ingest(event({ timestamp: 8_700_000_000_000_000 })));
    expect(result).toMatchObject({ status: 'rejected', rejection: { reason: 'invalid-event' } });
    expect(journal.appendCalls).toHaveLength(0);
  });

  it('lets an infrastructure error propagate, so the message is retried', async () => {
    const { journal, ingest } = setup();
    journal.failWith = new Error('ProvisionedThroughputExceededException');
    await expect(ingest(event())).rejects.toThrow('ProvisionedThroughputExceededException');
  });
});

describe('ingestMessages: a batch', () => {
  it('looks the batch’s customers up once, appends its entries together, and keeps results per message and in order', async () => {
    const { journal, customers, ports } = setup();
    const results = await ingestMessages(ports, [
      { messageId: 'a', body: JSON.stringify([event({ quantity: 1 }), event({ quantity: 2, licenseArn: OTHER_LICENSE_ARN })]) },
      { messageId: 'b', body: '{not json' },
      { messageId: 'c', body: JSON.stringify({ productCode: 'prod-legacy', customerIdentifier: 'cust-legacy-1', dimension: 'requests', quantity: 3, timestamp: '2026-11-02T10:00:00Z' }) },
      { messageId: 'd', body: JSON.stringify([event({ quantity: 4, timestamp: '2026-11-02T09:15:00Z' }), event({ dimension: 'nope' })]) },
    ]);
    expect(customers.calls).toHaveLength(1);
    expect([...customers.calls[0]].sort()).toEqual([LICENSE_KEY, OTHER_KEY, LEGACY_CUSTOMER.customerKey].sort());
    expect(journal.appendCalls).toHaveLength(1);
    expect(journal.appendCalls[0].map((e) => [e.messageId, e.hourStart])).toEqual([
      ['a', H10],
      ['c', H10],
      ['d', H09],
    ]);
    expect(results).toHaveLength(4);
    expect(statuses(eventsOf(results[0]))).toEqual(['counted', 'counted']);
    expect(results[1]).toEqual({ rejectedMessage: expect.objectContaining({ reason: 'invalid-json' }) });
    expect(eventsOf(results[2])).toEqual([{ status: 'counted', bucketKey: bucketKeyOf(LEGACY_CUSTOMER.customerKey, 'requests', H10), rolledOver: false }]);
    expect(eventsOf(results[3])).toEqual([
      { status: 'counted', bucketKey: licenseBucket(H09), rolledOver: false },
      expect.objectContaining({ status: 'rejected', position: 1, rejection: expect.objectContaining({ reason: 'unknown-dimension' }) }),
    ]);
  });

  it('counts a message delivered twice in one batch once', async () => {
    const { journal, ports } = setup();
    const body = JSON.stringify([event({ quantity: 1 }), event({ quantity: 2 })]);
    const results = await ingestMessages(ports, [
      { messageId: 'twice', body },
      { messageId: 'twice', body },
    ]);
    expect(results.map((r) => statuses(eventsOf(r)))).toEqual([
      ['counted', 'counted'],
      ['duplicate', 'duplicate'],
    ]);
    expect(journal.totalQuantity()).toBe(3);
  });

  it("keeps each message's results apart when entries of a sealed hour roll over", async () => {
    const { journal, ports } = setup();
    journal.sealed.add(H09);
    const results = await ingestMessages(ports, [
      { messageId: 'x', body: JSON.stringify([event({ quantity: 1, timestamp: '2026-11-02T09:01:00Z' }), event({ quantity: 2 })]) },
      { messageId: 'y', body: JSON.stringify(event({ quantity: 4, timestamp: '2026-11-02T09:02:00Z', licenseArn: OTHER_LICENSE_ARN })) },
    ]);
    expect(eventsOf(results[0])).toEqual([
      { status: 'counted', bucketKey: licenseBucket(H10), rolledOver: true },
      { status: 'counted', bucketKey: licenseBucket(H10), rolledOver: false },
    ]);
    expect(eventsOf(results[1])).toEqual([{ status: 'counted', bucketKey: bucketKeyOf(OTHER_KEY, 'requests', H10), rolledOver: true }]);
    expect(journal.appendCalls.map((call) => call.map((e) => [e.messageId, e.hourStart, e.rolledFrom]))).toEqual([
      [
        ['x', H09, undefined],
        ['x', H10, undefined],
        ['y', H09, undefined],
      ],
      [
        ['x', H10, H09],
        ['y', H10, H09],
      ],
    ]);
  });
});
