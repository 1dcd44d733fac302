import { randomUUID } from 'node:crypto';
import { SimulatedCustomer, SimulatedProduct } from './state';

/**
 * The lifecycle notifications AWS Marketplace sends the seller, in their real shapes: EventBridge
 * events (source `aws.agreement-marketplace`) for Concurrent Agreements products, and SNS
 * notifications (as an SQS queue subscribed to the topic receives them) for legacy products.
 * They are delivered by HTTP POST to the configured `notificationUrl`, and kept for
 * `GET /_admin/notifications`.
 */

export type Notification =
  | { readonly channel: 'eventbridge'; readonly event: Record<string, unknown> }
  | { readonly channel: 'sns'; readonly topic: 'subscription' | 'entitlement'; readonly envelope: Record<string, unknown> };

export type LifecycleChange = 'subscribed' | 'unsubscribe-pending' | 'unsubscribed' | 'entitlements-updated';

/** The seller account the simulator plays (events' `account`). */
export const SELLER_ACCOUNT = '111111111111';

export function notificationsFor(
  change: LifecycleChange,
  customer: SimulatedCustomer,
  product: SimulatedProduct,
  at: Date,
): Notification[] {
  if (product.identityMode === 'legacy') {
    const action = {
      subscribed: 'subscribe-success',
      'unsubscribe-pending': 'unsubscribe-pending',
      unsubscribed: 'unsubscribe-success',
      'entitlements-updated': 'entitlement-updated',
    }[change];
    const topic = change === 'entitlements-updated' ? 'entitlement' : 'subscription';
    const message = {
      action,
      'customer-identifier': customer.customerIdentifier,
      'product-code': product.productCode,
      'offer-identifier': `offer-${customer.agreementId.slice(5, 17)}`,
      // AWS sends the flag as a string.
      ...(customer.freeTrial && change === 'subscribed' ? { isFreeTrialTermPresent: 'true' } : {}),
    };
    return [
      {
        channel: 'sns',
        topic,
        envelope: {
          Type: 'Notification',
          MessageId: randomUUID(),
          TopicArn: `arn:aws:sns:us-east-1:287250355862:aws-mp-${topic}-notification-${product.productCode}`,
          Message: JSON.stringify(message),
          Timestamp: at.toISOString(),
          SignatureVersion: '1',
        },
      },
    ];
  }
  // Event examples give licence ARNs without their `arn:` prefix: so does the simulator.
  const licenseArn = customer.licenseArn.replace(/^arn:/, '');
  const agreement = (detailType: string, status: string) => event(detailType, at, {
    agreement: { id: customer.agreementId, intent: 'NEW', status },
    acceptor: { accountId: customer.customerAWSAccountId },
    proposer: { accountId: SELLER_ACCOUNT },
    offer: { id: `offer-${customer.agreementId.slice(5, 17)}` },
  });
  const license = (detailType: string) => event(detailType, at, {
    agreement: { id: customer.agreementId },
    product: { id: `prod-${product.productCode}`, code: product.productCode },
    license: { arn: licenseArn },
    acceptor: { accountId: customer.customerAWSAccountId },
  });
  switch (change) {
    case 'subscribed':
      return [agreement('Purchase Agreement Created - Manufacturer', 'ACTIVE'), license('License Updated - Manufacturer')];
    case 'unsubscribe-pending':
      return [agreement('Purchase Agreement Ended - Manufacturer', 'CANCELLED')];
    case 'unsubscribed':
      return [license('License Deprovisioned - Manufacturer')];
    case 'entitlements-updated':
      return [license('License Updated - Manufacturer')];
  }
}

function event(detailType: string, at: Date, detail: Record<string, unknown>): Notification {
  return {
    channel: 'eventbridge',
    event: {
      version: '0',
      id: randomUUID(),
      'detail-type': detailType,
      source: 'aws.agreement-marketplace',
      account: SELLER_ACCOUNT,
      time: at.toISOString().replace(/\.\d{3}Z$/, 'Z'),
      region: 'us-east-1',
      resources: [],
      detail: { requestId: randomUUID(), ...detail },
    },
  };
}

/** Delivers notifications in order to the callback URL; failures are kept with the notification. */
export async function deliver(url: string, notifications: readonly Notification[]): Promise<string[]> {
  const errors: string[] = [];
  for (const notification of notifications) {
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(notification),
        signal: AbortSignal.timeout(10_000),
      });
      if (!response.ok) errors.push(`${url} answered ${response.status}`);
    } catch (error) {
      errors.push(`${url}: ${error instanceof Error ? error.message : error}`);
    }
  }
  return errors;
}
