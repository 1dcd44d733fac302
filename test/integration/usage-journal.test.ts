/**
 * The usage journal and the fold on DynamoDB Local: ingestion appends one entry per message and hour
 * (with a check on the hour's seal); the metering run seals ended hours, folds their entries into
 * sealed hour buckets in the Metering ledger, and early metering folds one customer at once. Every
 * entry ends up written once or refused with its outcome, and every appended event is folded once.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, paginateScan, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { DynamoDbMeteringLedger } from '../../lambda/adapters/metering-ledger';
import { FinalUsageFlush } from '../../lambda/core/lifecycle/subscription-state';
import { bucketKeyOf } from '../../lambda/core/metering/hour-bucket';
import { UsageJournalSchema } from '../../lambda/core/usage-journal-schema';
import {
  AppendOutcome,
  entryBytes,
  JournalCustomer,
  JournalEntry,
  JournalEntryBuilder,
  MAX_ENTRY_BYTES,
} from '../../lambda/core/usage/usage-journal';
import { tagSetKey } from '../../lambda/core/usage/usage-rules';
import { createMeteringTable, createUsageJournalTable } from '../../local/local-tables';
import { localClientConfig } from '../../local/services';
import { requireJava, useDynamoDbLocal } from '../support/local-services';

requireJava();
const dynamoDb = useDynamoDbLocal();

const HOUR_MS = 3_600_000;
const HOUR = '2026-11-02T10:00:00.000Z';
const NEXT_HOUR = '2026-11-02T11:00:00.000Z';
/** A metering run 15 minutes after HOUR ended: HOUR is over by more than the 10 minute grace period. */
const AFTER_HOUR = new Date(Date.parse(NEXT_HOUR) + 15 * 60_000);
const CUTOFF = new Date(AFTER_HOUR.getTime() - 10 * 60_000);
const WRITTEN_AT = '2026-11-02T10:30:00.000Z';

const customer = (id: string): JournalCustomer => ({
  customerKey: `license#${id}`,
  productCode: 'prod',
  identityMode: 'license',
  customerAWSAccountId: '111122223333',
  licenseArn: `arn:aws:license-manager::111122223333:license:${id}`,
});
const A = customer('l-a');
const B = customer('l-b');

interface Usage {
  readonly customer: JournalCustomer;
  readonly quantity: number;
  readonly dimension?: string;
  readonly eventId?: string;
  readonly allocations?: Record<string, number>;
}

/** A message's entries for its hours, built as ingestion builds them. */
function entriesOf(messageId: string, hourStart: string, usage: readonly Usage[], writtenAt = WRITTEN_AT): JournalEntry[] {
  const builder = new JournalEntryBuilder(messageId, writtenAt);
  usage.forEach((u, position) => builder.add(hourStart, u.customer, u.dimension ?? 'requests', u.quantity, position, u.eventId, u.allocations));
  return builder.build();
}
const entryOf = (messageId: string, hourStart: string, usage: readonly Usage[], writtenAt = WRITTEN_AT): JournalEntry => {
  const [entry, ...more] = entriesOf(messageId, hourStart, usage, writtenAt);
  expect(more).toEqual([]);
  return entry;
};

const RED = tagSetKey({ team: 'red' });
const BLUE = tagSetKey({ team: 'blue' });

let tables = 0;

async function newJournal() {
  const n = ++tables;
  const ledgerTable = `Ledger${n}`;
  const journalTable = `Journal${n}`;
  await createMeteringTable(dynamoDb.client, ledgerTable);
  await createUsageJournalTable(dynamoDb.client, journalTable);
  // A client of its own: the transaction counter goes on its middleware stack.
  const documents = DynamoDBDocumentClient.from(new DynamoDBClient(localClientConfig(dynamoDb.endpoint)), {
    marshallOptions: { removeUndefinedValues: true },
  });
  const transactions: number[] = [];
  /** Query requests by partition key (a paged query counts once per page). */
  const queries = new Map<string, number>();
  documents.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'TransactWriteItemsCommand') {
        transactions.push(((args.input as { TransactItems?: unknown[] }).TransactItems ?? []).length);
      }
      if (context.commandName === 'QueryCommand') {
        const pk = String((args.input as { ExpressionAttributeValues?: Record<string, unknown> }).ExpressionAttributeValues?.[':pk']);
        queries.set(pk, (queries.get(pk) ?? 0) + 1);
      }
      return next(args);
    },
    { step: 'initialize', name: 'countTransactions' },
  );
  const ledger = new DynamoDbMeteringLedger(documents, ledgerTable, journalTable);

  /** Every journal item stored under an hour's entry partitions (entries and late placeholders). */
  const entryItems = async (hourStart: string): Promise<Record<string, any>[]> => {
    const items: Record<string, any>[] = [];
    for (let shard = 0; shard < UsageJournalSchema.shards; shard++) {
      const { Items = [] } = await documents.send(
        new QueryCommand({
          TableName: journalTable,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': `entry#${hourStart}#${shard}` },
          ConsistentRead: true,
        }),
      );
      items.push(...Items);
    }
    return items;
  };
  const bucket = async (who: JournalCustomer, dimension = 'requests', hourStart = HOUR) => {
    const { Item } = await documents.send(
      new GetCommand({ TableName: ledgerTable, Key: { pk: `bucket#${bucketKeyOf(who.customerKey, dimension, hourStart)}` }, ConsistentRead: true }),
    );
    return Item;
  };
  /** Every item of the Metering ledger table. */
  const ledgerItems = async (): Promise<Record<string, any>[]> => {
    const items: Record<string, any>[] = [];
    for await (const page of paginateScan({ client: documents }, { TableName: ledgerTable, ConsistentRead: true })) items.push(...(page.Items ?? []));
    return items.sort((a, b) => String(a.pk).localeCompare(String(b.pk)));
  };
  return { ledger, journal: ledger.journal, entryItems, bucket, ledgerItems, transactions, queries };
}

