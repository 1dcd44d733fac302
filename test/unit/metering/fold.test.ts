import { FoldedBucket, foldHour, FoldResult, HourFold, inEntryIdOrder, MAX_ALLOCATION_BYTES_PER_BUCKET, positionSeenKeyOf, seenKeyOf } from '../../../lambda/core/metering/fold';
import { bucketKeyOf } from '../../../lambda/core/metering/hour-bucket';
import { JournalCustomer, JournalEntry, entryIdOf } from '../../../lambda/core/usage/usage-journal';
import { tagSetKey } from '../../../lambda/core/usage/usage-rules';
import { bucketIdentityOf, CUSTOMER_A, CUSTOMER_B, CUSTOMER_LEGACY, entryOf, EventSpec, hour } from './fake-hour-journal';
import { seededRandom } from '../lifecycle/event-history';
import { redriveEventIdOf } from '../../../lambda/core/usage/dead-letter-redrive';

const H = hour('2026-11-02T09');
const PREVIOUS = hour('2026-11-02T08');
const EARLIER = hour('2026-11-02T07');
const at = (minutes: number, hourStart = H) => new Date(Date.parse(hourStart) + minutes * 60_000).toISOString();

const RED = tagSetKey({ team: 'red' });
const BLUE = tagSetKey({ team: 'blue' });
const RED_EU = tagSetKey({ team: 'red', region: 'eu' });
const tenant = (n: number) => tagSetKey({ tenant: `t-${String(n).padStart(5, '0')}` });

/** The bucket of a customer and dimension, or undefined. */
function bucketOf(result: FoldResult, customer: JournalCustomer, dimension = 'requests', hourStart = H): FoldedBucket | undefined {
  return result.buckets.find((b) => b.bucketKey === bucketKeyOf(customer.customerKey, dimension, hourStart));
}

/** The fields every bucket of the customer carries. */
const identityOf = (customer: JournalCustomer, dimension: string, hourStart = H) => bucketIdentityOf(customer, dimension, hourStart);

const byKey = (buckets: readonly FoldedBucket[]) => [...buckets].sort((a, b) => a.bucketKey.localeCompare(b.bucketKey));

/** Seeded, so the shuffles are the same on every run. */
const prng = seededRandom;

function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

describe('foldHour: sums', () => {
  it('sums quantities and counts events per customer x dimension, allocations per tag set, first and last writes', () => {
    const entries = [
      entryOf({
        messageId: 'm1',
        hourStart: H,
        writtenAt: at(5),
        events: [
          { customer: CUSTOMER_A, q: 3, a: { [RED]: 2 } },
          { customer: CUSTOMER_A, q: 4 },
          { customer: CUSTOMER_A, d: 'storage', q: 10 },
          { customer: CUSTOMER_B, q: 7, a: { [BLUE]: 7 } },
        ],
      }),
      entryOf({
        messageId: 'm2',
        hourStart: H,
        writtenAt: at(30),
        events: [
          { customer: CUSTOMER_A, q: 5, a: { [RED]: 1, [RED_EU]: 4 } },
          { customer: CUSTOMER_LEGACY, q: 1 },
        ],
      }),
      entryOf({ messageId: 'm3', hourStart: H, writtenAt: at(50), events: [{ customer: CUSTOMER_A, q: 2, a: { [RED]: 2 } }] }),
    ];

    const result = foldHour({ hourStart: H, entries });

    expect(byKey(result.buckets)).toEqual(
      byKey([
        { ...identityOf(CUSTOMER_A, 'requests'), quantity: 14, allocations: { [RED]: 5, [RED_EU]: 4 }, usageEvents: 4, firstUsageAt: at(5), lastUsageAt: at(50) },
        { ...identityOf(CUSTOMER_A, 'storage'), quantity: 10, allocations: {}, usageEvents: 1, firstUsageAt: at(5), lastUsageAt: at(5) },
        { ...identityOf(CUSTOMER_B, 'requests'), quantity: 7, allocations: { [BLUE]: 7 }, usageEvents: 1, firstUsageAt: at(5), lastUsageAt: at(5) },
        { ...identityOf(CUSTOMER_LEGACY, 'requests'), quantity: 1, allocations: {}, usageEvents: 1, firstUsageAt: at(30), lastUsageAt: at(30) },
      ]),
    );
    expect(result.buckets).toHaveLength(4);
    expect(bucketOf(result, CUSTOMER_LEGACY)!.customerIdentifier).toBe('cust-legacy-1');
    expect(bucketOf(result, CUSTOMER_LEGACY)!.licenseArn).toBeUndefined();
    expect(result.rejected).toEqual([]);
    expect(result.duplicates).toBe(0);
    // Only a one-customer fold lists its sources.
    expect(result.sources.size).toBe(0);
  });

  it('takes first and last write times from the entries, whatever order they are folded in', () => {
    const entries = [
      entryOf({ messageId: 'a', hourStart: H, writtenAt: at(40), events: [{ customer: CUSTOMER_A, q: 1 }] }),
      entryOf({ messageId: 'b', hourStart: H, writtenAt: at(2), events: [{ customer: CUSTOMER_A, q: 1 }] }),
      entryOf({ messageId: 'c', hourStart: H, writtenAt: at(59), events: [{ customer: CUSTOMER_A, q: 1 }] }),
    ];
    const bucket = bucketOf(foldHour({ hourStart: H, entries }), CUSTOMER_A)!;
    expect([bucket.firstUsageAt, bucket.lastUsageAt, bucket.usageEvents, bucket.quantity]).toEqual([at(2), at(59), 3, 3]);
  });

  it('folds nothing from no entries', () => {
    expect(foldHour({ hourStart: H, entries: [] })).toEqual({ buckets: [], rejected: [], duplicates: 0, sources: new Map() });
  });
});

