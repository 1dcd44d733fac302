/**
 * Characters SQS refuses in a message body (U+FFFE, U+FFFF: not XML 1.0 characters) arrive escaped,
 * in pure ASCII, and are unescaped by JSON.parse: what we send on (a dead letter, the producer's
 * message) must escape them again, or SQS refuses it as the sender's fault and the message is
 * retried, then redriven without its reason.
 */
import { CreateQueueCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { DeadLetterQueue } from '../../lambda/adapters/dead-letter-queue';
import { UsageProducer } from '../../lambda/adapters/usage-producer';
import { createIngestHandler } from '../../lambda/ingest/ingest-batch';
import { FakeCustomerDirectory, FakeUsageJournal, LICENSE_ARN, NOW, PRODUCTS } from '../unit/usage/fake-usage-ports';
import { useLocalSqs } from '../support/local-services';

const sqs = useLocalSqs();

function sqsEvent(bodies: string[]): SQSEvent {
  return {
    Records: bodies.map((body, i) => ({
      messageId: `message-${i}`,
      receiptHandle: `receipt-${i}`,
      body,
      attributes: { ApproximateReceiveCount: '1' } as SQSEvent['Records'][number]['attributes'],
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:usage',
      awsRegion: 'us-east-1',
    })),
  };
}

test('an event refused for a dimension holding the JSON escape \\uffff is dead-lettered with its reason, not retried', async () => {
  const { QueueUrl } = await sqs.client.send(new CreateQueueCommand({ QueueName: `characters-dlq-${process.pid}` }));
  const journal = new FakeUsageJournal();
  const handler = createIngestHandler({
    ports: { journal, customers: new FakeCustomerDirectory(), products: PRODUCTS, now: () => NOW },
    deadLetters: new DeadLetterQueue(sqs.client, QueueUrl!),
    log: { info: () => undefined, warn: () => undefined },
  });
  // Pure ASCII on the wire: SQS takes this body as it is.
  const body = `[{"licenseArn":"${LICENSE_ARN}","dimension":"requests","quantity":3,"timestamp":"2026-11-02T10:15:00Z"},` +
    `{"licenseArn":"${LICENSE_ARN}","dimension":"requests\\uffff","quantity":4,"timestamp":"2026-11-02T10:15:00Z"}]`;
  expect(/^[\x20-\x7e]*$/.test(body)).toBe(true);

  const response = await handler(sqsEvent([body]));

  // The valid event is counted...
  expect(journal.totalQuantity()).toBe(3);
  // ...and the invalid one should be in the dead-letter queue with reason unknown-dimension, the message done.
  expect(response).toEqual({ batchItemFailures: [] });
  const { Messages } = await sqs.client.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: ['All'] }));
  expect((Messages ?? []).map((m) => m.MessageAttributes?.reason?.StringValue)).toEqual(['unknown-dimension']);
}, 60_000);

test('the producer sends an event holding U+FFFF (escaped in the body), and ingestion reads it back unchanged', async () => {
  const { QueueUrl } = await sqs.client.send(new CreateQueueCommand({ QueueName: `characters-usage-${process.pid}` }));
  const event = { eventId: 'odd\uffff\ufffe', licenseArn: LICENSE_ARN, dimension: 'requests', quantity: 1, timestamp: '2026-11-02T10:15:00Z' };

  expect(await new UsageProducer({ queueUrl: QueueUrl!, client: sqs.client }).send([event])).toEqual({ sent: 1, failed: [] });

  const { Messages } = await sqs.client.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 1, WaitTimeSeconds: 1 }));
  expect(JSON.parse(Messages![0].Body!)).toEqual([event]);
}, 60_000);