/** The metering run's check of due final usage flushes, when every flush stands. */
const allStand = async (flushes: readonly FinalUsageFlush[]) => flushes.map(() => true);
const byMessage = (entries: readonly JournalEntry[]) => [...entries].sort((a, b) => a.messageId.localeCompare(b.messageId));

describe('usage journal: appending entries', () => {
  it('writes entries that entries(hour) reads back, each under its own hour', async () => {
    const { journal } = await newJournal();
    const m1 = entryOf('m1', HOUR, [
      { customer: A, quantity: 5, allocations: { [RED]: 5 } },
      { customer: B, quantity: 10, eventId: 'e-b' },
      { customer: A, quantity: 2, dimension: 'storage' },
    ]);
    const m2 = entryOf('m2', HOUR, [{ customer: A, quantity: 7 }]);
    const next = entryOf('m3', NEXT_HOUR, [{ customer: B, quantity: 1 }]);
    expect(await journal.append([m1, m2, next])).toEqual(['appended', 'appended', 'appended']);

    expect(byMessage(await journal.entries(HOUR))).toEqual([m1, m2]);
    expect(await journal.entries(NEXT_HOUR)).toEqual([next]);
    // What an entry holds: each customer once, its events pointing at it.
    const [stored] = byMessage(await journal.entries(HOUR));
    expect(stored.customers).toEqual([A, B]);
    expect(stored.events).toEqual([
      { c: 0, d: 'requests', q: 5, p: 0, a: { [RED]: 5 } },
      { c: 1, d: 'requests', q: 10, p: 1, id: 'e-b' },
      { c: 0, d: 'storage', q: 2, p: 2 },
    ]);
    expect(await journal.entries('2026-11-02T09:00:00.000Z')).toEqual([]);
  });

  it('answers duplicate for an entry that exists (a redelivered message) and keeps the first one', async () => {
    const { journal, entryItems } = await newJournal();
    const first = entryOf('m1', HOUR, [{ customer: A, quantity: 5 }]);
    expect(await journal.append([first])).toEqual(['appended']);
    // Redelivered later: ingestion builds it again with a later writtenAt.
    const redelivery = entryOf('m1', HOUR, [{ customer: A, quantity: 5 }], '2026-11-02T10:45:00.000Z');
    expect(await journal.append([redelivery, entryOf('m2', HOUR, [{ customer: B, quantity: 1 }])])).toEqual(['duplicate', 'appended']);
    expect(byMessage(await journal.entries(HOUR))).toEqual([first, expect.objectContaining({ messageId: 'm2' })]);
    expect(await entryItems(HOUR)).toHaveLength(2);
  });

  it('answers duplicate for the second copy of an entry given twice in one call, and writes it once', async () => {
    const { journal, entryItems } = await newJournal();
    // SQS delivered the message twice in one batch: ingestion builds its entry twice.
    const entry = entryOf('m1', HOUR, [{ customer: A, quantity: 5 }]);
    const again = entryOf('m1', HOUR, [{ customer: A, quantity: 5 }]);
    expect(await journal.append([entry, again, entryOf('m2', HOUR, [{ customer: A, quantity: 1 }])])).toEqual(['appended', 'duplicate', 'appended']);
    expect(await entryItems(HOUR)).toHaveLength(2);
  });

  it('answers sealed once the hour is sealed and writes nothing; other hours of the same call are written; a redelivery is still a duplicate', async () => {
    const { journal, entryItems } = await newJournal();
    const counted = entryOf('m0', HOUR, [{ customer: A, quantity: 1 }]);
    expect(await journal.append([counted])).toEqual(['appended']);
    await journal.sealHours([HOUR], AFTER_HOUR);

    const tooLate = entryOf('m1', HOUR, [{ customer: A, quantity: 5 }]);
    const nextHour = entryOf('m1', NEXT_HOUR, [{ customer: A, quantity: 2 }]);
    expect(await journal.append([tooLate, nextHour])).toEqual(['sealed', 'appended']);
    expect(await journal.entries(HOUR)).toEqual([counted]);
    expect((await entryItems(HOUR)).map((i) => i.sk)).toEqual(['m0']);
    expect(await journal.entries(NEXT_HOUR)).toEqual([nextHour]);

    // Many entries of the sealed hour at once (every shard's seal is checked): none written.
    const many = Array.from({ length: 30 }, (_, i) => entryOf(`late-${i}`, HOUR, [{ customer: B, quantity: i }]));
    expect(new Set(await journal.append(many))).toEqual(new Set(['sealed']));
    expect((await entryItems(HOUR)).map((i) => i.sk)).toEqual(['m0']);

    // The entry written before the seal, delivered again: a duplicate, not usage to move on.
    expect(await journal.append([counted])).toEqual(['duplicate']);
  });

  it('a late entry (rolledFrom) leaves a placeholder under its own hour: a redelivery of the original entry is a duplicate', async () => {
    const { journal, entryItems } = await newJournal();
    await journal.sealHours([HOUR], AFTER_HOUR);
    const original = entryOf('m-late', HOUR, [{ customer: A, quantity: 3, eventId: 'late' }]);
    expect(await journal.append([original])).toEqual(['sealed']);

    // Ingestion moves the events to the hour now open.
    const late: JournalEntry = { ...original, hourStart: NEXT_HOUR, rolledFrom: HOUR };
    expect(await journal.append([late])).toEqual(['appended']);
    expect(await journal.entries(NEXT_HOUR)).toEqual([late]);
    // The placeholder carries no usage: it is no entry of the hour it came from.
    expect(await journal.entries(HOUR)).toEqual([]);
    expect(await entryItems(HOUR)).toEqual([expect.objectContaining({ sk: 'm-late', countedIn: NEXT_HOUR })]);

    // SQS delivers the message again: its original entry finds the placeholder.
    expect(await journal.append([original])).toEqual(['duplicate']);
    expect(await journal.append([late])).toEqual(['duplicate']);
    // Also once the late entry's hour is sealed too.
    await journal.sealHours([NEXT_HOUR], new Date(AFTER_HOUR.getTime() + HOUR_MS));
    expect(await journal.append([original])).toEqual(['duplicate']);
    expect(await journal.entries(NEXT_HOUR)).toEqual([late]);
    expect(await entryItems(NEXT_HOUR)).toHaveLength(1);
  });

  it('tells which positions of a message its entries hold: entries, parts and supplements of its hours, and late entries through their placeholders', async () => {
    const { journal } = await newJournal();
    const PREVIOUS = new Date(Date.parse(HOUR) - HOUR_MS).toISOString();
    await journal.sealHours([PREVIOUS], AFTER_HOUR);
    const usage = (positions: number[]) => positions.map((p) => ({ c: 0, d: 'requests', q: 1, p }));
    const entry = (change: Partial<JournalEntry> & { events: JournalEntry['events'] }): JournalEntry => ({ messageId: 'm-1', hourStart: HOUR, customers: [A], writtenAt: WRITTEN_AT, ...change });
    expect(
      await journal.append([
        entry({ events: usage([0, 3]) }),
        // Rolled from the sealed hour before: a placeholder there, the entry here.
        entry({ rolledFrom: PREVIOUS, events: usage([1]) }),
        entry({ supplement: 2, events: usage([2, 5]) }),
        entry({ part: 2, events: usage([4]) }),
        // Other messages, one whose id starts with this one's.
        entry({ messageId: 'm-10', events: usage([6]) }),
        entry({ messageId: 'm-2', events: usage([7]) }),
      ]),
    ).toEqual(['appended', 'appended', 'appended', 'appended', 'appended', 'appended']);
    expect([...(await journal.storedPositions('m-1', [HOUR]))].sort()).toEqual([0, 1, 2, 3, 4, 5]);
    // From the hour the late event belongs to, its placeholder leads to the hour it was counted in.
    expect([...(await journal.storedPositions('m-1', [PREVIOUS]))].sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect([...(await journal.storedPositions('m-1', [NEXT_HOUR]))]).toEqual([]);
    // The supplement is read back as written.
    expect((await journal.entries(HOUR)).filter((e) => e.supplement !== undefined)).toEqual([entry({ supplement: 2, events: usage([2, 5]) })]);
  });

  it("keeps the positions each delivery refused, with reasons, per message: a later record adds to an earlier one, a long reason is cut", async () => {
    const { journal } = await newJournal();
    const at = new Date(WRITTEN_AT);
    expect((await journal.refusedPositions('m-1')).size).toBe(0);
    await journal.recordRefused('m-1', new Map([[3, { reason: 'timestamp-in-future', message: 'ahead' }]]), at);
    // A redelivery refuses position 3 again and 7 for the first time (its earlier delivery had not written it).
    await journal.recordRefused(
      'm-1',
      new Map([
        [3, { reason: 'timestamp-in-future', message: 'ahead' }],
        [7, { reason: 'unknown-dimension', message: `"gpu" ${'x'.repeat(5000)}` }],
      ]),
      at,
    );
    await journal.recordRefused('m-10', new Map([[0, { reason: 'invalid-event', message: 'not an event' }]]), at);
    const refused = await journal.refusedPositions('m-1');
    expect([...refused].map(([p, r]) => [p, r.reason])).toEqual([
      [3, 'timestamp-in-future'],
      [7, 'unknown-dimension'],
    ]);
    expect(refused.get(7)!.message.startsWith('"gpu" xxx')).toBe(true);
    expect(refused.get(7)!.message.length).toBeLessThanOrEqual(1000);
    expect([...(await journal.refusedPositions('m-10')).keys()]).toEqual([0]);
  });

  it('appends more entries than one transaction holds (120) across several transactions of at most 100 items, settling a duplicate among them', async () => {
    const { journal, transactions } = await newJournal();
    const entries = Array.from({ length: 120 }, (_, i) => entryOf(`m${String(i).padStart(3, '0')}`, HOUR, [{ customer: i % 2 ? A : B, quantity: i }]));
    const earlier = entryOf('m060', HOUR, [{ customer: A, quantity: 60 }], '2026-11-02T10:05:00.000Z');
    expect(await journal.append([earlier])).toEqual(['appended']);
    transactions.length = 0;

    const outcomes = await journal.append(entries);
    expect(outcomes[60]).toBe('duplicate');
    expect(outcomes.filter((o, i) => i !== 60 && o === 'appended')).toHaveLength(119);
    expect(transactions.length).toBeGreaterThanOrEqual(2);
    expect(Math.max(...transactions)).toBeLessThanOrEqual(100);

    const stored = await journal.entries(HOUR);
    expect(stored.map((e) => e.messageId).sort()).toEqual(entries.map((e) => e.messageId));
    // The entry written before kept its own contents.
    expect(stored.find((e) => e.messageId === 'm060')).toEqual(earlier);
    expect(stored.reduce((sum, e) => sum + e.events.reduce((s, ev) => s + ev.q, 0), 0)).toBe((119 * 120) / 2);
  });

  it('40 appends to one hour while sealHours runs: every entry answered appended is stored whole, every one answered sealed is absent', async () => {
    const { ledger, journal, entryItems, bucket } = await newJournal();
    const before = entryOf('before', HOUR, [{ customer: A, quantity: 1 }]);
    expect(await journal.append([before])).toEqual(['appended']);

    const entries = Array.from({ length: 40 }, (_, i) =>
      entryOf(`c${i}`, HOUR, [
        { customer: A, quantity: i, allocations: { [RED]: i } },
        { customer: B, quantity: 1, eventId: `c${i}` },
      ]),
    );
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const timed: { outcome: AppendOutcome; startedAt: number; endedAt: number }[] = new Array(entries.length);
    let sealStarted = 0;
    let sealEnded = 0;
    // Appends start every 2 ms; the seal starts among them.
    await Promise.all([
      ...entries.map(async (entry, i) => {
        await sleep(i * 2);
        const startedAt = performance.now();
        const [outcome] = await journal.append([entry]);
        timed[i] = { outcome, startedAt, endedAt: performance.now() };
      }),
      (async () => {
        await sleep(30);
        sealStarted = performance.now();
        await journal.sealHours([HOUR], AFTER_HOUR);
        sealEnded = performance.now();
      })(),
    ]);
    const after = entryOf('after', HOUR, [{ customer: A, quantity: 1 }]);
    expect(await journal.append([after])).toEqual(['sealed']);

    const outcomes = timed.map((t) => t.outcome);
    expect(outcomes.every((o) => o === 'appended' || o === 'sealed')).toBe(true);
    // What timing decides: answered before the seal began, appended; asked after it was written, sealed.
    timed.forEach((t) => {
      if (t.endedAt < sealStarted) expect(t.outcome).toBe('appended');
      if (t.startedAt > sealEnded) expect(t.outcome).toBe('sealed');
    });

    const appended = entries.filter((_, i) => outcomes[i] === 'appended');
    const stored = await journal.entries(HOUR);
    expect(byMessage(stored)).toEqual(byMessage([before, ...appended]));
    expect(await entryItems(HOUR)).toHaveLength(1 + appended.length);
    // And the fold of the hour counts exactly those.
    await ledger.sealHoursEndedBy(CUTOFF, AFTER_HOUR);
    expect(await bucket(A)).toMatchObject({ quantity: 1 + appended.reduce((s, e) => s + e.events[0].q, 0), usageEvents: 1 + appended.length });
    expect((await bucket(B))?.usageEvents ?? 0).toBe(appended.length);
  });

  it('splits a message whose allocations exceed MAX_ENTRY_BYTES into parts and stores every part', async () => {
    const { journal, entryItems } = await newJournal();
    // 30 events of 100 tag sets with 200-character values: about 690 KB of allocations, more than one
    // 400 KB DynamoDB item holds.
    const usage: Usage[] = Array.from({ length: 30 }, (_, e) => ({
      customer: e % 3 === 0 ? B : A,
      quantity: 100,
      eventId: `big-${e}`,
      allocations: Object.fromEntries(Array.from({ length: 100 }, (_, a) => [tagSetKey({ tenant: `t-${e}-${a}-`.padEnd(200, 'x') }), 1])),
    }));
    usage.push({ customer: A, quantity: 7, dimension: 'storage' });
    const parts = entriesOf('m-big', HOUR, usage);
    expect(parts.length).toBeGreaterThanOrEqual(3);
    expect(parts.map((p) => p.part)).toEqual(parts.map((_, i) => i + 1));
    for (const part of parts) expect(entryBytes(part)).toBeLessThanOrEqual(MAX_ENTRY_BYTES + 1000);

    expect(await journal.append(parts)).toEqual(parts.map(() => 'appended'));
    const items = await entryItems(HOUR);
    expect(items.map((i) => i.sk).sort()).toEqual(parts.map((p) => `m-big#part${p.part}`).sort());
    expect(items.map((i) => i.part).sort()).toEqual(parts.map((p) => p.part));

    // Every part comes back as written, with its number; every event and allocation once.
    const stored = await journal.entries(HOUR);
    expect([...stored].sort((a, b) => a.part! - b.part!)).toEqual(parts);
    const events = stored.flatMap((entry) => entry.events.map((e) => ({ customer: entry.customers[e.c].customerKey, ...e })));
    expect(events.map((e) => e.p).sort((x, y) => x - y)).toEqual(usage.map((_, p) => p));
    expect(new Set(events.flatMap((e) => Object.keys(e.a ?? {}))).size).toBe(3000);
    for (const e of events) expect(e.customer).toBe(usage[e.p].customer.customerKey);

    // A redelivery of the message: every part is a duplicate.
    expect(await journal.append(entriesOf('m-big', HOUR, usage, '2026-11-02T10:50:00.000Z'))).toEqual(parts.map(() => 'duplicate'));
  });
});

describe('usage journal: reading an hour bigger than a query page', () => {
  it('reads every shard page by page, merged in entry id order, and the fold counts all of it', async () => {
    const { ledger, journal, bucket, queries } = await newJournal();
    // 48 messages of 10 events with 100 tag sets of 250 characters: entries of about 270 KB, about
    // 1.6 MB per shard, more than one 1 MB query page. A customer per message keeps each bucket
    // under its 300 KB of allocations.
    const customers = Array.from({ length: 48 }, (_, m) => customer(`l-big-${String(m).padStart(2, '0')}`));
    const entries = customers.map((who, m) =>
      entryOf(
        `m-${String(m).padStart(2, '0')}`,
        HOUR,
        Array.from({ length: 10 }, (_, e) => ({
          customer: who,
          quantity: 100 + e,
          eventId: `e-${e}`,
          allocations: Object.fromEntries(Array.from({ length: 100 }, (_, a) => [tagSetKey({ tenant: `t-${e}-${a}-`.padEnd(250, 'x') }), a === 0 ? e + 1 : 1])),
        })),
      ),
    );
    for (let i = 0; i < entries.length; i += 8) expect(await journal.append(entries.slice(i, i + 8))).toEqual(entries.slice(i, i + 8).map(() => 'appended'));

    queries.clear();
    const read: string[] = [];
    for await (const entry of journal.readEntries(HOUR)) read.push(entry.messageId);
    expect(read).toEqual(entries.map((e) => e.messageId).sort());
    const pages = [...queries].filter(([pk]) => pk.startsWith(`entry#${HOUR}#`)).map(([, n]) => n);
    // Every shard queried; the big ones in several pages (the last page of each may be empty).
    expect(pages).toHaveLength(UsageJournalSchema.shards);
    expect(Math.max(...pages)).toBeGreaterThanOrEqual(2);

    await ledger.sealHoursEndedBy(CUTOFF, AFTER_HOUR);
    for (const who of customers) {
      const stored = await bucket(who);
      expect(stored).toMatchObject({ quantity: 10 * 100 + 45, usageEvents: 10, status: 'sealed' });
      expect(Object.keys(stored!).filter((k) => k.startsWith('alloc#'))).toHaveLength(1000);
    }
  });
});

describe('usage journal: folding sealed hours into hour buckets', () => {
  it('sealHoursEndedBy seals the ended hour and writes its buckets sealed: summed quantity, usageEvents, alloc# attributes, in the work index', async () => {
    const { ledger, journal, bucket } = await newJournal();
    const entries = [
      entryOf('m1', HOUR, [
        { customer: A, quantity: 5, allocations: { [RED]: 5 } },
        { customer: A, quantity: 7, allocations: { [BLUE]: 7 } },
        { customer: B, quantity: 10 },
        { customer: A, quantity: 2, dimension: 'storage' },
      ]),
      entryOf('m2', HOUR, [
        { customer: A, quantity: 11 },
        { customer: A, quantity: 3, allocations: { [RED]: 2, [BLUE]: 1 } },
        { customer: B, quantity: 4, eventId: 'x' },
      ]),
      // The same eventId in another message: folded once.
      entryOf('m3', HOUR, [
        { customer: B, quantity: 4, eventId: 'x' },
        { customer: B, quantity: 1, eventId: 'y' },
      ]),
      // The hour now running: not folded yet.
      entryOf('m4', NEXT_HOUR, [{ customer: A, quantity: 100 }]),
    ];
    expect(await journal.append(entries)).toEqual(['appended', 'appended', 'appended', 'appended']);

    const report = await ledger.sealHoursEndedBy(CUTOFF, AFTER_HOUR);
    expect(report.rejected).toEqual([]);
    expect(report.duplicates).toBe(1);
    expect(report.buckets.map((b) => [b.bucketKey, b.quantity, b.status]).sort()).toEqual([
      [bucketKeyOf(A.customerKey, 'requests', HOUR), 26, 'sealed'],
      [bucketKeyOf(A.customerKey, 'storage', HOUR), 2, 'sealed'],
      [bucketKeyOf(B.customerKey, 'requests', HOUR), 15, 'sealed'],
    ]);

    const sealed = { status: 'sealed', hourStart: HOUR, sealedAt: AFTER_HOUR.toISOString(), meteringState: expect.stringMatching(/^sealed#[0-7]$/) };
    expect(await bucket(A)).toMatchObject({
      ...sealed,
      customerKey: A.customerKey,
      licenseArn: A.licenseArn,
      customerAWSAccountId: A.customerAWSAccountId,
      productCode: 'prod',
      dimension: 'requests',
      quantity: 26,
      usageEvents: 4,
      [`alloc#${RED}`]: 7,
      [`alloc#${BLUE}`]: 8,
    });
    expect(await bucket(A, 'storage')).toMatchObject({ ...sealed, quantity: 2, usageEvents: 1 });
    expect(Object.keys((await bucket(A, 'storage'))!).some((k) => k.startsWith('alloc#'))).toBe(false);
    expect(await bucket(B)).toMatchObject({ ...sealed, quantity: 15, usageEvents: 3 });
    expect(await bucket(A, 'requests', NEXT_HOUR)).toBeUndefined();

    // The hour is sealed: nothing more can be appended to it.
    expect(await journal.append([entryOf('m5', HOUR, [{ customer: A, quantity: 1 }])])).toEqual(['sealed']);

    // Waiting to be metered, read through the work index.
    const toMeter = await ledger.bucketsToMeter(100);
    expect(toMeter.map((b) => b.bucketKey).sort()).toEqual(report.buckets.map((b) => b.bucketKey).sort());
    expect(toMeter.find((b) => b.bucketKey === bucketKeyOf(A.customerKey, 'requests', HOUR))).toMatchObject({
      status: 'sealed',
      quantity: 26,
      allocations: { [RED]: 7, [BLUE]: 8 },
      attempts: 0,
    });
  });

  it('folding again (a later run) writes nothing new and leaves the buckets as they were', async () => {
    const { ledger, journal, ledgerItems } = await newJournal();
    await journal.append([entryOf('m1', HOUR, [{ customer: A, quantity: 5 }, { customer: B, quantity: 6 }])]);
    expect((await ledger.sealHoursEndedBy(CUTOFF, AFTER_HOUR)).buckets).toHaveLength(2);
    const written = await ledgerItems();
    expect(written.filter((i) => String(i.pk).startsWith('bucket#'))).toHaveLength(2);

    const later = new Date(AFTER_HOUR.getTime() + 5 * 60_000);
    expect(await ledger.sealHoursEndedBy(new Date(later.getTime() - 10 * 60_000), later)).toEqual({ buckets: [], rejected: [], duplicates: 0 });
    expect(await ledgerItems()).toEqual(written);
    expect(await journal.foldedThrough()).toBe(HOUR);
  });

  /** A journal with A's 5 and B's 6 in HOUR, and `at(minutes)` into HOUR: two customers whose access ends. */
  async function customersEndingInHour() {
    const journalled = await newJournal();
    await journalled.journal.append([
      entryOf('m1', HOUR, [
        { customer: A, quantity: 5 },
        { customer: B, quantity: 6 },
      ]),
    ]);
    return { ...journalled, at: (minutes: number) => new Date(Date.parse(HOUR) + minutes * 60_000) };
  }

  it('final usage: scheduled flushes come due by their time, earliest first; sealFinalUsageDue seals only the due customers\' usage and forgets their flushes', async () => {
    const { ledger, journal, bucket, at } = await customersEndingInHour();
    // A's access ended at 10:15 and B's at 10:20: each flush is due five minutes later.
    await journal.scheduleFinalUsage({ customerKey: B.customerKey, dueAt: at(25).toISOString() }, at(20));
    await journal.scheduleFinalUsage({ customerKey: A.customerKey, dueAt: at(20).toISOString() }, at(15));
    // Scheduled twice (a redelivered notification): one flush.
    await journal.scheduleFinalUsage({ customerKey: A.customerKey, dueAt: at(20).toISOString() }, at(15));

    expect(await journal.finalUsageDue(new Date(at(20).getTime() - 1))).toEqual([]);
    expect(await journal.finalUsageDue(at(20))).toEqual([{ customerKey: A.customerKey, dueAt: at(20).toISOString() }]);
    expect((await journal.finalUsageDue(at(30))).map((f) => f.customerKey)).toEqual([A.customerKey, B.customerKey]);

    const first = await ledger.sealFinalUsageDue(at(22), allStand);
    expect(first).toMatchObject({ customers: 1, rejected: [], duplicates: 0 });
    expect(first.buckets.map((b) => [b.customerKey, b.quantity])).toEqual([[A.customerKey, 5]]);
    expect(await bucket(A)).toMatchObject({ status: 'sealed', quantity: 5 });
    expect(await bucket(B)).toBeUndefined();
    expect(await journal.finalUsageDue(at(22))).toEqual([]);

    const second = await ledger.sealFinalUsageDue(at(26), allStand);
    expect(second.buckets.map((b) => [b.customerKey, b.quantity])).toEqual([[B.customerKey, 6]]);
    expect(await journal.finalUsageDue(at(60))).toEqual([]);
  });

  it('final usage: a flush its customer\'s later change withdrew is forgotten unsealed, with its version kept from scheduling to the check', async () => {
    const { ledger, journal, bucket, at } = await customersEndingInHour();
    await journal.scheduleFinalUsage({ customerKey: A.customerKey, dueAt: at(20).toISOString(), statusVersion: 'ended-a' }, at(15));
    await journal.scheduleFinalUsage({ customerKey: B.customerKey, dueAt: at(20).toISOString(), statusVersion: 'ended-b' }, at(15));
    const asked: FinalUsageFlush[] = [];
    const report = await ledger.sealFinalUsageDue(at(21), async (flushes) => {
      asked.push(...flushes);
      return flushes.map((flush) => flush.customerKey === B.customerKey);
    });
    expect(asked.map((f) => [f.customerKey, f.statusVersion]).sort()).toEqual([
      [A.customerKey, 'ended-a'],
      [B.customerKey, 'ended-b'],
    ].sort());
    expect(report).toMatchObject({ customers: 1, withdrawn: 1, failed: [] });
    expect(await bucket(A)).toBeUndefined();
    expect(await bucket(B)).toMatchObject({ status: 'sealed', quantity: 6 });
    expect(await journal.finalUsageDue(at(60))).toEqual([]);
  });

  it('final usage: a flush that fails is reported and tried again next run, the others are sealed; after its final window it is given up', async () => {
    const { ledger, journal, bucket, at } = await customersEndingInHour();
    await journal.scheduleFinalUsage({ customerKey: A.customerKey, dueAt: at(20).toISOString() }, at(15));
    await journal.scheduleFinalUsage({ customerKey: B.customerKey, dueAt: at(20).toISOString() }, at(15));
    // A's flush fails (say, more entries than one transaction holds).
    const seal = ledger.sealCustomerBuckets.bind(ledger);
    ledger.sealCustomerBuckets = async (customerKey, now) => {
      if (customerKey === A.customerKey) throw Object.assign(new Error('too big for one transaction'), { name: 'ValidationException' });
      return seal(customerKey, now);
    };

    const first = await ledger.sealFinalUsageDue(at(21), allStand);
    expect(first).toMatchObject({ customers: 1, failed: [{ customerKey: A.customerKey, dueAt: at(20).toISOString(), message: 'ValidationException: too big for one transaction', givenUp: false }] });
    expect(await bucket(B)).toMatchObject({ status: 'sealed', quantity: 6 });
    expect((await journal.finalUsageDue(at(21))).map((f) => f.customerKey)).toEqual([A.customerKey]);

    // Still failing once its final window has closed: given up, and no longer tried.
    const late = await ledger.sealFinalUsageDue(at(20 + 61), allStand);
    expect(late.failed).toMatchObject([{ customerKey: A.customerKey, givenUp: true }]);
    expect(await journal.finalUsageDue(at(20 + 61))).toEqual([]);
    expect(await bucket(A)).toBeUndefined();
  });

  it('sealCustomerBuckets (early metering) writes that customer\'s buckets and its flush record; the hour\'s fold refuses its later entries as hour-already-billed and leaves its bucket as the flush wrote it', async () => {
    const { ledger, journal, bucket } = await newJournal();
    await journal.append([
      entryOf('m1', HOUR, [
        { customer: A, quantity: 5 },
        { customer: B, quantity: 6 },
      ]),
      entryOf('m2', HOUR, [{ customer: A, quantity: 1, dimension: 'storage' }]),
    ]);
    // The customer's access ends twenty minutes into the hour.
    const flushAt = new Date(Date.parse(HOUR) + 20 * 60_000);
    const flush = await ledger.sealCustomerBuckets(A.customerKey, flushAt);
    expect(flush.rejected).toEqual([]);
    expect(flush.buckets.map((b) => [b.bucketKey, b.quantity, b.status]).sort()).toEqual([
      [bucketKeyOf(A.customerKey, 'requests', HOUR), 5, 'sealed'],
      [bucketKeyOf(A.customerKey, 'storage', HOUR), 1, 'sealed'],
    ]);
    const flushed = await bucket(A);
    expect(flushed).toMatchObject({ status: 'sealed', quantity: 5, usageEvents: 1, sealedAt: flushAt.toISOString(), meteringState: expect.stringMatching(/^sealed#/) });
    expect(await bucket(B)).toBeUndefined();
    expect([...(await journal.flushes(HOUR)).keys()]).toEqual([A.customerKey]);
    // Early metering again: nothing more.
    expect((await ledger.sealCustomerBuckets(A.customerKey, new Date(flushAt.getTime() + 60_000))).buckets).toEqual([]);

    // Usage after the flush, in the same (still open) hour: the journal takes it...
    expect(
      await journal.append([
        entryOf('m3', HOUR, [
          { customer: A, quantity: 2, eventId: 'after-flush' },
          { customer: B, quantity: 3 },
        ]),
      ]),
    ).toEqual(['appended']);

    // ...and the hour's fold refuses A's part of it.
    const report = await ledger.sealHoursEndedBy(CUTOFF, AFTER_HOUR);
    expect(report.rejected).toEqual([
      {
        reason: 'hour-already-billed',
        message: expect.any(String),
        messageId: 'm3',
        position: 0,
        customerKey: A.customerKey,
        dimension: 'requests',
        quantity: 2,
        eventId: 'after-flush',
      },
    ]);
    expect(report.buckets.map((b) => [b.bucketKey, b.quantity])).toEqual([[bucketKeyOf(B.customerKey, 'requests', HOUR), 9]]);
    expect(await bucket(A)).toEqual(flushed);
    expect(await bucket(A, 'storage')).toMatchObject({ quantity: 1, sealedAt: flushAt.toISOString() });
    expect(await bucket(B)).toMatchObject({ status: 'sealed', quantity: 9, usageEvents: 2, sealedAt: AFTER_HOUR.toISOString() });
    expect((await ledger.bucketsToMeter(100)).map((b) => b.bucketKey).sort()).toEqual(
      [bucketKeyOf(A.customerKey, 'requests', HOUR), bucketKeyOf(A.customerKey, 'storage', HOUR), bucketKeyOf(B.customerKey, 'requests', HOUR)].sort(),
    );
  });
});