describe('foldHour: determinism', () => {
  // Entries given in an order that is not their id order; duplicates disagree on quantity,
  // dimension and write time, so whichever copy is kept shows in the buckets.
  const entries: JournalEntry[] = [
    entryOf({
      messageId: 'msg-c',
      hourStart: H,
      writtenAt: at(1),
      events: [
        { customer: CUSTOMER_A, q: 100, id: 'e1', a: { [BLUE]: 100 } },
        { customer: CUSTOMER_B, q: 2, id: 'e1' },
        { customer: CUSTOMER_A, d: 'storage', q: 9, id: 'e2' },
      ],
    }),
    entryOf({
      messageId: 'msg-a',
      hourStart: H,
      writtenAt: at(20),
      events: [
        { customer: CUSTOMER_A, q: 1, id: 'e1', a: { [RED]: 1 } },
        { customer: CUSTOMER_LEGACY, q: 5 },
      ],
    }),
    entryOf({ messageId: 'msg-b', hourStart: H, writtenAt: at(10), events: [{ customer: CUSTOMER_A, q: 7, id: 'e2' }, { customer: CUSTOMER_B, q: 30, id: 'e1' }] }),
    entryOf({ messageId: 'msg-a', hourStart: H, rolledFrom: PREVIOUS, writtenAt: at(45), events: [{ customer: CUSTOMER_A, q: 11, id: 'late-1' }] }),
    entryOf({ messageId: 'msg-0', hourStart: H, rolledFrom: PREVIOUS, writtenAt: at(50), events: [{ customer: CUSTOMER_A, q: 13, id: 'late-1' }] }),
    entryOf({ messageId: 'msg-d', hourStart: H, part: 2, writtenAt: at(55), events: [{ customer: CUSTOMER_A, q: 4 }] }),
    entryOf({ messageId: 'msg-d', hourStart: H, part: 1, writtenAt: at(54), events: [{ customer: CUSTOMER_A, q: 4, id: 'e2' }] }),
  ];

  it('keeps the copy of a repeated eventId that comes first in fold order', () => {
    const result = foldHour({ hourStart: H, entries });
    // Fold order: msg-a, msg-b, msg-c, msg-d#part1, msg-d#part2, then the late msg-0#from#..., msg-a#from#....
    expect(byKey(result.buckets)).toEqual(
      byKey([
        // e1 of msg-a (1) and the untagged part of msg-d#part2 (4); late-1 of msg-0 (13); e2 of msg-b (7) in requests.
        { ...identityOf(CUSTOMER_A, 'requests'), quantity: 1 + 13 + 7 + 4, allocations: { [RED]: 1 }, usageEvents: 4, firstUsageAt: at(10), lastUsageAt: at(55) },
        { ...identityOf(CUSTOMER_B, 'requests'), quantity: 30, allocations: {}, usageEvents: 1, firstUsageAt: at(10), lastUsageAt: at(10) },
        { ...identityOf(CUSTOMER_LEGACY, 'requests'), quantity: 5, allocations: {}, usageEvents: 1, firstUsageAt: at(20), lastUsageAt: at(20) },
      ]),
    );
    // Dropped: A's late-1 of msg-a#from, A's e1 of msg-c, B's e1 of msg-c, A's e2 of msg-c, A's e2 of msg-d#part1.
    expect(result.duplicates).toBe(5);
  });

  it('gives identical buckets, rejections and counts for every order of the entries', () => {
    const flushed = new Map([[CUSTOMER_LEGACY.customerKey, new Set(['msg-z'])]]);
    const baseline = foldHour({ hourStart: H, entries, flushed });
    expect(baseline.rejected.map((r) => r.messageId)).toEqual(['msg-a']);
    const random = prng(20261102);
    for (let round = 0; round < 12; round++) {
      const order = shuffled(entries, random);
      const result = foldHour({ hourStart: H, entries: order, flushed });
      expect(result).toEqual(baseline);
      // Same order of buckets and of allocation keys too: the written items are byte for byte the same.
      expect(JSON.stringify(result.buckets)).toBe(JSON.stringify(baseline.buckets));
    }
  });

  it('comes to the same result one entry at a time (HourFold, as the metering run reads the journal)', () => {
    const flushed = new Map([[CUSTOMER_LEGACY.customerKey, new Set(['msg-z'])]]);
    const seenBefore = (key: string) => key === seenKeyOf(PREVIOUS, CUSTOMER_A.customerKey, 'late-1');
    const fold = new HourFold({ hourStart: H, flushed });
    const ordered = inEntryIdOrder(entries);
    for (const entry of ordered.filter((e) => e.rolledFrom === undefined)) fold.add(entry);
    for (const entry of ordered.filter((e) => e.rolledFrom !== undefined)) fold.add(entry, seenBefore);
    const result = fold.result();
    expect(result).toEqual(foldHour({ hourStart: H, entries, flushed, seenBefore }));
    // Four repeats on time; both late copies of late-1, seen the hour before.
    expect(result.duplicates).toBe(4 + 2);
  });

  it('does not depend on the order of the input array for the one-customer fold either', () => {
    const baseline = foldHour({ hourStart: H, entries, customerKey: CUSTOMER_A.customerKey });
    // Every entry holding the customer's events, counted or not: the hour's fold skips them all
    // (what the early metering refused, it dead-letters from the record; duplicates stay dropped).
    // In fold order: entries on time by entry id, then the late ones by entry id.
    expect(baseline.sources.get(CUSTOMER_A.customerKey)).toEqual([
      'msg-a',
      'msg-b',
      'msg-c',
      'msg-d#part1',
      'msg-d#part2',
      entryIdOf({ messageId: 'msg-0', rolledFrom: PREVIOUS }),
      entryIdOf({ messageId: 'msg-a', rolledFrom: PREVIOUS }),
    ]);
    const random = prng(7);
    for (let round = 0; round < 6; round++) {
      expect(foldHour({ hourStart: H, entries: shuffled(entries, random), customerKey: CUSTOMER_A.customerKey })).toEqual(baseline);
    }
  });
});

