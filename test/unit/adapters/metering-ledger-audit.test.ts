import { BatchGetCommand, BatchWriteCommand, GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { shardOf } from '../../../lambda/adapters/bucket-items';
import { DynamoDbMeteringLedger } from '../../../lambda/adapters/metering-ledger';
import { FoldedBucket } from '../../../lambda/core/metering/fold';
import { bucketKeyOf } from '../../../lambda/core/metering/hour-bucket';
import { UsageJournalSchema } from '../../../lambda/core/usage-journal-schema';
import { tagSetKey } from '../../../lambda/core/usage/usage-rules';
import { Sent, stubClient } from './stub-client';

/**
 * The metering run's audit trail in the Metering ledger adapter: whole bucket items written from the
 * run's images, the changes of one turn of the event loop coalesced into BatchWriteItem calls. The
 * client is a stub that records each command and answers it (as in usage-journal-errors.test.ts).
 */

const H09 = '2026-11-02T09:00:00.000Z';
const H10 = '2026-11-02T10:00:00.000Z';
const H11 = '2026-11-02T11:00:00.000Z';
const SEALED_AT = new Date('2026-11-02T11:10:00.000Z');
const T1 = new Date('2026-11-02T11:12:00.000Z');
const T2 = new Date('2026-11-02T11:13:00.000Z');
const TEAM_A = tagSetKey({ team: 'a' });
const TEAM_B = tagSetKey({ team: 'b' });



/** A folded bucket of customer `n` for an hour. */
function folded(n: number, hourStart = H10): FoldedBucket {
  const customerKey = `license#l-${n}`;
  return {
    bucketKey: bucketKeyOf(customerKey, 'requests', hourStart),
    customerKey,
    productCode: 'prod-1',
    identityMode: 'license',
    customerAWSAccountId: '123456789012',
    licenseArn: `arn:aws:license-manager::123456789012:license:l-${n}`,
    dimension: 'requests',
    hourStart,
    quantity: 10 + n,
    allocations: { [TEAM_A]: 7 + n, [TEAM_B]: 3 },
    usageEvents: 4,
    firstUsageAt: '2026-11-02T10:01:00.000Z',
    lastUsageAt: '2026-11-02T10:59:00.000Z',
  };
}

/** The ledger item of a folded bucket as sealing writes it, spelled out. */
function sealedItem(b: FoldedBucket): Record<string, unknown> {
  return {
    pk: `bucket#${b.bucketKey}`,
    bucketKey: b.bucketKey,
    customerKey: b.customerKey,
    productCode: b.productCode,
    identityMode: b.identityMode,
    customerAWSAccountId: b.customerAWSAccountId,
    licenseArn: b.licenseArn,
    dimension: b.dimension,
    hourStart: b.hourStart,
    quantity: b.quantity,
    usageEvents: b.usageEvents,
    firstUsageAt: b.firstUsageAt,
    lastUsageAt: b.lastUsageAt,
    [`alloc#${TEAM_A}`]: b.allocations[TEAM_A],
    [`alloc#${TEAM_B}`]: b.allocations[TEAM_B],
    status: 'sealed',
    meteringState: `sealed#${shardOf(b.bucketKey)}`,
    sealedAt: SEALED_AT.toISOString(),
  };
}

/** An item without its work index key. */
function withoutState(item: Record<string, unknown>): Record<string, unknown> {
  const { meteringState: _state, ...rest } = item;
  return rest;
}

/** The items a BatchWriteCommand puts in the ledger table (and checks it writes nothing else). */
function putsOf(sent: Sent): Record<string, unknown>[] {
  expect(sent.name).toBe('BatchWriteCommand');
  expect(Object.keys(sent.input.RequestItems)).toEqual(['Ledger']);
  return (sent.input.RequestItems.Ledger as { PutRequest: { Item: Record<string, unknown> } }[]).map((r) => {
    expect(Object.keys(r)).toEqual(['PutRequest']);
    return r.PutRequest.Item;
  });
}

/** A ledger whose images are the given buckets, sealed by putSealedBuckets; `sent` is emptied after. */
async function sealedLedger(buckets: readonly FoldedBucket[], answer?: (sent: Sent, call: number) => unknown) {
  const stub = stubClient(answer);
  const ledger = new DynamoDbMeteringLedger(stub.client, 'Ledger', 'Journal');
  await ledger.putSealedBuckets(buckets, SEALED_AT);
  expect(stub.sent.flatMap((s) => putsOf(s))).toEqual(buckets.map(sealedItem));
  stub.sent.length = 0;
  return { ledger, ...stub };
}

const getOf = (bucketKey: string) => ({ name: 'GetCommand', input: { TableName: 'Ledger', Key: { pk: `bucket#${bucketKey}` }, ConsistentRead: true } });

describe('Metering ledger: attempts', () => {
  it('writes the attempt on buckets it sealed as whole items, in one BatchWriteItem, without reading them', async () => {
    const buckets = [folded(1), folded(2), folded(3)];
    const { ledger, sent } = await sealedLedger(buckets);

    await ledger.recordAttempt(buckets.map((b) => b.bucketKey), T1);
    expect(sent.map((s) => s.name)).toEqual(['BatchWriteCommand']);
    expect(putsOf(sent[0])).toEqual(buckets.map((b) => ({ ...sealedItem(b), attempts: 1, lastAttemptAt: T1.toISOString() })));

    await ledger.recordAttempt(buckets.map((b) => b.bucketKey), T2);
    expect(sent.map((s) => s.name)).toEqual(['BatchWriteCommand', 'BatchWriteCommand']);
    expect(putsOf(sent[1])).toEqual(buckets.map((b) => ({ ...sealedItem(b), attempts: 2, lastAttemptAt: T2.toISOString() })));
  });

  it('counts attempts on a zero bucket it created', async () => {
    const { client, sent } = stubClient();
    const ledger = new DynamoDbMeteringLedger(client, 'Ledger', 'Journal');
    const { bucketKey, customerKey, productCode, identityMode, customerAWSAccountId, licenseArn, dimension, hourStart } = folded(4);
    const zero = await ledger.addZeroBucket({ bucketKey, customerKey, productCode, identityMode, customerAWSAccountId, licenseArn, dimension, hourStart }, SEALED_AT);
    expect(zero).toMatchObject({ bucketKey, quantity: 0, status: 'sealed', attempts: 0 });
    expect(sent.map((s) => s.name)).toEqual(['PutCommand']);
    const created = sent[0].input.Item;

    await ledger.recordAttempt([bucketKey], T1);
    expect(sent.map((s) => s.name)).toEqual(['PutCommand', 'BatchWriteCommand']);
    expect(putsOf(sent[1])).toEqual([{ ...created, attempts: 1, lastAttemptAt: T1.toISOString() }]);
  });
});

describe('Metering ledger: outcomes', () => {
  it('writes metered and failed buckets out of the work index, and a held bucket still sealed in it', async () => {
    const [metered, failed, held] = [folded(1), folded(2), folded(3)];
    const { ledger, sent } = await sealedLedger([metered, failed, held]);
    await ledger.recordAttempt([metered.bucketKey, failed.bucketKey, held.bucketKey], T1);
    sent.length = 0;

    await Promise.all([
      ledger.recordMetered(metered.bucketKey, 'record-1', T2),
      ledger.recordFailed(failed.bucketKey, 'InvalidRecord', 'the record is not valid', T2),
      ledger.recordHeld(held.bucketKey, 'CustomerNotSubscribed', T2),
    ]);
    expect(sent.map((s) => s.name)).toEqual(['BatchWriteCommand']);
    const attempted = { attempts: 1, lastAttemptAt: T1.toISOString() };
    const items = putsOf(sent[0]);
    expect(items).toEqual([
      { ...withoutState(sealedItem(metered)), ...attempted, status: 'metered', outcome: 'Success', meteringRecordId: 'record-1', meteredAt: T2.toISOString() },
      { ...withoutState(sealedItem(failed)), ...attempted, status: 'failed', outcome: 'InvalidRecord', failureMessage: 'the record is not valid', failedAt: T2.toISOString() },
      { ...sealedItem(held), ...attempted, status: 'sealed', outcome: 'CustomerNotSubscribed', heldAt: T2.toISOString() },
    ]);
    // The work index key is gone, not set to something empty.
    expect(items[0]).not.toHaveProperty('meteringState');
    expect(items[1]).not.toHaveProperty('meteringState');
    expect(items[2]).toHaveProperty('meteringState', `sealed#${shardOf(held.bucketKey)}`);
  });
});

describe('Metering ledger: coalescing', () => {
  it('sends the changes of one turn together, 25 a BatchWriteItem', async () => {
    const buckets = Array.from({ length: 30 }, (_, i) => folded(i));
    const { ledger, sent } = await sealedLedger(buckets);

    await Promise.all(buckets.map((b, i) => (i % 2 === 0 ? ledger.recordAttempt([b.bucketKey], T1) : ledger.recordHeld(b.bucketKey, 'CustomerNotSubscribed', T1))));
    expect(sent.map((s) => s.name)).toEqual(['BatchWriteCommand', 'BatchWriteCommand']);
    expect(sent.map((s) => putsOf(s).length)).toEqual([25, 5]);
    expect(sent.flatMap((s) => putsOf(s))).toEqual(
      buckets.map((b, i) =>
        i % 2 === 0 ? { ...sealedItem(b), attempts: 1, lastAttemptAt: T1.toISOString() } : { ...sealedItem(b), outcome: 'CustomerNotSubscribed', heldAt: T1.toISOString() },
      ),
    );
  });

  it('writes changes of one bucket one after the other, each on the written one before; other buckets share the calls', async () => {
    const [a, b] = [folded(1), folded(2)];
    const { ledger, sent } = await sealedLedger([a, b]);

    const settled = await Promise.allSettled([
      ledger.recordAttempt([a.bucketKey, b.bucketKey], T1),
      ledger.recordMetered(a.bucketKey, 'record-1', T2),
      ledger.recordHeld(b.bucketKey, 'CustomerNotSubscribed', T1),
      ledger.recordHeld(b.bucketKey, 'Throttled', T2),
    ]);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
    expect(sent.map((s) => s.name)).toEqual(['BatchWriteCommand', 'BatchWriteCommand', 'BatchWriteCommand']);
    const attempted = (item: Record<string, unknown>) => ({ ...item, attempts: 1, lastAttemptAt: T1.toISOString() });
    expect(putsOf(sent[0])).toEqual([attempted(sealedItem(a)), attempted(sealedItem(b))]);
    expect(putsOf(sent[1])).toEqual([
      { ...withoutState(attempted(sealedItem(a))), status: 'metered', outcome: 'Success', meteringRecordId: 'record-1', meteredAt: T2.toISOString() },
      { ...attempted(sealedItem(b)), outcome: 'CustomerNotSubscribed', heldAt: T1.toISOString() },
    ]);
    expect(putsOf(sent[2])).toEqual([{ ...attempted(sealedItem(b)), outcome: 'Throttled', heldAt: T2.toISOString() }]);
  });

  it('coalesces changes asked for after a few awaits of the same turn (as a request\'s outcomes are)', async () => {
    const buckets = [folded(1), folded(2), folded(3)];
    const { ledger, sent } = await sealedLedger(buckets);
    const later = async (awaits: number, change: () => Promise<void>) => {
      for (let i = 0; i < awaits; i++) await Promise.resolve();
      await change();
    };
    await Promise.all([
      later(0, () => ledger.recordMetered(buckets[0].bucketKey, 'record-1', T2)),
      later(3, () => ledger.recordHeld(buckets[1].bucketKey, 'CustomerNotSubscribed', T2)),
      later(10, () => ledger.recordFailed(buckets[2].bucketKey, 'InvalidRecord', 'the record is not valid', T2)),
    ]);
    expect(sent.map((s) => s.name)).toEqual(['BatchWriteCommand']);
    expect(putsOf(sent[0]).map((item) => item.pk)).toEqual(buckets.map((b) => `bucket#${b.bucketKey}`));
  });

  it('sends changes of different turns in different calls', async () => {
    const a = folded(1);
    const { ledger, sent } = await sealedLedger([a]);
    const first = ledger.recordAttempt([a.bucketKey], T1);
    await new Promise((resolve) => setImmediate(resolve));
    const second = ledger.recordHeld(a.bucketKey, 'CustomerNotSubscribed', T2);
    await Promise.all([first, second]);
    expect(sent.map((s) => putsOf(s))).toEqual([
      [{ ...sealedItem(a), attempts: 1, lastAttemptAt: T1.toISOString() }],
      [{ ...sealedItem(a), attempts: 1, lastAttemptAt: T1.toISOString(), outcome: 'CustomerNotSubscribed', heldAt: T2.toISOString() }],
    ]);
  });
});

describe('Metering ledger: buckets without an image', () => {
  it('reads a bucket it has no image of with a consistent GetItem, then writes it whole', async () => {
    const a = folded(1);
    const stored = { ...sealedItem(a), attempts: 2, lastAttemptAt: T1.toISOString(), outcome: 'CustomerNotSubscribed', heldAt: T1.toISOString() };
    const { client, sent } = stubClient((s) => (s.name === 'GetCommand' ? { Item: stored } : {}));
    const ledger = new DynamoDbMeteringLedger(client, 'Ledger', 'Journal');

    await ledger.recordAttempt([a.bucketKey], T2);
    expect(sent.map((s) => s.name)).toEqual(['GetCommand', 'BatchWriteCommand']);
    expect(sent[0]).toEqual(getOf(a.bucketKey));
    expect(putsOf(sent[1])).toEqual([{ ...stored, attempts: 3, lastAttemptAt: T2.toISOString() }]);

    // Read once: the written image is the next change's.
    await ledger.recordMetered(a.bucketKey, 'record-1', T2);
    expect(sent.map((s) => s.name)).toEqual(['GetCommand', 'BatchWriteCommand', 'BatchWriteCommand']);
    expect(putsOf(sent[2])).toEqual([{ ...withoutState(stored), attempts: 3, lastAttemptAt: T2.toISOString(), status: 'metered', outcome: 'Success', meteringRecordId: 'record-1', meteredAt: T2.toISOString() }]);
  });

  it('reads a bucket once when two changes of it come together, and writes both (neither is lost)', async () => {
    const a = folded(1);
    const stored = sealedItem(a);
    const { client, sent } = stubClient((s) => (s.name === 'GetCommand' ? { Item: stored } : {}));
    const ledger = new DynamoDbMeteringLedger(client, 'Ledger', 'Journal');

    await Promise.all([ledger.recordAttempt([a.bucketKey], T1), ledger.recordHeld(a.bucketKey, 'CustomerNotSubscribed', T2)]);

    expect(sent.map((s) => s.name)).toEqual(['GetCommand', 'BatchWriteCommand', 'BatchWriteCommand']);
    expect(putsOf(sent[2])).toEqual([{ ...stored, attempts: 1, lastAttemptAt: T1.toISOString(), outcome: 'CustomerNotSubscribed', heldAt: T2.toISOString() }]);
  });

  it('rejects a change of a bucket that does not exist, and writes nothing', async () => {
    const { client, sent } = stubClient(() => ({}));
    const ledger = new DynamoDbMeteringLedger(client, 'Ledger', 'Journal');
    const missing = bucketKeyOf('license#l-9', 'requests', H10);
    await expect(ledger.recordHeld(missing, 'CustomerNotSubscribed', T1)).rejects.toThrow(`no bucket ${missing} in the Metering ledger`);
    await expect(ledger.recordAttempt([missing], T1)).rejects.toThrow(`no bucket ${missing} in the Metering ledger`);
    await new Promise((resolve) => setImmediate(resolve));
    expect(sent.map((s) => s.name)).toEqual(['GetCommand', 'GetCommand']);
  });
});

describe('Metering ledger: buckets to meter', () => {
  it('reads the buckets the work index finds back consistently, skips those no longer sealed, and keeps their images', async () => {
    const [b09, b10, b11] = [folded(1, H09), folded(2, H10), folded(3, H11)];
    // What the index holds (it lags the table): all three sealed.
    const indexed = [b11, b09, b10].map(sealedItem);
    // What the table holds: b09 held once, b10 metered meanwhile, b11 as sealed.
    const stored09 = { ...sealedItem(b09), attempts: 2, lastAttemptAt: T1.toISOString(), outcome: 'CustomerNotSubscribed', heldAt: T1.toISOString() };
    const stored10 = { ...withoutState(sealedItem(b10)), attempts: 1, status: 'metered', outcome: 'Success', meteringRecordId: 'record-0', meteredAt: T1.toISOString() };
    const stored11 = sealedItem(b11);
    const { client, sent } = stubClient((s) => {
      if (s.name === 'QueryCommand') return { Items: indexed.filter((item) => item.meteringState === s.input.ExpressionAttributeValues[':state']) };
      if (s.name === 'BatchGetCommand') return { Responses: { Ledger: [stored11, stored10, stored09] } };
      return {};
    });
    const ledger = new DynamoDbMeteringLedger(client, 'Ledger', 'Journal');

    const buckets = await ledger.bucketsToMeter(10);
    expect(buckets).toEqual([
      {
        bucketKey: b09.bucketKey,
        customerKey: b09.customerKey,
        productCode: 'prod-1',
        identityMode: 'license',
        customerAWSAccountId: '123456789012',
        licenseArn: b09.licenseArn,
        dimension: 'requests',
        hourStart: H09,
        quantity: b09.quantity,
        allocations: b09.allocations,
        status: 'sealed',
        attempts: 2,
        sealedAt: SEALED_AT.toISOString(),
        lastOutcome: 'CustomerNotSubscribed',
      },
      expect.objectContaining({ bucketKey: b11.bucketKey, hourStart: H11, status: 'sealed', attempts: 0, quantity: b11.quantity }),
    ]);

    const shards = Array.from({ length: 8 }, (_, shard) => `sealed#${shard}`);
    expect(sent.map((s) => s.name)).toEqual([...shards.map(() => 'QueryCommand'), 'BatchGetCommand']);
    expect(sent.slice(0, 8).map((s) => s.input)).toEqual(
      shards.map((state) => ({
        TableName: 'Ledger',
        IndexName: 'byMeteringState',
        KeyConditionExpression: '#state = :state',
        ExpressionAttributeNames: { '#state': 'meteringState' },
        ExpressionAttributeValues: { ':state': state },
      })),
    );
    expect(sent[8].input).toEqual({ RequestItems: { Ledger: { Keys: [b09, b10, b11].map((b) => ({ pk: `bucket#${b.bucketKey}` })), ConsistentRead: true } } });

    // At most `limit` buckets, the oldest still sealed: b10 was metered meanwhile, so b11 is read too.
    sent.length = 0;
    const oldest = await ledger.bucketsToMeter(2);
    expect(sent.slice(8).map((s) => s.input.RequestItems.Ledger.Keys)).toEqual([
      [b09, b10].map((b) => ({ pk: `bucket#${b.bucketKey}` })),
      [{ pk: `bucket#${b11.bucketKey}` }],
    ]);
    expect(oldest.map((b) => b.bucketKey)).toEqual([b09.bucketKey, b11.bucketKey]);

    // Nothing more is read once the limit is reached.
    sent.length = 0;
    expect((await ledger.bucketsToMeter(1)).map((b) => b.bucketKey)).toEqual([b09.bucketKey]);
    expect(sent.slice(8).map((s) => s.input.RequestItems.Ledger.Keys)).toEqual([[{ pk: `bucket#${b09.bucketKey}` }]]);

    // The images read back are what the attempt is written on: no GetItem.
    sent.length = 0;
    await ledger.recordAttempt([b09.bucketKey, b11.bucketKey], T2);
    expect(sent.map((s) => s.name)).toEqual(['BatchWriteCommand']);
    expect(putsOf(sent[0])).toEqual([
      { ...stored09, attempts: 3, lastAttemptAt: T2.toISOString() },
      { ...stored11, attempts: 1, lastAttemptAt: T2.toISOString() },
    ]);
  });
});

describe('Metering ledger: a new run', () => {
  it('forgets the images when sealing hours (a new run): the next change reads the bucket again', async () => {
    const a = folded(1);
    const stored = { ...sealedItem(a), attempts: 4, lastAttemptAt: T1.toISOString(), outcome: 'CustomerNotSubscribed', heldAt: T1.toISOString() };
    const { ledger, sent } = await sealedLedger([a], (s) => {
      // The journal: folded through 09:00, so the fold seals and reads 10:00, which has no entries.
      if (s.name === 'GetCommand' && s.input.TableName === 'Journal') return { Item: { pk: 'folded', sk: 'through', hourStart: H09 } };
      if (s.name === 'QueryCommand') return { Items: [] };
      if (s.name === 'GetCommand') return { Item: stored };
      return {};
    });
    await ledger.recordAttempt([a.bucketKey], T1);
    expect(sent.map((s) => s.name)).toEqual(['BatchWriteCommand']);
    sent.length = 0;

    const report = await ledger.sealHoursEndedBy(new Date('2026-11-02T11:10:00.000Z'), new Date('2026-11-02T11:25:00.000Z'));
    expect(report).toEqual({ buckets: [], rejected: [], duplicates: 0 });
    // The fold of 10:00 went through the journal only: its early meterings, then its entries.
    const sealCalls = Math.ceil(UsageJournalSchema.sealShards / 25);
    expect(sent.map((s) => s.name)).toEqual(['GetCommand', ...Array(sealCalls).fill('BatchWriteCommand'), ...Array(1 + UsageJournalSchema.shards).fill('QueryCommand'), 'PutCommand']);
    expect(sent.every((s) => (s.input.TableName ?? Object.keys(s.input.RequestItems)[0]) === 'Journal')).toBe(true);
    expect(sent[sent.length - 1].input.Item).toMatchObject({ pk: 'folded', sk: 'through', hourStart: H10 });
    sent.length = 0;

    await ledger.recordAttempt([a.bucketKey], T2);
    expect(sent.map((s) => s.name)).toEqual(['GetCommand', 'BatchWriteCommand']);
    expect(sent[0]).toEqual(getOf(a.bucketKey));
    expect(putsOf(sent[1])).toEqual([{ ...stored, attempts: 5, lastAttemptAt: T2.toISOString() }]);
  });
});

describe('Metering ledger: a failed write', () => {
  const refused = () => Object.assign(new Error('Throughput exceeds the provisioned throughput'), { name: 'ProvisionedThroughputExceededException' });

  it('rejects every change waiting on a BatchWriteItem that throws, and reads those buckets again before changing them', async () => {
    const buckets = [folded(1), folded(2), folded(3)];
    const stored = new Map(buckets.map((b) => [`bucket#${b.bucketKey}`, { ...sealedItem(b), attempts: 1, lastAttemptAt: T1.toISOString() }]));
    let failing = false;
    const { ledger, sent } = await sealedLedger(buckets, (s) => {
      if (s.name === 'BatchWriteCommand' && failing) return refused();
      if (s.name === 'GetCommand') return { Item: stored.get(s.input.Key.pk) };
      return {};
    });
    await ledger.recordAttempt(buckets.map((b) => b.bucketKey), T1);
    sent.length = 0;

    failing = true;
    const settled = await Promise.allSettled([
      ledger.recordMetered(buckets[0].bucketKey, 'record-1', T2),
      ledger.recordFailed(buckets[1].bucketKey, 'InvalidRecord', 'the record is not valid', T2),
      ledger.recordHeld(buckets[2].bucketKey, 'CustomerNotSubscribed', T2),
      ledger.recordHeld(buckets[2].bucketKey, 'Throttled', T2),
    ]);
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected']);
    for (const s of settled) expect((s as PromiseRejectedResult).reason).toMatchObject({ name: 'ProvisionedThroughputExceededException' });
    // The second change of bucket 3 waits for the first, then reads the bucket again (its image was
    // refused) instead of building on what was never written.
    expect(sent.map((s) => s.name)).toEqual(['BatchWriteCommand', 'GetCommand', 'BatchWriteCommand']);
    expect(putsOf(sent[0])).toHaveLength(3);
    expect(sent[1]).toEqual(getOf(buckets[2].bucketKey));
    expect(putsOf(sent[2])).toEqual([{ ...sealedItem(buckets[2]), attempts: 1, lastAttemptAt: T1.toISOString(), outcome: 'Throttled', heldAt: T2.toISOString() }]);
    sent.length = 0;

    // What was not written is read again: the change applies to the table's item, not the refused image.
    failing = false;
    await ledger.recordAttempt(buckets.map((b) => b.bucketKey), T2);
    expect(sent.map((s) => s.name)).toEqual(['GetCommand', 'GetCommand', 'GetCommand', 'BatchWriteCommand']);
    expect(sent.slice(0, 3)).toEqual(buckets.map((b) => getOf(b.bucketKey)));
    expect(putsOf(sent[3])).toEqual(buckets.map((b) => ({ ...sealedItem(b), attempts: 2, lastAttemptAt: T2.toISOString() })));
  });

  it('rejects the whole batch when one of its calls throws, and forgets all its images', async () => {
    const buckets = Array.from({ length: 30 }, (_, i) => folded(i));
    const stored = new Map(buckets.map((b) => [`bucket#${b.bucketKey}`, sealedItem(b)]));
    let failing = false;
    const { ledger, sent } = await sealedLedger(buckets, (s) => {
      // The second call of the batch (its last 5 items) is refused; the first goes through.
      if (s.name === 'BatchWriteCommand' && failing && s.input.RequestItems.Ledger.length === 5) return refused();
      if (s.name === 'GetCommand') return { Item: stored.get(s.input.Key.pk) };
      return {};
    });
    failing = true;
    const settled = await Promise.allSettled(buckets.map((b) => ledger.recordAttempt([b.bucketKey], T1)));
    expect(settled.filter((s) => s.status === 'rejected')).toHaveLength(30);
    expect(sent.map((s) => putsOf(s).length)).toEqual([25, 5]);
    sent.length = 0;

    failing = false;
    await ledger.recordAttempt([buckets[0].bucketKey, buckets[29].bucketKey], T2);
    expect(sent.map((s) => s.name)).toEqual(['GetCommand', 'GetCommand', 'BatchWriteCommand']);
    expect(putsOf(sent[2])).toEqual([buckets[0], buckets[29]].map((b) => ({ ...sealedItem(b), attempts: 1, lastAttemptAt: T2.toISOString() })));
  });
});

// The stub reads commands by class name: make sure those are the classes the adapter sends.
test('the stub sees the command classes by name', () => {
  expect(
    [new GetCommand({ TableName: 't', Key: {} }), new PutCommand({ TableName: 't', Item: {} }), new QueryCommand({ TableName: 't' }), new BatchWriteCommand({ RequestItems: {} }), new BatchGetCommand({ RequestItems: {} })].map(
      (c) => c.constructor.name,
    ),
  ).toEqual(['GetCommand', 'PutCommand', 'QueryCommand', 'BatchWriteCommand', 'BatchGetCommand']);
});
