import type { Message } from '@aws-sdk/client-sqs';
import type { SQSMessageAttributes, SQSRecord } from 'aws-lambda';

/**
 * A message received from SQS as Lambda's SQS event source hands it to a function. `receiveCount`,
 * when given, stands for the message's ApproximateReceiveCount (tests deliver it again).
 */
export function sqsRecordOf(
  m: Pick<Message, 'MessageId' | 'ReceiptHandle' | 'Body' | 'Attributes' | 'MD5OfBody' | 'MessageAttributes'>,
  receiveCount?: number,
): SQSRecord {
  return {
    messageId: m.MessageId!,
    receiptHandle: m.ReceiptHandle!,
    body: m.Body ?? '',
    attributes: { ...(m.Attributes ?? {}), ...(receiveCount === undefined ? {} : { ApproximateReceiveCount: String(receiveCount) }) } as SQSRecord['attributes'],
    messageAttributes: messageAttributesOf(m.MessageAttributes),
    md5OfBody: m.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:usage',
    awsRegion: 'us-east-1',
  };
}

/** Message attributes (received with `MessageAttributeNames: ['All']`) in the event source's shape. */
function messageAttributesOf(attributes: Message['MessageAttributes']): SQSMessageAttributes {
  const result: SQSMessageAttributes = {};
  for (const [name, value] of Object.entries(attributes ?? {})) {
    result[name] = {
      dataType: value.DataType ?? 'String',
      stringValue: value.StringValue,
      binaryValue: value.BinaryValue === undefined ? undefined : Buffer.from(value.BinaryValue).toString('base64'),
      stringListValues: [],
      binaryListValues: [],
    };
  }
  return result;
}