describe('foldHour: duplicate eventIds', () => {
  it('drops an eventId repeated for the same customer in the hour and counts the drops', () => {
    const entries = [
      entryOf({
        messageId: 'm1',
        hourStart: H,
        events: [
          { customer: CUSTOMER_A, q: 5, id: 'e1' },
          { customer: CUSTOMER_A, q: 1 },
          { customer: CUSTOMER_A, d: 'storage', q: 8, id: 'e2' },
          // The same eventId twice in one message.
          { customer: CUSTOMER_A, q: 5, id: 'e1' },
        ],
      }),
      entryOf({
        messageId: 'm2',
        hourStart: H,
        events: [
          { customer: CUSTOMER_A, q: 5, id: 'e1' },
          // Another customer's e1 is another event.
          { customer: CUSTOMER_B, q: 6, id: 'e1' },
          // No eventId: never a duplicate, even with equal content.
          { customer: CUSTOMER_A, q: 1 },
          // A repeated eventId is the same event, whatever its dimension says.
          { customer: CUSTOMER_A, q: 8, id: 'e2' },
        ],
      }),
      entryOf({ messageId: 'm3', hourStart: H, events: [{ customer: CUSTOMER_A, q: 5, id: 'e1' }, { customer: CUSTOMER_B, q: 6, id: 'e1' }, { customer: CUSTOMER_A, q: 2, id: 'e3' }] }),
    ];

    const result = foldHour({ hourStart: H, entries });

    expect(bucketOf(result, CUSTOMER_A)).toMatchObject({ quantity: 5 + 1 + 1 + 2, usageEvents: 4 });
    expect(bucketOf(result, CUSTOMER_A, 'storage')).toMatchObject({ quantity: 8, usageEvents: 1 });
    expect(bucketOf(result, CUSTOMER_B)).toMatchObject({ quantity: 6, usageEvents: 1 });
    expect(result.buckets).toHaveLength(3);
    // m1: e1 again; m2: A's e1, A's e2; m3: A's e1, B's e1.
    expect(result.duplicates).toBe(5);
    expect(result.rejected).toEqual([]);
  });

  it('counts every event without an eventId', () => {
    const entries = ['m1', 'm2', 'm3'].map((messageId) =>
      entryOf({ messageId, hourStart: H, events: [{ customer: CUSTOMER_A, q: 2 }, { customer: CUSTOMER_A, q: 2 }] }),
    );
    const result = foldHour({ hourStart: H, entries });
    expect(bucketOf(result, CUSTOMER_A)).toMatchObject({ quantity: 12, usageEvents: 6 });
    expect(result.duplicates).toBe(0);
  });

  it('counts an event without an eventId once by its message id and position, though two entries of its message hold it (overlapping deliveries)', () => {
    // Delivery A wrote position 1 in the message's entry; delivery B, running alongside, did not see
    // it and wrote it again in a supplement. Another message's position 1 is another event.
    const entries = [
      entryOf({ messageId: 'm1', hourStart: H, events: [{ customer: CUSTOMER_A, q: 1, p: 0 }, { customer: CUSTOMER_A, q: 2, p: 1 }] }),
      { ...entryOf({ messageId: 'm1', hourStart: H, events: [{ customer: CUSTOMER_A, q: 2, p: 1 }, { customer: CUSTOMER_A, q: 4, p: 2 }] }), supplement: 1 },
      entryOf({ messageId: 'm2', hourStart: H, events: [{ customer: CUSTOMER_A, q: 8, p: 1 }] }),
    ];
    const result = foldHour({ hourStart: H, entries });
    expect(bucketOf(result, CUSTOMER_A)).toMatchObject({ quantity: 1 + 2 + 4 + 8, usageEvents: 4 });
    expect(result.duplicates).toBe(1);
  });

  it('counts a late event without an eventId once: two late entries of its message in the hour, or its own hour\'s entry seen before', () => {
    const late = (supplement?: number) => ({
      ...entryOf({ messageId: 'm1', hourStart: H, rolledFrom: PREVIOUS, events: [{ customer: CUSTOMER_A, q: 16, p: 3 }] }),
      ...(supplement === undefined ? {} : { supplement }),
    });
    expect(bucketOf(foldHour({ hourStart: H, entries: [late(), late(3)], seenBefore: () => false }), CUSTOMER_A)).toMatchObject({ quantity: 16, usageEvents: 1 });
    // The previous hour's fold counted position 3 of m1 already (an on-time entry of another delivery).
    const seen = new Set([positionSeenKeyOf(PREVIOUS, CUSTOMER_A.customerKey, 'm1', 3)]);
    const result = foldHour({ hourStart: H, entries: [late()], seenBefore: (key) => seen.has(key) });
    expect(result.buckets).toEqual([]);
    expect(result.duplicates).toBe(1);
  });

  it('counts an event sent again from its dead letter (eventId redrive:<message id>:<position>) once with a copy its first message holds, on time or late', () => {
    // A delivery of m1 counted position 1 after all, while another refused it and dead-lettered it;
    // the redrive sent it again in m9 with the eventId standing for m1's position 1.
    const first = entryOf({ messageId: 'm1', hourStart: H, events: [{ customer: CUSTOMER_A, q: 2, p: 1 }] });
    const again = entryOf({ messageId: 'm9', hourStart: H, events: [{ customer: CUSTOMER_A, q: 2, id: redriveEventIdOf('m1', 1) }, { customer: CUSTOMER_A, q: 4, id: redriveEventIdOf('m1', 2) }] });
    for (const entries of [[first, again], [again, first]]) {
      const result = foldHour({ hourStart: H, entries });
      expect(bucketOf(result, CUSTOMER_A)).toMatchObject({ quantity: 6, usageEvents: 2 });
      expect(result.duplicates).toBe(1);
    }
    // Sent again late, after the previous hour's fold counted m1's position 1.
    const seen = new Set([positionSeenKeyOf(PREVIOUS, CUSTOMER_A.customerKey, 'm1', 1)]);
    const late = entryOf({ messageId: 'm9', hourStart: H, rolledFrom: PREVIOUS, events: [{ customer: CUSTOMER_A, q: 2, id: redriveEventIdOf('m1', 1) }] });
    const result = foldHour({ hourStart: H, entries: [late], seenBefore: (key) => seen.has(key) });
    expect(result.buckets).toEqual([]);
    expect(result.duplicates).toBe(1);
  });

  it('keeps events of another hour apart: a late event may carry an eventId this hour also saw', () => {
    const entries = [
      entryOf({ messageId: 'm1', hourStart: H, events: [{ customer: CUSTOMER_A, q: 5, id: 'e1' }] }),
      entryOf({ messageId: 'm2', hourStart: H, rolledFrom: PREVIOUS, events: [{ customer: CUSTOMER_A, q: 7, id: 'e1' }] }),
    ];
    const result = foldHour({ hourStart: H, entries, seenBefore: () => false });
    expect(bucketOf(result, CUSTOMER_A)).toMatchObject({ quantity: 12, usageEvents: 2 });
    expect(result.duplicates).toBe(0);
  });
});

