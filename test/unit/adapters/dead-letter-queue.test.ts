import { createHash } from 'node:crypto';
import { SendMessageBatchCommandInput } from '@aws-sdk/client-sqs';
import { DeadLetterQueue, jsonStringPrefix, MAX_LETTER_BYTES } from '../../../lambda/adapters/dead-letter-queue';
import { acceptedAll, BatchAnswer, spyingClient } from '../../support/sqs-batch-spy';

/**
 * The dead-letter adapter's error branches, against a client that answers as told: calls are packed
 * by bytes as well as count, only what failed is sent again (after a pause), and a letter too big
 * for SQS is cut short rather than refused on every delivery.
 */

const QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/111122223333/usage-dead-letters';
const SQS_MAX_MESSAGE_BYTES = 1_048_576;

const ok = acceptedAll;
const allSucceed: BatchAnswer = async (input) => ok(input.Entries);

/** What SQS counts of a message: body and attributes. */
const sizeOf = (entry: NonNullable<SendMessageBatchCommandInput['Entries']>[number]) =>
  Buffer.byteLength(entry.MessageBody!) +
  Object.entries(entry.MessageAttributes ?? {}).reduce((n, [name, a]) => n + Buffer.byteLength(name) + Buffer.byteLength(a.DataType!) + Buffer.byteLength(a.StringValue ?? ''), 0);

const letter = (n: number, padding = 0) => ({ reason: 'invalid-event', body: { n, padding: 'x'.repeat(padding) } });
/** The `n` of each entry of a call. */
const numbersIn = (input: SendMessageBatchCommandInput) => input.Entries!.map((e) => JSON.parse(e.MessageBody!).n as number);

afterEach(() => jest.restoreAllMocks());

describe('DeadLetterQueue.send packs calls', () => {
  it('at most ten letters a call', async () => {
    const spy = spyingClient(allSucceed);
    await new DeadLetterQueue(spy.client, QUEUE_URL).send(Array.from({ length: 23 }, (_, i) => letter(i)));
    expect(spy.inputs.map((i) => i.Entries!.length)).toEqual([10, 10, 3]);
    expect(spy.inputs.flatMap(numbersIn)).toEqual(Array.from({ length: 23 }, (_, i) => i));
    expect(spy.inputs[0].Entries![0].MessageAttributes).toEqual({ reason: { DataType: 'String', StringValue: 'invalid-event' } });
  });

  it('and under 1 MiB of messages a call (SQS refuses a longer call as a whole)', async () => {
    const spy = spyingClient(allSucceed);
    // Six letters of 300 KB: ten to a call would be 1.8 MB.
    await new DeadLetterQueue(spy.client, QUEUE_URL).send(Array.from({ length: 6 }, (_, i) => letter(i, 300_000)));
    expect(spy.inputs.map((i) => i.Entries!.length)).toEqual([3, 3]);
    for (const input of spy.inputs) expect(input.Entries!.reduce((n, e) => n + sizeOf(e), 0)).toBeLessThanOrEqual(SQS_MAX_MESSAGE_BYTES);
  });
});

