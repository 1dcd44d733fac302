/**
 * The lifecycle function's two inputs: an EventBridge event (the rule on `aws.agreement-marketplace`)
 * is handled or throws, so that EventBridge retries it and then dead-letters it; an SQS batch from the
 * legacy topics' queue reports the messages it could not handle as batch item failures, so SQS
 * redelivers only those (and, after maxReceiveCount, moves them to the queue's dead-letter queue).
 */
import type { SQSBatchResponse } from 'aws-lambda';
import { LifecycleService } from '../../../lambda/core/lifecycle/lifecycle-service';
import { UnrecognisedNotification } from '../../../lambda/core/lifecycle/lifecycle-signal';
import { createLifecycleHandler } from '../../../lambda/lifecycle/lifecycle-dispatch';
import { FakeLifecyclePorts } from './fake-lifecycle-ports';
import { agreementEvent, at, LEGACY_KEY, legacyMessage, LICENSE_KEY, licenseEvent, PRODUCTS, snsBody, sqsEvent } from './fixtures';

let ports: FakeLifecyclePorts;
let lines: { message: string; attributes: Record<string, unknown> }[];
let handler: ReturnType<typeof createLifecycleHandler>;

beforeEach(() => {
  ports = new FakeLifecyclePorts();
  lines = [];
  handler = createLifecycleHandler(new LifecycleService(ports, PRODUCTS), { info: (message, attributes) => lines.push({ message, attributes }) });
});

describe('EventBridge', () => {
  test('an agreement or licence event is handled and logged with its outcome', async () => {
    await handler(licenseEvent('License Updated - Manufacturer', { id: 'evt-lu', time: at(0) }));
    const outcome = await handler(licenseEvent('License Deprovisioned - Manufacturer', { id: 'evt-ld', time: at(60) }));

    expect(outcome).toEqual({ result: 'applied', customerKey: LICENSE_KEY, status: 'unsubscribed', entitlements: undefined });
    expect(ports.items.get(LICENSE_KEY)?.status).toBe('unsubscribed');
    expect(lines.at(-1)).toEqual({
      message: 'lifecycle notification',
      attributes: expect.objectContaining({ kind: 'license', change: 'deprovisioned', eventId: 'evt-ld', result: 'applied', customerKey: LICENSE_KEY }),
    });
  });

  test('an event that is not an AWS Marketplace lifecycle event throws (EventBridge retries, then dead-letters it)', async () => {
    await expect(handler({ ...agreementEvent('Purchase Agreement Created - Manufacturer'), 'detail-type': 'Something Else' })).rejects.toThrow(
      UnrecognisedNotification,
    );
    expect(ports.items.size).toBe(0);
  });

  test('a failing port (DynamoDB down) fails the invocation, so EventBridge retries it', async () => {
    ports.applyStatus = async () => {
      throw new Error('ProvisionedThroughputExceededException');
    };
    await expect(handler(licenseEvent('License Deprovisioned - Manufacturer'))).rejects.toThrow('ProvisionedThroughputExceededException');
  });
});

describe('SQS batch of legacy SNS notifications', () => {
  test('each message handled; only the unrecognised one is reported as a batch item failure', async () => {
    const event = sqsEvent([
      snsBody(legacyMessage('subscribe-success', { isFreeTrialTermPresent: 'true' }), { timestamp: at(0) }),
      '{"Type": "Notification", "MessageId": "broken", "Message": "not json", "Timestamp": "2026-11-02T10:00:00Z"}',
      snsBody(legacyMessage('unsubscribe-pending'), { timestamp: at(3600) }),
    ]);

    const answer = (await handler(event)) as SQSBatchResponse;

    expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: 'sqs-message-1' }] });
    expect(ports.items.get(LEGACY_KEY)).toMatchObject({ status: 'unsubscribe-pending', freeTrial: true });
    expect(ports.flushed).toEqual([LEGACY_KEY]);
  });

  test('a message whose handling fails (infrastructure) is reported, the others are not', async () => {
    const flushUsage = ports.flushUsage.bind(ports);
    ports.flushUsage = async (flush) => {
      if (flush.customerKey.includes('UNLUCKY')) throw new Error('Lambda Invoke throttled');
      return flushUsage(flush);
    };
    const answer = (await handler(
      sqsEvent([
        snsBody(legacyMessage('unsubscribe-success', { customerIdentifier: 'UNLUCKY0001' })),
        snsBody(legacyMessage('unsubscribe-success')),
      ]),
    )) as SQSBatchResponse;

    expect(answer.batchItemFailures).toEqual([{ itemIdentifier: 'sqs-message-0' }]);
    expect(ports.flushed).toEqual([LEGACY_KEY]);
  });

  test('a batch where every message fails is reported as such (not thrown: SQS keeps the per-message receive counts)', async () => {
    const answer = (await handler(sqsEvent(['not json', '{}']))) as SQSBatchResponse;
    expect(answer.batchItemFailures).toEqual([{ itemIdentifier: 'sqs-message-0' }, { itemIdentifier: 'sqs-message-1' }]);
  });
});
