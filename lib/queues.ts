import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

/**
 * The queues of this stack, made one way: SQS-managed encryption, TLS only, 14 days' retention, and
 * kept when the stack is deleted (they hold usage, records or notifications not yet dealt with).
 */
export function retainedQueue(scope: Construct, id: string, props: sqs.QueueProps = {}): sqs.Queue {
  return new sqs.Queue(scope, id, {
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    retentionPeriod: Duration.days(14),
    removalPolicy: RemovalPolicy.RETAIN,
    ...props,
  });
}

/** A dead-letter queue (which needs no dead-letter queue of its own), saying what ends up in it. */
export function deadLetterQueue(scope: Construct, id: string, holds: string): sqs.Queue {
  const queue = retainedQueue(scope, id);
  Validations.of(queue).acknowledge({ id: 'AwsSolutions-SQS3', reason: `This is the dead-letter queue for ${holds}.` });
  return queue;
}