describe('DeadLetterQueue.send resends only what failed', () => {
  it('an entry SQS reports failed is sent again alone; the letters already sent are not', async () => {
    const spy = spyingClient(async (input, call) => {
      if (call !== 2) return ok(input.Entries);
      const [first, ...rest] = input.Entries!;
      return { ...ok(rest), Failed: [{ Id: first.Id!, Code: 'InternalError', SenderFault: false, Message: 'try again' }] };
    });
    await new DeadLetterQueue(spy.client, QUEUE_URL).send(Array.from({ length: 15 }, (_, i) => letter(i)));
    expect(spy.inputs.map(numbersIn)).toEqual([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [10, 11, 12, 13, 14], [10]]);
    // Resent unchanged.
    expect(spy.inputs[2].Entries![0]).toEqual(spy.inputs[1].Entries![0]);
  });

  it('a call that fails as a whole is sent again; the calls that went through before it are not', async () => {
    const spy = spyingClient(async (input, call) => {
      if (call === 2) throw Object.assign(new Error('socket hang up'), { name: 'TimeoutError' });
      return ok(input.Entries);
    });
    await new DeadLetterQueue(spy.client, QUEUE_URL).send(Array.from({ length: 25 }, (_, i) => letter(i)));
    const sent = spy.inputs.map(numbersIn);
    expect(sent.map((n) => n[0])).toEqual([0, 10, 20, 10]);
    expect(sent[3]).toEqual(sent[1]);
  });

  it('pauses before resending, and throws (the caller must keep the letters) when they still fail', async () => {
    jest.spyOn(Math, 'random').mockReturnValue(0.99);
    const spy = spyingClient(async () => {
      throw Object.assign(new Error('Service Unavailable'), { name: 'ServiceUnavailable' });
    });
    const started = Date.now();
    await expect(new DeadLetterQueue(spy.client, QUEUE_URL).send([letter(1), letter(2)])).rejects.toThrow(
      /2 of 2 dead letters could not be sent to .*usage-dead-letters \(ServiceUnavailable: Service Unavailable\)/,
    );
    expect(spy.inputs).toHaveLength(4);
    // Backoff with full jitter (here at its ceiling): 99 + 198 + 396 ms.
    expect(Date.now() - started).toBeGreaterThanOrEqual(650);
  });

  it('does not resend an entry refused as the sender\'s fault, but sends the others and then throws', async () => {
    const spy = spyingClient(async (input) => {
      const bad = input.Entries!.filter((e) => JSON.parse(e.MessageBody!).n === 1);
      const good = input.Entries!.filter((e) => !bad.includes(e));
      return { ...ok(good), Failed: bad.map((e) => ({ Id: e.Id!, Code: 'InvalidMessageContents', SenderFault: true, Message: 'bad characters' })) };
    });
    await expect(new DeadLetterQueue(spy.client, QUEUE_URL).send([letter(0), letter(1), letter(2)])).rejects.toThrow(
      /1 of 3 dead letters .*InvalidMessageContents \(sender fault\): bad characters/,
    );
    expect(spy.inputs.map(numbersIn)).toEqual([[0, 1, 2]]);
  });

  it('a call refused as too long is not sent again as it was: its letters go one to a call', async () => {
    const spy = spyingClient(async (input) => {
      if (input.Entries!.length > 1) throw Object.assign(new Error('Batch requests cannot be longer than 1048576 bytes.'), { name: 'BatchRequestTooLong' });
      return ok(input.Entries);
    });
    await new DeadLetterQueue(spy.client, QUEUE_URL).send([letter(0), letter(1), letter(2)]);
    expect(spy.inputs.map(numbersIn)).toEqual([[0, 1, 2], [0], [1], [2]]);
  });

  it('a letter alone refused as too long is not sent again', async () => {
    const spy = spyingClient(async () => {
      throw Object.assign(new Error('Batch requests cannot be longer than 1048576 bytes.'), { name: 'BatchRequestTooLong' });
    });
    await expect(new DeadLetterQueue(spy.client, QUEUE_URL).send([letter(0)])).rejects.toThrow(/BatchRequestTooLong/);
    expect(spy.inputs).toHaveLength(1);
  });
});

describe('a letter too big for SQS', () => {
  it('is sent cut short, with its reason, size and SHA-256, under the limit', async () => {
    const spy = spyingClient(allSucceed);
    // Quotes double in JSON: the letter is about 1.4 MB.
    const big = { reason: 'too-many-tag-sets', body: { reason: 'too-many-tag-sets', record: '"a",'.repeat(280_000) } };
    const json = JSON.stringify(big.body);
    await new DeadLetterQueue(spy.client, QUEUE_URL).send([big, letter(1)]);

    const entries = spy.inputs.flatMap((i) => i.Entries!);
    expect(entries).toHaveLength(2);
    const sent = JSON.parse(entries[0].MessageBody!);
    expect(sent).toEqual({
      reason: 'too-many-tag-sets',
      letterTruncated: true,
      letterBytes: Buffer.byteLength(json),
      letterSha256: createHash('sha256').update(json).digest('hex'),
      letter: expect.any(String),
    });
    expect(json.startsWith(sent.letter)).toBe(true);
    expect(sent.letter.length).toBeGreaterThan(400_000);
    expect(sizeOf(entries[0])).toBeLessThanOrEqual(MAX_LETTER_BYTES + 100);
    expect(entries[0].MessageAttributes!.reason.StringValue).toBe('too-many-tag-sets');
    for (const input of spy.inputs) expect(input.Entries!.reduce((n, e) => n + sizeOf(e), 0)).toBeLessThanOrEqual(SQS_MAX_MESSAGE_BYTES);
  });
});

describe('jsonStringPrefix', () => {
  it('keeps a text that fits, and otherwise the longest start whose JSON fits', () => {
    expect(jsonStringPrefix('hello', 5)).toBe('hello');
    expect(jsonStringPrefix('hello', 3)).toBe('hel');
    // `"` is two bytes in JSON, a control character six, `é` two.
    expect(jsonStringPrefix('a"b', 3)).toBe('a"');
    expect(jsonStringPrefix('a\u0001b', 6)).toBe('a');
    expect(jsonStringPrefix('éé', 3)).toBe('é');
  });

  it('never splits a surrogate pair', () => {
    // 😀 is a surrogate pair, 4 bytes in UTF-8; half of it would be escaped as \ud83d (6 bytes).
    expect(jsonStringPrefix('a😀b', 4)).toBe('a');
    const text = 'a😀'.repeat(1000);
    for (let max = 0; max < 600; max++) {
      const start = jsonStringPrefix(text, max);
      expect(Buffer.byteLength(JSON.stringify(start)) - 2).toBeLessThanOrEqual(max);
      expect(start.length % 3).not.toBe(2);
      // Close to the longest start that fits (a half pair can end the search a character early).
      expect(max - (Buffer.byteLength(JSON.stringify(start)) - 2)).toBeLessThanOrEqual(6);
    }
  });
});
