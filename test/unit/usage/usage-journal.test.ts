import { createHash } from 'node:crypto';
import { encodeUsage } from '../../../lambda/adapters/journal-usage-codec';
import { entryBytes, entryIdOf, JournalEntry, JournalEntryBuilder, journalShardOf, jsonTextBytes, MAX_ENTRY_BYTES } from '../../../lambda/core/usage/usage-journal';
import { KnownCustomer } from '../../../lambda/core/usage/ingest';
import { LEGACY_CUSTOMER, LICENSE_CUSTOMER, OTHER_LICENSE_CUSTOMER } from './fake-usage-ports';

const H09 = '2026-11-02T09:00:00.000Z';
const H10 = '2026-11-02T10:00:00.000Z';
const WRITTEN_AT = '2026-11-02T10:20:00.000Z';

/** An entry's events as [customerKey, dimension, quantity, position]. */
const rows = (entry: JournalEntry) => entry.events.map((e) => [entry.customers[e.c].customerKey, e.d, e.q, e.p]);

/** `count` distinct tag sets of about `length` characters each, quantity 1 each. */
function bigAllocations(count: number, length: number, seed: string): Record<string, number> {
  const allocations: Record<string, number> = {};
  for (let i = 0; i < count; i++) allocations[`[["k","${seed}-${i}-${'x'.repeat(length)}"]]`] = 1;
  return allocations;
}

describe('JournalEntryBuilder: one entry per hour', () => {
  it('groups events by hour, lists each customer once per entry, and points every event at its customer', () => {
    const builder = new JournalEntryBuilder('m-1', WRITTEN_AT);
    builder.add(H10, LICENSE_CUSTOMER, 'requests', 1, 0, 'e-0', undefined);
    builder.add(H10, OTHER_LICENSE_CUSTOMER, 'requests', 2, 1, undefined, undefined);
    builder.add(H09, OTHER_LICENSE_CUSTOMER, 'storage', 3, 2, undefined, undefined);
    builder.add(H10, LICENSE_CUSTOMER, 'storage', 4, 3, undefined, { '[["team","a"]]': 4 });
    builder.add(H10, OTHER_LICENSE_CUSTOMER, 'requests', 5, 4, 'e-4', undefined);

    const entries = builder.build();
    expect(entries.map((e) => [e.messageId, e.hourStart, e.writtenAt, e.part, e.rolledFrom])).toEqual([
      ['m-1', H10, WRITTEN_AT, undefined, undefined],
      ['m-1', H09, WRITTEN_AT, undefined, undefined],
    ]);
    const [ten, nine] = entries;
    expect(ten.customers.map((c) => c.customerKey)).toEqual([LICENSE_CUSTOMER.customerKey, OTHER_LICENSE_CUSTOMER.customerKey]);
    expect(ten.events).toEqual([
      { c: 0, d: 'requests', q: 1, p: 0, id: 'e-0', a: undefined },
      { c: 1, d: 'requests', q: 2, p: 1, id: undefined, a: undefined },
      { c: 0, d: 'storage', q: 4, p: 3, id: undefined, a: { '[["team","a"]]': 4 } },
      { c: 1, d: 'requests', q: 5, p: 4, id: 'e-4', a: undefined },
    ]);
    // A customer's index is per entry: the other customer is the first (index 0) of the 09:00 entry.
    expect(nine.customers.map((c) => c.customerKey)).toEqual([OTHER_LICENSE_CUSTOMER.customerKey]);
    expect(nine.events).toEqual([{ c: 0, d: 'storage', q: 3, p: 2, id: undefined, a: undefined }]);
  });

  it('records only the identity fields of a customer (no subscription state)', () => {
    const leaving: KnownCustomer = { ...LEGACY_CUSTOMER, subscription: { status: 'unsubscribe-pending', finalUsageUntil: '2026-11-02T11:00:00.000Z' } };
    const builder = new JournalEntryBuilder('m-1', WRITTEN_AT);
    builder.add(H10, leaving, 'requests', 1, 0, undefined, undefined);
    const [entry] = builder.build();
    expect(entry.customers).toEqual([
      {
        customerKey: LEGACY_CUSTOMER.customerKey,
        productCode: 'prod-legacy',
        identityMode: 'legacy',
        customerAWSAccountId: '777788889999',
        licenseArn: undefined,
        customerIdentifier: 'cust-legacy-1',
      },
    ]);
  });

  it('builds nothing from no events', () => {
    expect(new JournalEntryBuilder('m-1', WRITTEN_AT).build()).toEqual([]);
  });
});

