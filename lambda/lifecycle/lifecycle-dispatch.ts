import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { LifecycleService, SignalOutcome } from '../core/lifecycle/lifecycle-service';
import { LifecycleSignal, signalFromEventBridge, signalFromSnsEnvelope } from '../core/lifecycle/lifecycle-signal';

/**
 * The lifecycle function's two inputs, shared by the Lambda handler and the local runner: an
 * EventBridge event (the rule on `aws.agreement-marketplace`), or an SQS batch from the queue
 * subscribed to the legacy SNS topics. An unrecognised notification throws: EventBridge retries it
 * and then sends it to the rule's dead-letter queue; SQS redrives it to the queue's.
 */

export interface LifecycleLog {
  info(message: string, attributes: Record<string, unknown>): void;
}

function describe(signal: LifecycleSignal, outcome: SignalOutcome): Record<string, unknown> {
  return {
    kind: signal.kind,
    change: signal.kind === 'legacy' ? signal.action : signal.change,
    eventId: signal.eventId,
    eventTime: signal.eventTime,
    ...outcome,
  };
}

export function createLifecycleHandler(service: LifecycleService, log: LifecycleLog) {
  const handleSignal = async (signal: LifecycleSignal) => {
    const outcome = await service.handle(signal);
    log.info('lifecycle notification', describe(signal, outcome));
    return outcome;
  };
  return async (event: unknown): Promise<SQSBatchResponse | SignalOutcome> => {
    if (isSqsEvent(event)) {
      return processPartialResponse(
        event,
        async (record: SQSRecord) => {
          await handleSignal(signalFromSnsEnvelope(record.body));
        },
        new BatchProcessor(EventType.SQS),
        { throwOnFullBatchFailure: false },
      );
    }
    return handleSignal(signalFromEventBridge(event));
  };
}

function isSqsEvent(event: unknown): event is SQSEvent {
  const records = (event as { Records?: unknown[] } | null)?.Records;
  return Array.isArray(records) && records.every((r) => (r as { eventSource?: string }).eventSource === 'aws:sqs');
}
