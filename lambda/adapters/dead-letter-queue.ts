import { createHash } from 'node:crypto';
import { SQSClient } from '@aws-sdk/client-sqs';
import { OutgoingMessage, SQS_MAX_MESSAGE_BYTES, sendFailureText, sendMessagesWithRetries } from './send-message-batches';
import { sqsMessageJson } from './sqs-message-json';

/** What one call may carry: 1 MiB less a margin for how SQS counts. */
const MAX_CALL_BYTES = SQS_MAX_MESSAGE_BYTES - 8 * 1024;
/**
 * The largest letter body (JSON, UTF-8 bytes) sent as it is; room is left for its reason attribute.
 * Callers that echo what they received keep their letters under it (ingest-batch.ts); a larger one
 * is cut short here (see messageOf).
 */
export const MAX_LETTER_BYTES = SQS_MAX_MESSAGE_BYTES - 16 * 1024;
const MAX_ATTEMPTS = 4;

export interface DeadLetter {
  readonly reason: string;
  readonly body: unknown;
}

/**
 * Sends dead letters (a JSON body and a `reason` attribute each) to an SQS queue: up to ten, and
 * under 1 MiB, per call; resends only what SQS reports as failed (or a call that failed as a whole),
 * with a short backoff, never a letter already accepted. Throws if some still fail (or were refused
 * as the sender's fault): the caller must not drop them.
 */
export class DeadLetterQueue {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async send(letters: readonly DeadLetter[]): Promise<void> {
    const unsent = await sendMessagesWithRetries(this.client, this.queueUrl, letters.map(messageOf), { maxCallBytes: MAX_CALL_BYTES, maxAttempts: MAX_ATTEMPTS });
    if (unsent.size > 0) {
      const [first] = unsent.values();
      throw new Error(`${unsent.size} of ${letters.length} dead letters could not be sent to ${this.queueUrl} (${sendFailureText(first)})`);
    }
  }
}

function messageOf(letter: DeadLetter): OutgoingMessage {
  let body = sqsMessageJson(letter.body);
  let bodyBytes = Buffer.byteLength(body);
  if (bodyBytes > MAX_LETTER_BYTES) {
    // A last resort, so a letter is never refused for its size (which no retry would mend): the
    // start of its JSON, with its size and hash.
    const cut = { reason: letter.reason, letterTruncated: true, letterBytes: bodyBytes, letterSha256: sha256Hex(body), letter: '' };
    body = JSON.stringify({ ...cut, letter: jsonStringPrefix(body, MAX_LETTER_BYTES - Buffer.byteLength(JSON.stringify(cut))) });
    bodyBytes = Buffer.byteLength(body);
  }
  const attributeBytes = Buffer.byteLength('reason') + Buffer.byteLength('String') + Buffer.byteLength(letter.reason);
  return {
    entry: { MessageBody: body, MessageAttributes: { reason: { DataType: 'String', StringValue: letter.reason } } },
    bytes: bodyBytes + attributeBytes,
  };
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * The longest start of `text` whose JSON string (quotes and escapes included) takes at most
 * `maxBytes` UTF-8 bytes beyond the two quotes. Escaping can double a text (quotes, backslashes) or
 * more (control characters), so it is measured, not guessed. (A surrogate pair is never split: half
 * of one is escaped as six bytes, more than the whole pair's four.)
 */
export function jsonStringPrefix(text: string, maxBytes: number): string {
  const fits = (length: number) => Buffer.byteLength(JSON.stringify(text.slice(0, length))) - 2 <= maxBytes;
  if (fits(text.length)) return text;
  let low = 0;
  let high = text.length;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (fits(mid)) low = mid;
    else high = mid - 1;
  }
  return text.slice(0, low);
}