describe('JournalEntryBuilder: parts', () => {
  /** Seven events of one hour, four with allocations of about 100 KB, plus one event in another hour. */
  function buildBig(): JournalEntry[] {
    const builder = new JournalEntryBuilder('m-big', WRITTEN_AT);
    const big = (seed: string) => bigAllocations(100, 1000, seed);
    builder.add(H10, LICENSE_CUSTOMER, 'requests', 100, 0, 'e-0', big('a'));
    builder.add(H10, OTHER_LICENSE_CUSTOMER, 'requests', 1, 1, undefined, undefined);
    builder.add(H10, LICENSE_CUSTOMER, 'requests', 100, 2, undefined, big('b'));
    builder.add(H10, LICENSE_CUSTOMER, 'storage', 100, 3, undefined, big('c'));
    builder.add(H09, LICENSE_CUSTOMER, 'requests', 7, 4, undefined, undefined);
    builder.add(H10, OTHER_LICENSE_CUSTOMER, 'requests', 2, 5, undefined, undefined);
    builder.add(H10, OTHER_LICENSE_CUSTOMER, 'storage', 100, 6, 'e-6', big('d'));
    builder.add(H10, LICENSE_CUSTOMER, 'requests', 100, 7, undefined, big('e'));
    return builder.build();
  }

  it('splits an hour whose allocations would make an entry too large into parts numbered from 1', () => {
    const entries = buildBig();
    const ten = entries.filter((e) => e.hourStart === H10);
    expect(ten.length).toBeGreaterThan(1);
    expect(ten.map((e) => e.part)).toEqual(ten.map((_, i) => i + 1));
    for (const part of ten) {
      expect(part.messageId).toBe('m-big');
      expect(part.events.length).toBeGreaterThan(0);
      expect(entryBytes(part)).toBeLessThanOrEqual(MAX_ENTRY_BYTES);
    }
    // The whole would not have fitted.
    expect(entryBytes({ customers: ten[0].customers, events: ten.flatMap((e) => e.events) })).toBeGreaterThan(MAX_ENTRY_BYTES);
    // The other hour is one entry, without a part number.
    expect(entries.filter((e) => e.hourStart === H09).map((e) => [e.part, rows(e)])).toEqual([[undefined, [[LICENSE_CUSTOMER.customerKey, 'requests', 7, 4]]]]);
  });

  it('puts every event of the hour in exactly one part, in message order, with its customer listed in that part', () => {
    const ten = buildBig().filter((e) => e.hourStart === H10);
    expect(ten.flatMap((e) => e.events.map((ev) => ev.p))).toEqual([0, 1, 2, 3, 5, 6, 7]);
    expect(ten.flatMap(rows)).toEqual([
      [LICENSE_CUSTOMER.customerKey, 'requests', 100, 0],
      [OTHER_LICENSE_CUSTOMER.customerKey, 'requests', 1, 1],
      [LICENSE_CUSTOMER.customerKey, 'requests', 100, 2],
      [LICENSE_CUSTOMER.customerKey, 'storage', 100, 3],
      [OTHER_LICENSE_CUSTOMER.customerKey, 'requests', 2, 5],
      [OTHER_LICENSE_CUSTOMER.customerKey, 'storage', 100, 6],
      [LICENSE_CUSTOMER.customerKey, 'requests', 100, 7],
    ]);
    for (const part of ten) {
      // Each part lists the customers its events use, each once.
      const used = [...new Set(part.events.map((e) => part.customers[e.c]?.customerKey))];
      expect(used).not.toContain(undefined);
      expect([...part.customers.map((c) => c.customerKey)].sort()).toEqual([...used].sort());
    }
    // Allocations stay with their event.
    expect(Object.keys(ten.flatMap((e) => e.events).find((e) => e.p === 6)!.a!)).toHaveLength(100);
  });

  it('splits the same way every time', () => {
    const first = buildBig();
    const second = buildBig();
    expect(second).toEqual(first);
    expect(first.map((e) => [e.hourStart, e.part, e.events.map((ev) => ev.p)])).toEqual([
      [H10, 1, [0, 1, 2]],
      [H10, 2, [3, 5, 6]],
      [H10, 3, [7]],
      [H09, undefined, [4]],
    ]);
  });

  it('measures eventIds as stored (escaped control characters take six bytes): no part is larger than its estimate', () => {
    // 100 events (a message's most), each with allocations and an id of 256 control characters.
    const builder = new JournalEntryBuilder('m-escaped', WRITTEN_AT);
    for (let p = 0; p < 100; p++) builder.add(H10, LICENSE_CUSTOMER, 'requests', 20, p, `${p}${'\u0001'.repeat(250)}`, bigAllocations(20, 100, `s${p}`));
    const parts = builder.build();
    expect(parts.length).toBeGreaterThan(1);
    for (const part of parts) {
      const stored = Buffer.byteLength(encodeUsage(part));
      expect(entryBytes(part)).toBeGreaterThanOrEqual(stored);
      expect(stored).toBeLessThanOrEqual(MAX_ENTRY_BYTES);
    }
  });

  it('keeps many small events without allocations in one entry', () => {
    const builder = new JournalEntryBuilder('m-many', WRITTEN_AT);
    for (let p = 0; p < 100; p++) builder.add(H10, LICENSE_CUSTOMER, 'requests', 1, p, `event-${'x'.repeat(240)}-${p}`, undefined);
    const entries = builder.build();
    expect(entries).toHaveLength(1);
    expect(entries[0].part).toBeUndefined();
    expect(entries[0].events).toHaveLength(100);
  });
});

