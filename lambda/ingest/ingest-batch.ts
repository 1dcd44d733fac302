import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { EventResult, ingestMessage, IngestPorts } from '../core/usage/ingest';
import { DeadLetterQueue } from '../adapters/dead-letter-queue';

/**
 * The usage queue's consumer, shared by the Lambda handler and the local poller: each message's
 * events are ingested; invalid ones go to the usage dead-letter queue with their reason (never
 * retried); an infrastructure failure marks the message failed, so SQS redelivers it and the
 * de-duplication markers keep what was already counted from counting twice.
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
  const recordHandler = async (record: SQSRecord): Promise<void> => {
    const result = await ingestMessage(deps.ports, { messageId: record.messageId, body: record.body });
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
  return (event) =>
    processPartialResponse(event, recordHandler, new BatchProcessor(EventType.SQS), { throwOnFullBatchFailure: false });
}