describe('foldHour: late entries', () => {
  it('drops a late event seen before, counts one of two late copies, and asks by own hour, customer and eventId', () => {
    const asked: string[] = [];
    const seen = new Set([seenKeyOf(PREVIOUS, CUSTOMER_A.customerKey, 'e1')]);
    const seenBefore = (key: string) => {
      asked.push(key);
      return seen.has(key);
    };
    const entries = [
      entryOf({
        messageId: 'late-1',
        hourStart: H,
        rolledFrom: PREVIOUS,
        events: [
          { customer: CUSTOMER_A, q: 5, id: 'e1' },
          { customer: CUSTOMER_A, q: 2, id: 'e9' },
          { customer: CUSTOMER_A, q: 1 },
        ],
      }),
      entryOf({ messageId: 'late-2', hourStart: H, rolledFrom: PREVIOUS, events: [{ customer: CUSTOMER_A, q: 2, id: 'e9' }] }),
      // Same eventIds, but from another hour: other events.
      entryOf({ messageId: 'late-3', hourStart: H, rolledFrom: EARLIER, events: [{ customer: CUSTOMER_A, q: 20, id: 'e9' }, { customer: CUSTOMER_B, q: 40, id: 'e1' }] }),
      // This hour's own e1 is not the late one.
      entryOf({ messageId: 'now-1', hourStart: H, events: [{ customer: CUSTOMER_A, q: 3, id: 'e1' }] }),
    ];

    const result = foldHour({ hourStart: H, entries, seenBefore });

    expect(bucketOf(result, CUSTOMER_A)).toMatchObject({ quantity: 2 + 1 + 20 + 3, usageEvents: 4 });
    expect(bucketOf(result, CUSTOMER_B)).toMatchObject({ quantity: 40, usageEvents: 1 });
    expect(result.duplicates).toBe(2);
    expect(result.rejected).toEqual([]);
    // Late events are looked up by their own hour: by eventId, or by message id and position.
    expect(new Set(asked)).toEqual(
      new Set([
        seenKeyOf(PREVIOUS, CUSTOMER_A.customerKey, 'e1'),
        seenKeyOf(PREVIOUS, CUSTOMER_A.customerKey, 'e9'),
        positionSeenKeyOf(PREVIOUS, CUSTOMER_A.customerKey, 'late-1', 2),
        seenKeyOf(EARLIER, CUSTOMER_A.customerKey, 'e9'),
        seenKeyOf(EARLIER, CUSTOMER_B.customerKey, 'e1'),
      ]),
    );
  });

  it('without a seenBefore lookup, still counts two late copies in the hour once', () => {
    const entries = ['late-b', 'late-a'].map((messageId, i) =>
      entryOf({ messageId, hourStart: H, rolledFrom: PREVIOUS, writtenAt: at(10 + i), events: [{ customer: CUSTOMER_A, q: 4 + i, id: 'e1' }] }),
    );
    const result = foldHour({ hourStart: H, entries });
    // late-a comes first in entry-id order.
    expect(bucketOf(result, CUSTOMER_A)).toMatchObject({ quantity: 5, usageEvents: 1, firstUsageAt: at(11), lastUsageAt: at(11) });
    expect(result.duplicates).toBe(1);
  });
});

