import type { Message } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';

/**
 * A message received from SQS as Lambda's SQS event source hands it to a function. `receiveCount`,
 * when given, stands for the message's ApproximateReceiveCount (tests deliver it again).
 */
export function sqsRecordOf(m: Pick<Message, 'MessageId' | 'ReceiptHandle' | 'Body' | 'Attributes' | 'MD5OfBody'>, receiveCount?: number): SQSRecord {
  return {
    messageId: m.MessageId!,
    receiptHandle: m.ReceiptHandle!,
    body: m.Body ?? '',
    attributes: { ...(m.Attributes ?? {}), ...(receiveCount === undefined ? {} : { ApproximateReceiveCount: String(receiveCount) }) } as SQSRecord['attributes'],
    messageAttributes: {},
    md5OfBody: m.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:usage',
    awsRegion: 'us-east-1',
  };
}
