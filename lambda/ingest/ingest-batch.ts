import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { EventResult, ingestMessages, IngestPorts, MessageResult, QueueMessage } from '../core/usage/ingest';
import { journalMessageIdOf, ORIGINAL_MESSAGE_ID_ATTRIBUTE } from '../core/usage/dead-letter-redrive';
import { Rejection } from '../core/usage/usage-event';
import { DeadLetter, DeadLetterQueue, jsonStringPrefix, MAX_LETTER_BYTES, sha256Hex } from '../adapters/dead-letter-queue';

/**
 * The usage queue's consumer, shared by the Lambda handler and the local poller: each message's
 * events are ingested; invalid ones go to the usage dead-letter queue with their reason (never
 * retried); an infrastructure failure marks the messages failed, so SQS redelivers them and the
 * journal entries already written keep what was counted from counting twice.
 */

export interface IngestLog {
  info(message: string, attributes: Record<string, unknown>): void;
  warn(message: string, attributes: Record<string, unknown>): void;
}

export interface IngestDependencies {
  readonly ports: IngestPorts;
  readonly deadLetters: Pick<DeadLetterQueue, 'send'>;
  readonly log: IngestLog;
}

export function createIngestHandler(deps: IngestDependencies): (event: SQSEvent) => Promise<SQSBatchResponse> {
  const recordHandler = async (record: SQSRecord, results: Map<string, Ingested> | Error): Promise<void> => {
    // The batch's journal write failed: every message is retried (what was written counts once).
    if (results instanceof Error) throw results;
    const { messageId, result } = results.get(record.messageId)!;
    if ('rejectedMessage' in result) {
      await deps.deadLetters.send([messageLetter(record, messageId, result.rejectedMessage)]);
      deps.log.warn('usage message rejected', { messageId, reason: result.rejectedMessage.reason });
      return;
    }
    const rejected = result.events.filter((e): e is Extract<EventResult, { status: 'rejected' }> => e.status === 'rejected');
    if (rejected.length > 0) {
      await deps.deadLetters.send(rejected.map((r) => eventLetter(record, messageId, r)));
      deps.log.warn('usage events rejected', {
        messageId,
        reasons: rejected.map((r) => r.rejection.reason),
      });
    }
    deps.log.info('usage message ingested', {
      messageId,
      ...(messageId === record.messageId ? {} : { redrivenAs: record.messageId }),
      counted: result.events.filter((e) => e.status === 'counted').length,
      duplicates: result.events.filter((e) => e.status === 'duplicate').length,
      rolledOver: result.events.filter((e) => e.status === 'counted' && e.rolledOver).length,
      rejected: rejected.length,
    });
  };
  return async (event) => {
    // A message sent again from the dead-letter queue is one more delivery of its original.
    const identities = event.Records.map((r) => journalMessageIdOf(r.messageId, r.messageAttributes?.[ORIGINAL_MESSAGE_ID_ATTRIBUTE]?.stringValue));
    const queued: QueueMessage[] = [];
    event.Records.forEach((r, i) => {
      const identity = identities[i];
      if ('reason' in identity) return;
      const receiveCount = Number(r.attributes?.ApproximateReceiveCount) || 1;
      queued.push({ messageId: identity.messageId, body: r.body, receiveCount: identity.redriven ? Math.max(2, receiveCount) : receiveCount });
    });
    // The whole batch is ingested together (one customer lookup, few journal transactions); each
    // message's result is then handled on its own.
    const results = await ingestMessages(deps.ports, queued).then(
      (list) => {
        const byRecord = new Map<string, Ingested>();
        let next = 0;
        event.Records.forEach((r, i) => {
          const identity = identities[i];
          byRecord.set(r.messageId, 'reason' in identity ? { messageId: r.messageId, result: { rejectedMessage: identity } } : { messageId: identity.messageId, result: list[next++] });
        });
        return byRecord;
      },
      (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
    );
    return processPartialResponse(event, (record: SQSRecord) => recordHandler(record, results), new BatchProcessor(EventType.SQS), {
      throwOnFullBatchFailure: false,
    });
  };
}

/** A message's result, and the message id its events were journalled under (letters name it). */
interface Ingested {
  readonly messageId: string;
  readonly result: MessageResult;
}

/**
 * Dead letters echo what was received (the message body, or the event), but must fit in an SQS
 * message: JSON escaping alone can make a letter echoing a 1 MiB body twice its size. A letter that
 * would not fit echoes the start of it, marked `bodyTruncated` (or `eventTruncated`), with the
 * original's size and the SHA-256 of the message body so the seller can find what they sent.
 */
function messageLetter(record: SQSRecord, messageId: string, rejection: Rejection): DeadLetter {
  const letter = { reason: rejection.reason, message: rejection.message, messageId, body: record.body };
  if (letterBytes(letter) <= MAX_LETTER_BYTES) return { reason: rejection.reason, body: letter };
  return {
    reason: rejection.reason,
    body: cutShort({ reason: rejection.reason, message: shortMessage(rejection.message), messageId }, 'body', record.body, {
      bodyTruncated: true,
      bodyBytes: Buffer.byteLength(record.body),
      bodySha256: sha256Hex(record.body),
    }),
  };
}

function eventLetter(record: SQSRecord, messageId: string, rejected: Extract<EventResult, { status: 'rejected' }>): DeadLetter {
  const { rejection, position, event } = rejected;
  const letter = { reason: rejection.reason, message: rejection.message, messageId, position, event };
  if (letterBytes(letter) <= MAX_LETTER_BYTES) return { reason: rejection.reason, body: letter };
  const eventJson = JSON.stringify(event) ?? 'null';
  return {
    reason: rejection.reason,
    body: cutShort({ reason: rejection.reason, message: shortMessage(rejection.message), messageId, position }, 'event', eventJson, {
      eventTruncated: true,
      eventBytes: Buffer.byteLength(eventJson),
      bodySha256: sha256Hex(record.body),
    }),
  };
}

const letterBytes = (letter: unknown): number => Buffer.byteLength(JSON.stringify(letter));

/** Rejection messages are short; a bound keeps the room for the echo known. */
const shortMessage = (message: string): string => jsonStringPrefix(message, 4096);

/** The letter `head + {[field]: start of text} + tail`, as much of `text` as fits in MAX_LETTER_BYTES. */
function cutShort(head: Record<string, unknown>, field: string, text: string, tail: Record<string, unknown>): Record<string, unknown> {
  const room = MAX_LETTER_BYTES - letterBytes({ ...head, [field]: '', ...tail });
  return { ...head, [field]: jsonStringPrefix(text, room), ...tail };
}
