import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { EventResult, ingestMessages, IngestPorts, MessageResult } from '../core/usage/ingest';
import { DeadLetterQueue } from '../adapters/dead-letter-queue';

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
  const recordHandler = async (record: SQSRecord, results: Map<string, MessageResult> | Error): Promise<void> => {
    // The batch's journal write failed: every message is retried (what was written counts once).
    if (results instanceof Error) throw results;
    const result = results.get(record.messageId)!;
    if ('rejectedMessage' in result) {
      await deps.deadLetters.send([
        {
          reason: result.rejectedMessage.reason,
          body: { reason: result.rejectedMessage.reason, message: result.rejectedMessage.message, messageId: record.messageId, body: record.body },
        },
      ]);
      deps.log.warn('usage message rejected', { messageId: record.messageId, reason: result.rejectedMessage.reason });
      return;
    }
    const rejected = result.events.filter((e): e is Extract<EventResult, { status: 'rejected' }> => e.status === 'rejected');
    if (rejected.length > 0) {
      await deps.deadLetters.send(
        rejected.map((r) => ({
          reason: r.rejection.reason,
          body: { reason: r.rejection.reason, message: r.rejection.message, messageId: record.messageId, position: r.position, event: r.event },
        })),
      );
      deps.log.warn('usage events rejected', {
        messageId: record.messageId,
        reasons: rejected.map((r) => r.rejection.reason),
      });
    }
    deps.log.info('usage message ingested', {
      messageId: record.messageId,
      counted: result.events.filter((e) => e.status === 'counted').length,
      duplicates: result.events.filter((e) => e.status === 'duplicate').length,
      rolledOver: result.events.filter((e) => e.status === 'counted' && e.rolledOver).length,
      rejected: rejected.length,
    });
  };
  return async (event) => {
    // The whole batch is ingested together (one customer lookup, few journal transactions); each
    // message's result is then handled on its own.
    const results = await ingestMessages(
      deps.ports,
      event.Records.map((r) => ({ messageId: r.messageId, body: r.body })),
    ).then(
      (list) => new Map(list.map((result, i) => [event.Records[i].messageId, result])),
      (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
    );
    return processPartialResponse(event, (record: SQSRecord) => recordHandler(record, results), new BatchProcessor(EventType.SQS), {
      throwOnFullBatchFailure: false,
    });
  };
}