describe('foldHour: customers metered early', () => {
  it('skips the counted entries, rejects the others hour-already-billed, leaves other customers alone', () => {
    const lateId = entryIdOf({ messageId: 'm0', rolledFrom: PREVIOUS });
    const flushed = new Map([[CUSTOMER_A.customerKey, new Set(['m1', lateId])]]);
    const entries = [
      entryOf({ messageId: 'm1', hourStart: H, events: [{ customer: CUSTOMER_A, q: 5, id: 'e1' }, { customer: CUSTOMER_B, q: 1 }] }),
      entryOf({ messageId: 'm0', hourStart: H, rolledFrom: PREVIOUS, events: [{ customer: CUSTOMER_A, q: 6 }] }),
      entryOf({
        messageId: 'm2',
        hourStart: H,
        events: [
          { customer: CUSTOMER_B, q: 2 },
          { customer: CUSTOMER_A, d: 'storage', q: 7, p: 3, id: 'e7' },
        ],
      }),
      entryOf({ messageId: 'm3', hourStart: H, rolledFrom: EARLIER, events: [{ customer: CUSTOMER_A, q: 4, p: 0 }] }),
    ];

    const result = foldHour({ hourStart: H, entries, flushed, seenBefore: () => false });

    expect(result.buckets.filter((b) => b.customerKey === CUSTOMER_A.customerKey)).toEqual([]);
    expect(result.buckets).toEqual([{ ...identityOf(CUSTOMER_B, 'requests'), quantity: 3, allocations: {}, usageEvents: 2, firstUsageAt: at(10), lastUsageAt: at(10) }]);
    expect(result.rejected).toEqual([
      {
        reason: 'hour-already-billed',
        message: expect.stringContaining(H),
        messageId: 'm2',
        position: 3,
        customerKey: CUSTOMER_A.customerKey,
        dimension: 'storage',
        quantity: 7,
        eventId: 'e7',
      },
      {
        reason: 'hour-already-billed',
        message: expect.any(String),
        messageId: 'm3',
        position: 0,
        customerKey: CUSTOMER_A.customerKey,
        dimension: 'requests',
        quantity: 4,
      },
    ]);
    expect('eventId' in result.rejected[1]).toBe(false);
    expect(result.duplicates).toBe(0);
  });

  it('with an empty set of counted entries, rejects all of the customer\'s events', () => {
    const flushed = new Map([[CUSTOMER_B.customerKey, new Set<string>()]]);
    const entries = [entryOf({ messageId: 'm1', hourStart: H, events: [{ customer: CUSTOMER_B, q: 1 }, { customer: CUSTOMER_B, q: 2 }, { customer: CUSTOMER_A, q: 3 }] })];
    const result = foldHour({ hourStart: H, entries, flushed });
    expect(result.rejected.map((r) => [r.customerKey, r.position, r.quantity])).toEqual([
      [CUSTOMER_B.customerKey, 0, 1],
      [CUSTOMER_B.customerKey, 1, 2],
    ]);
    expect(result.buckets.map((b) => [b.customerKey, b.quantity])).toEqual([[CUSTOMER_A.customerKey, 3]]);
  });
});