describe('jsonTextBytes', () => {
  it.each(['evt-123', '', 'quote " and backslash \\', 'tab\tnew line\n', '\u0001\u001f', 'é ✓', '\u{1f600}', 'lone \ud800 surrogate', '\u2028'])(
    '%j: the UTF-8 bytes of its JSON string, quotes excluded',
    (text) => {
      expect(jsonTextBytes(text)).toBe(Buffer.byteLength(JSON.stringify(text)) - 2);
    },
  );
});

describe('entryIdOf', () => {
  it.each([
    ['a plain entry', { messageId: 'm-1' }, 'm-1'],
    ['a part', { messageId: 'm-1', part: 2 }, 'm-1#part2'],
    ['a late entry', { messageId: 'm-1', rolledFrom: H09 }, `m-1#from#${H09}`],
    ['a part of a late entry', { messageId: 'm-1', part: 3, rolledFrom: H09 }, `m-1#part3#from#${H09}`],
  ])('names %s', (_what, entry, id) => {
    expect(entryIdOf(entry)).toBe(id);
  });

  it('gives a late entry an id apart from the entry of the same message in the hour it is counted in', () => {
    expect(entryIdOf({ messageId: 'm-1', rolledFrom: H09 })).not.toBe(entryIdOf({ messageId: 'm-1' }));
    expect(entryIdOf({ messageId: 'm-1', part: 1 })).not.toBe(entryIdOf({ messageId: 'm-1' }));
  });
});

describe('journalShardOf', () => {
  it('is FNV-1a of the message id (stable across runtimes)', () => {
    // Published FNV-1a 32-bit test vectors; 2^32 shards leave the hash whole.
    expect(journalShardOf('', 2 ** 32)).toBe(0x811c9dc5);
    expect(journalShardOf('a', 2 ** 32)).toBe(0xe40c292c);
    expect(journalShardOf('foobar', 2 ** 32)).toBe(0xbf9cf968);
    expect(journalShardOf('a', 8)).toBe(0xe40c292c % 8);
  });

  it('gives a message the same shard every time', () => {
    const id = '059f36b4-87a3-44ab-83d2-661975830a7d';
    expect(new Set(Array.from({ length: 5 }, () => journalShardOf(id, 8)))).toEqual(new Set([journalShardOf(id, 8)]));
  });

  it('spreads message ids evenly over the shards', () => {
    const counts = new Array<number>(8).fill(0);
    for (let i = 0; i < 8000; i++) {
      const hex = createHash('sha1').update(String(i)).digest('hex');
      // SQS message ids are UUIDs.
      const messageId = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
      counts[journalShardOf(messageId, 8)]++;
    }
    // Every id landed on a shard 0..7 (anything else would be NaN or past the end).
    expect(counts).toHaveLength(8);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(8000);
    for (const count of counts) {
      expect(count).toBeGreaterThan(800);
      expect(count).toBeLessThan(1200);
    }
  });
});
