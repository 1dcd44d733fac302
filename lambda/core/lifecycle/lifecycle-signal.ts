import { z } from 'zod';
import { legacyCustomerKey, licenseCustomerKey } from '../customer';
import { licenseIdOf } from '../marketplace-limits';

/**
 * Subscription lifecycle notifications from AWS Marketplace, normalised into signals: EventBridge
 * events (source `aws.agreement-marketplace`) and, for legacy products, the SNS subscription and
 * entitlement topics' messages (delivered through an SQS queue, so wrapped in an SNS envelope).
 */

export type SubscriptionStatus = 'pending' | 'subscribed' | 'unsubscribe-pending' | 'unsubscribed' | 'failed';

interface SignalBase {
  /** Idempotency: the same notification delivered twice has the same id. */
  readonly eventId: string;
  /** ISO 8601: when AWS Marketplace says it happened. State follows the newest event, not the latest delivery. */
  readonly eventTime: string;
}

/** Purchase Agreement events: they name the agreement and the buyer's account, not the licence. */
export interface AgreementSignal extends SignalBase {
  readonly kind: 'agreement';
  readonly change: 'created' | 'amended' | 'ended';
  readonly agreementId: string;
  readonly acceptorAccountId?: string;
  readonly offerId?: string;
  readonly intent?: string;
  /** The agreement's status (Ended: CANCELLED, EXPIRED, TERMINATED, ... or RENEWED, REPLACED: a successor goes on). */
  readonly agreementStatus?: string;
}

/** License events: they name the licence and the product. */
export interface LicenseSignal extends SignalBase {
  readonly kind: 'license';
  readonly change: 'updated' | 'deprovisioned';
  readonly customerKey: string;
  readonly licenseArn: string;
  readonly productCode: string;
  readonly agreementId?: string;
  readonly acceptorAccountId?: string;
}

/** Legacy SNS topics: subscription actions and entitlement updates, by product + CustomerIdentifier. */
export interface LegacySignal extends SignalBase {
  readonly kind: 'legacy';
  readonly action: 'subscribe-success' | 'subscribe-fail' | 'unsubscribe-pending' | 'unsubscribe-success' | 'entitlement-updated';
  readonly customerKey: string;
  readonly productCode: string;
  readonly customerIdentifier: string;
  readonly freeTrial: boolean;
  readonly offerId?: string;
}

export type LifecycleSignal = AgreementSignal | LicenseSignal | LegacySignal;

export class UnrecognisedNotification extends Error {}

const eventBridgeEnvelope = z.object({
  id: z.string().min(1),
  'detail-type': z.string(),
  source: z.literal('aws.agreement-marketplace'),
  time: z.iso.datetime({ offset: true }),
  detail: z.record(z.string(), z.unknown()),
});

const agreementDetail = z.object({
  agreement: z.object({ id: z.string().min(1), intent: z.string().optional(), status: z.string().optional() }).loose(),
  acceptor: z.object({ accountId: z.string().optional() }).loose().optional(),
  offer: z.object({ id: z.string().optional() }).loose().optional(),
});

const licenseDetail = z.object({
  agreement: z.object({ id: z.string().optional() }).loose().optional(),
  product: z.object({ code: z.string().min(1) }).loose(),
  license: z.object({ arn: z.string().min(1) }).loose(),
  acceptor: z.object({ accountId: z.string().optional() }).loose().optional(),
});

const AGREEMENT_TYPES = /^Purchase Agreement (Created|Amended|Ended) - (Proposer|Manufacturer)$/;
const LICENSE_TYPES = /^License (Updated|Deprovisioned) - Manufacturer$/;

export function signalFromEventBridge(raw: unknown): LifecycleSignal {
  const envelope = eventBridgeEnvelope.safeParse(raw);
  if (!envelope.success) throw new UnrecognisedNotification(`not an AWS Marketplace event: ${z.prettifyError(envelope.error)}`);
  const { id, time } = envelope.data;
  const detailType = envelope.data['detail-type'];
  const agreementType = AGREEMENT_TYPES.exec(detailType);
  if (agreementType) {
    const detail = agreementDetail.safeParse(envelope.data.detail);
    if (!detail.success) throw new UnrecognisedNotification(`${detailType}: ${z.prettifyError(detail.error)}`);
    return {
      kind: 'agreement',
      change: agreementType[1].toLowerCase() as AgreementSignal['change'],
      eventId: id,
      eventTime: new Date(time).toISOString(),
      agreementId: detail.data.agreement.id,
      acceptorAccountId: detail.data.acceptor?.accountId,
      offerId: detail.data.offer?.id,
      intent: detail.data.agreement.intent,
      agreementStatus: detail.data.agreement.status,
    };
  }
  const licenseType = LICENSE_TYPES.exec(detailType);
  if (licenseType) {
    const detail = licenseDetail.safeParse(envelope.data.detail);
    if (!detail.success) throw new UnrecognisedNotification(`${detailType}: ${z.prettifyError(detail.error)}`);
    const licenseArn = detail.data.license.arn;
    if (!licenseIdOf(licenseArn)) throw new UnrecognisedNotification(`${detailType}: no licence id in ${licenseArn}`);
    return {
      kind: 'license',
      change: licenseType[1].toLowerCase() as LicenseSignal['change'],
      eventId: id,
      eventTime: new Date(time).toISOString(),
      customerKey: licenseCustomerKey(licenseArn),
      // Event examples give the ARN without `arn:`: keep what ResolveCustomer would return.
      licenseArn: licenseArn.startsWith('arn:') ? licenseArn : `arn:${licenseArn}`,
      productCode: detail.data.product.code,
      agreementId: detail.data.agreement?.id,
      acceptorAccountId: detail.data.acceptor?.accountId,
    };
  }
  throw new UnrecognisedNotification(`unhandled detail-type ${detailType}`);
}

const snsEnvelope = z.object({
  Type: z.literal('Notification'),
  MessageId: z.string().min(1),
  Message: z.string(),
  Timestamp: z.iso.datetime({ offset: true }),
});

const legacyMessage = z.object({
  action: z.enum(['subscribe-success', 'subscribe-fail', 'unsubscribe-pending', 'unsubscribe-success', 'entitlement-updated']),
  'customer-identifier': z.string().min(1),
  'product-code': z.string().min(1),
  'offer-identifier': z.string().optional(),
  // A string on the wire ("true"), sometimes a boolean.
  isFreeTrialTermPresent: z.union([z.string(), z.boolean()]).optional(),
});

/** An SQS message body carrying an SNS notification from the legacy topics. */
export function signalFromSnsEnvelope(body: string): LegacySignal {
  let envelope;
  try {
    envelope = snsEnvelope.parse(JSON.parse(body));
  } catch (error) {
    throw new UnrecognisedNotification(`not an SNS notification: ${error instanceof Error ? error.message : error}`);
  }
  let message;
  try {
    message = legacyMessage.parse(JSON.parse(envelope.Message));
  } catch (error) {
    throw new UnrecognisedNotification(`not an AWS Marketplace SaaS message: ${error instanceof Error ? error.message : error}`);
  }
  const productCode = message['product-code'];
  const customerIdentifier = message['customer-identifier'];
  return {
    kind: 'legacy',
    action: message.action,
    eventId: envelope.MessageId,
    eventTime: new Date(envelope.Timestamp).toISOString(),
    customerKey: legacyCustomerKey(productCode, customerIdentifier),
    productCode,
    customerIdentifier,
    freeTrial: String(message.isFreeTrialTermPresent).toLowerCase() === 'true',
    offerId: message['offer-identifier'],
  };
}