describe('foldHour: too many tag sets', () => {

  it('keeps at most 2,499 distinct tag sets in a bucket and rejects the events beyond, totals consistent', () => {
    // 2,600 events of customer A, each with its own tag set (2 of its 3 allocated), 100 per message.
    const entries: JournalEntry[] = [];
    for (let m = 0; m < 26; m++) {
      const events: EventSpec[] = [];
      for (let i = 0; i < 100; i++) events.push({ customer: CUSTOMER_A, q: 3, a: { [tenant(m * 100 + i)]: 2 }, id: `e-${m * 100 + i}` });
      // Events reusing a kept tag set, and one without allocations, still count after the limit.
      if (m === 25) events.push({ customer: CUSTOMER_A, q: 10, a: { [tenant(0)]: 10 } }, { customer: CUSTOMER_A, q: 1 });
      // Another customer's bucket has its own limit.
      if (m === 25) events.push({ customer: CUSTOMER_B, q: 4, a: { [tenant(2599)]: 4 } });
      entries.push(entryOf({ messageId: `msg-${String(m).padStart(2, '0')}`, hourStart: H, events }));
    }

    const result = foldHour({ hourStart: H, entries: shuffled(entries, prng(1)) });

    const bucket = bucketOf(result, CUSTOMER_A)!;
    expect(Object.keys(bucket.allocations)).toHaveLength(2499);
    // The first 2,499 tag sets in entry order are kept; tag set 0 also got the reusing event.
    expect(bucket.allocations[tenant(0)]).toBe(12);
    expect(bucket.allocations[tenant(2498)]).toBe(2);
    expect(bucket.allocations[tenant(2499)]).toBeUndefined();
    expect(result.rejected).toHaveLength(101);
    expect(result.rejected.every((r) => r.reason === 'too-many-tag-sets' && r.customerKey === CUSTOMER_A.customerKey && r.quantity === 3)).toBe(true);
    expect(result.rejected.map((r) => r.eventId)).toEqual(Array.from({ length: 101 }, (_, i) => `e-${2499 + i}`));
    expect(result.rejected[0]).toMatchObject({ messageId: 'msg-24', position: 99, dimension: 'requests' });
    // Counted: 2,499 events of 3, one of 10, one of 1.
    expect(bucket.usageEvents).toBe(2501);
    expect(bucket.quantity).toBe(2499 * 3 + 10 + 1);
    const allocated = Object.values(bucket.allocations).reduce((sum, q) => sum + q, 0);
    expect(allocated).toBe(2499 * 2 + 10);
    expect(allocated).toBeLessThanOrEqual(bucket.quantity);
    expect(bucketOf(result, CUSTOMER_B)).toMatchObject({ quantity: 4, allocations: { [tenant(2599)]: 4 } });
  });

  it('rejects an event whose new tag sets together would pass the limit, and adds none of them', () => {
    const events: EventSpec[] = [];
    for (let i = 0; i < 2498; i++) events.push({ customer: CUSTOMER_A, q: 1, a: { [tenant(i)]: 1 } });
    events.push({ customer: CUSTOMER_A, q: 5, a: { [tenant(0)]: 1, [tenant(5000)]: 2, [tenant(5001)]: 2 } });
    events.push({ customer: CUSTOMER_A, q: 7, a: { [tenant(0)]: 3, [tenant(5002)]: 4 } });
    const result = foldHour({ hourStart: H, entries: [entryOf({ messageId: 'm1', hourStart: H, events })] });

    const bucket = bucketOf(result, CUSTOMER_A)!;
    expect(result.rejected.map((r) => [r.reason, r.position, r.quantity])).toEqual([['too-many-tag-sets', 2498, 5]]);
    expect(Object.keys(bucket.allocations)).toHaveLength(2499);
    expect(bucket.allocations[tenant(5000)]).toBeUndefined();
    expect(bucket.allocations[tenant(0)]).toBe(1 + 3);
    expect(bucket.allocations[tenant(5002)]).toBe(4);
    expect(bucket.quantity).toBe(2498 + 7);
    expect(bucket.usageEvents).toBe(2499);
  });

  it(`keeps a bucket's tag set keys within ${MAX_ALLOCATION_BYTES_PER_BUCKET} bytes`, () => {
    // Each tag set costs its key's length + 16 bytes: 300 bytes (a 19-character tag key, a
    // 256-character value), so exactly 1,000 fit.
    const longKey = (n: number) => tagSetKey({ 'cost-center-code-xx': `${String(n).padStart(6, '0')}${'v'.repeat(250)}` });
    expect(longKey(0).length + 16).toBe(300);
    expect((MAX_ALLOCATION_BYTES_PER_BUCKET / 300) | 0).toBe(1000);
    const events: EventSpec[] = [];
    for (let i = 0; i < 1003; i++) events.push({ customer: CUSTOMER_A, q: 1, a: { [longKey(i)]: 1 } });
    const result = foldHour({ hourStart: H, entries: [entryOf({ messageId: 'm1', hourStart: H, events })] });

    const bucket = bucketOf(result, CUSTOMER_A)!;
    expect(Object.keys(bucket.allocations)).toHaveLength(1000);
    expect(result.rejected.map((r) => [r.reason, r.position])).toEqual([
      ['too-many-tag-sets', 1000],
      ['too-many-tag-sets', 1001],
      ['too-many-tag-sets', 1002],
    ]);
    expect(bucket.quantity).toBe(1000);
  });

  it('leaves out a bucket whose only event was rejected', () => {
    const a: Record<string, number> = {};
    for (let i = 0; i < 2500; i++) a[tenant(i)] = 1;
    const entries = [
      entryOf({ messageId: 'm1', hourStart: H, events: [{ customer: CUSTOMER_A, q: 2500, a, id: 'big' }, { customer: CUSTOMER_A, d: 'storage', q: 1 }] }),
    ];
    const result = foldHour({ hourStart: H, entries });
    expect(result.buckets.map((b) => b.bucketKey)).toEqual([bucketKeyOf(CUSTOMER_A.customerKey, 'storage', H)]);
    expect(result.rejected).toEqual([
      { reason: 'too-many-tag-sets', message: expect.any(String), messageId: 'm1', position: 0, customerKey: CUSTOMER_A.customerKey, dimension: 'requests', quantity: 2500, eventId: 'big' },
    ]);
  });

  // A refused first event must not date the bucket (it once did: the bucket took its entry's time
  // when it was created, before the event was refused).
  it('takes first/last usage times only from events it counted', () => {
    const a: Record<string, number> = {};
    for (let i = 0; i < 2500; i++) a[tenant(i)] = 1;
    const entries = [
      entryOf({ messageId: 'm1', hourStart: H, writtenAt: at(5), events: [{ customer: CUSTOMER_A, q: 2500, a }] }),
      entryOf({ messageId: 'm2', hourStart: H, writtenAt: at(20), events: [{ customer: CUSTOMER_A, q: 1 }] }),
    ];
    const bucket = bucketOf(foldHour({ hourStart: H, entries }), CUSTOMER_A)!;
    expect(bucket).toMatchObject({ quantity: 1, usageEvents: 1, firstUsageAt: at(20), lastUsageAt: at(20) });
  });
});

