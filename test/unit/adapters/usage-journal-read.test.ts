import { DynamoDbUsageJournal } from '../../../lambda/adapters/usage-journal';
import { encodeUsage } from '../../../lambda/adapters/journal-usage-codec';
import { UsageJournalSchema } from '../../../lambda/core/usage-journal-schema';
import { seededRandom } from '../lifecycle/event-history';
import { stubClient } from './stub-client';

/**
 * Reading an hour's entries: the shards' queries are merged into one entry-id order, a page at a
 * time per shard. DynamoDB Local returns one page for a small shard; this stub pages each shard in
 * pieces of random size (empty pages included, as DynamoDB may return) to test the merge.
 */

const HOUR = '2026-11-02T10:00:00.000Z';
const USAGE = encodeUsage({
  customers: [{ customerKey: 'license#l-1', productCode: 'p', identityMode: 'license', customerAWSAccountId: '123456789012' }],
  events: [{ c: 0, d: 'requests', q: 1, p: 0 }],
});

/** Items of each shard in sort key order, some of them late-entry placeholders (no usage). */
function shardsOf(random: () => number, count: number): Record<string, unknown>[][] {
  const shards: Record<string, unknown>[][] = Array.from({ length: UsageJournalSchema.shards }, () => []);
  for (let i = 0; i < count; i++) {
    const messageId = `m-${String(Math.floor(random() * 1e9)).padStart(9, '0')}-${i}`;
    const placeholder = random() < 0.1;
    shards[Math.floor(random() * shards.length)].push({
      pk: 'x',
      sk: messageId,
      messageId,
      hourStart: HOUR,
      writtenAt: HOUR,
      ...(placeholder ? {} : { usage: USAGE }),
    });
  }
  for (const shard of shards) shard.sort((a, b) => (String(a.sk) < String(b.sk) ? -1 : 1));
  return shards;
}

/** A client that answers each shard's query in pages of 0 to 7 items. */
function pagingClient(shards: Record<string, unknown>[][], random: () => number) {
  return stubClient((sent) => {
    const partition = String(sent.input.ExpressionAttributeValues[':pk']);
    const shard = Number(partition.split('#').pop());
    const from = sent.input.ExclusiveStartKey ? Number(sent.input.ExclusiveStartKey.index) : 0;
    const to = Math.min(shards[shard].length, from + Math.floor(random() * 8));
    return {
      Items: shards[shard].slice(from, to),
      ...(to < shards[shard].length || random() < 0.3 ? { LastEvaluatedKey: { index: to } } : {}),
    };
  });
}

describe('Usage journal: reading an hour', () => {
  it.each([0, 1, 7, 300])('gives all %i entries (placeholders left out) in entry id order, across pages and shards', async (count) => {
    const random = seededRandom(count + 1);
    const shards = shardsOf(random, count);
    const { client, sent } = pagingClient(shards, random);
    const journal = new DynamoDbUsageJournal(client, 'Journal');

    const read: string[] = [];
    for await (const entry of journal.readEntries(HOUR)) read.push(entry.messageId);

    const expected = shards.flat().filter((item) => item.usage !== undefined).map((item) => String(item.sk)).sort();
    expect(read).toEqual(expected);
    expect(sent.every((s) => s.name === 'QueryCommand' && s.input.ConsistentRead === true)).toBe(true);
    expect(new Set(sent.map((s) => s.input.ExpressionAttributeValues[':pk']))).toEqual(
      new Set(Array.from({ length: UsageJournalSchema.shards }, (_, shard) => `entry#${HOUR}#${shard}`)),
    );
  });

  it('reads a shard a page ahead of the entries handed out, not the whole hour', async () => {
    // 200 entries in shard 0, pages of 5; the other shards are empty.
    const items = shardsOf(seededRandom(5), 200).flat().map((item) => ({ ...item, usage: USAGE }) as Record<string, unknown>);
    items.sort((a, b) => (String(a.sk) < String(b.sk) ? -1 : 1));
    const { client, sent } = stubClient((q) => {
      if (!String(q.input.ExpressionAttributeValues[':pk']).endsWith('#0')) return { Items: [] };
      const from = q.input.ExclusiveStartKey ? Number(q.input.ExclusiveStartKey.index) : 0;
      return { Items: items.slice(from, from + 5), ...(from + 5 < items.length ? { LastEvaluatedKey: { index: from + 5 } } : {}) };
    });
    const shard0Queries = () => sent.filter((q) => String(q.input.ExpressionAttributeValues[':pk']).endsWith('#0')).length;
    const read: string[] = [];
    for await (const entry of new DynamoDbUsageJournal(client, 'Journal').readEntries(HOUR)) {
      read.push(entry.messageId);
      // Entry 12 is on the third page (items 10-14); the fourth is asked for, no more.
      if (read.length === 12) expect(shard0Queries()).toBe(4);
    }
    expect(read).toEqual(items.map((item) => item.messageId));
    expect(shard0Queries()).toBe(40);
  });

  it('passes a failed query on to the reader', async () => {
    const { client } = stubClient((sent) => (String(sent.input.ExpressionAttributeValues[':pk']).endsWith('#3') ? new Error('throttled') : { Items: [] }));
    const journal = new DynamoDbUsageJournal(client, 'Journal');
    await expect(journal.entries(HOUR)).rejects.toThrow('throttled');
  });
});