describe('foldHour: one customer (early metering)', () => {
  it('folds only that customer and lists the entries holding its events, once each, in fold order (late entries last)', () => {
    const lateId = entryIdOf({ messageId: 'm0', rolledFrom: PREVIOUS });
    const entries = [
      entryOf({ messageId: 'm3', hourStart: H, events: [{ customer: CUSTOMER_A, q: 1 }, { customer: CUSTOMER_A, d: 'storage', q: 2 }, { customer: CUSTOMER_B, q: 3 }] }),
      entryOf({ messageId: 'm2', hourStart: H, events: [{ customer: CUSTOMER_B, q: 4 }, { customer: CUSTOMER_LEGACY, q: 5 }] }),
      entryOf({ messageId: 'm1', hourStart: H, events: [{ customer: CUSTOMER_B, q: 6 }, { customer: CUSTOMER_A, q: 7 }, { customer: CUSTOMER_A, q: 8 }] }),
      entryOf({ messageId: 'm0', hourStart: H, rolledFrom: PREVIOUS, events: [{ customer: CUSTOMER_A, q: 9, id: 'x' }] }),
    ];

    const result = foldHour({ hourStart: H, entries, customerKey: CUSTOMER_A.customerKey, seenBefore: () => false });

    expect(byKey(result.buckets).map((b) => [b.customerKey, b.dimension, b.quantity, b.usageEvents])).toEqual([
      [CUSTOMER_A.customerKey, 'requests', 1 + 7 + 8 + 9, 4],
      [CUSTOMER_A.customerKey, 'storage', 2, 1],
    ]);
    expect([...result.sources.keys()]).toEqual([CUSTOMER_A.customerKey]);
    expect(result.sources.get(CUSTOMER_A.customerKey)).toEqual(['m1', 'm3', lateId]);
    expect(result.rejected).toEqual([]);
  });

  it('reports no other customer\'s rejections and lists no sources when nothing counted', () => {
    const a: Record<string, number> = {};
    for (let i = 0; i < 2500; i++) a[tenant(i)] = 1;
    const entries = [entryOf({ messageId: 'm1', hourStart: H, events: [{ customer: CUSTOMER_B, q: 2500, a }] })];
    const result = foldHour({ hourStart: H, entries, customerKey: CUSTOMER_A.customerKey });
    expect(result).toEqual({ buckets: [], rejected: [], duplicates: 0, sources: new Map() });
  });
});
