/**
 * AWS Marketplace lifecycle notifications in every form the stack receives them, built as AWS sends
 * them: EventBridge events from `aws.agreement-marketplace` (Purchase Agreement Created, Amended,
 * Ended, each as Proposer and as Manufacturer; License Updated and License Deprovisioned as
 * Manufacturer, licence ARNs without their `arn:` prefix as in AWS's examples), and, for legacy
 * products, SNS notifications as the SQS queue subscribed to the topics receives them (an SNS
 * envelope whose `Message` is a JSON string, the free-trial flag the string "true").
 */
import type { SQSEvent } from 'aws-lambda';
import { ProductConfig } from '../../../lambda/core/product-config';

export const SELLER_ACCOUNT = '111111111111';
export const ACCOUNT = '210987654321';
export const PRODUCT_CODE = 'prod-lifecycle-abc';
export const LEGACY_PRODUCT_CODE = 'prod-legacy-abc';
export const LICENSE_ID = 'l-0123456789abcdef0123456789abcdef';
/** As ResolveCustomer returns it (the issuer's account, not the buyer's). */
export const LICENSE_ARN = `arn:aws:license-manager::999988887777:license:${LICENSE_ID}`;
/** As AWS's event examples give it. */
export const LICENSE_ARN_WITHOUT_PREFIX = LICENSE_ARN.replace(/^arn:/, '');
export const LICENSE_KEY = `license#${LICENSE_ID}`;
export const AGREEMENT_ID = 'agmt-0123456789abcdefghijklm';
export const OFFER_ID = 'offer-abcexample123';
export const CUSTOMER_IDENTIFIER = 'X01EXAMPLEX';
export const LEGACY_KEY = `legacy#${LEGACY_PRODUCT_CODE}#${CUSTOMER_IDENTIFIER}`;

export const LICENSE_PRODUCT: ProductConfig = { productCode: PRODUCT_CODE, identityMode: 'license', dimensions: ['requests'] };
export const LEGACY_PRODUCT: ProductConfig = { productCode: LEGACY_PRODUCT_CODE, identityMode: 'legacy', dimensions: ['users'] };
export const PRODUCTS: readonly ProductConfig[] = [LICENSE_PRODUCT, LEGACY_PRODUCT];

export const T0 = '2026-11-02T10:00:00Z';

export type AgreementDetailType = `Purchase Agreement ${'Created' | 'Amended' | 'Ended'} - ${'Proposer' | 'Manufacturer'}`;
export type LicenseDetailType = 'License Updated - Manufacturer' | 'License Deprovisioned - Manufacturer';

export const AGREEMENT_DETAIL_TYPES: readonly AgreementDetailType[] = [
  'Purchase Agreement Created - Proposer',
  'Purchase Agreement Created - Manufacturer',
  'Purchase Agreement Amended - Proposer',
  'Purchase Agreement Amended - Manufacturer',
  'Purchase Agreement Ended - Proposer',
  'Purchase Agreement Ended - Manufacturer',
];
export const LICENSE_DETAIL_TYPES: readonly LicenseDetailType[] = ['License Updated - Manufacturer', 'License Deprovisioned - Manufacturer'];

let counter = 0;
/** A fresh event id (EventBridge) or MessageId (SNS), unique in the test run. */
export const newId = (prefix = 'evt'): string => `${prefix}-${String(++counter).padStart(8, '0')}-0000-4000-8000-000000000000`;

function envelope(detailType: string, time: string, id: string, detail: Record<string, unknown>, resources: string[] = []) {
  return {
    version: '0',
    id,
    'detail-type': detailType,
    source: 'aws.agreement-marketplace',
    account: SELLER_ACCOUNT,
    time,
    region: 'us-east-1',
    resources,
    detail: { requestId: newId('req'), ...detail },
  };
}

export interface AgreementEventOptions {
  readonly id?: string;
  readonly time?: string;
  readonly agreementId?: string;
  readonly acceptorAccountId?: string | null;
  readonly offerId?: string | null;
  readonly intent?: 'NEW' | 'RENEW' | 'REPLACE' | 'AMEND';
  readonly status?: string;
}

/** A Purchase Agreement event: the agreement and the buyer's account, no product code, no licence. */
export function agreementEvent(detailType: AgreementDetailType, options: AgreementEventOptions = {}): Record<string, unknown> {
  const agreementId = options.agreementId ?? AGREEMENT_ID;
  const ended = detailType.includes('Ended');
  return envelope(
    detailType,
    options.time ?? T0,
    options.id ?? newId(),
    {
      agreement: {
        id: agreementId,
        intent: options.intent ?? (detailType.includes('Amended') ? 'AMEND' : 'NEW'),
        status: options.status ?? (ended ? 'CANCELLED' : 'ACTIVE'),
        createdTime: T0,
        startTime: T0,
        endTime: '2027-11-02T10:00:00Z',
      },
      ...(options.acceptorAccountId === null ? {} : { acceptor: { accountId: options.acceptorAccountId ?? ACCOUNT } }),
      proposer: { accountId: SELLER_ACCOUNT },
      ...(options.offerId === null ? {} : { offer: { id: options.offerId ?? OFFER_ID } }),
    },
    [`arn:aws:aws-marketplace:us-east-1:${SELLER_ACCOUNT}:AWSMarketplace/Agreement/${agreementId}`],
  );
}

export interface LicenseEventOptions {
  readonly id?: string;
  readonly time?: string;
  readonly licenseArn?: string;
  readonly productCode?: string;
  /** null: no agreement in the event. */
  readonly agreementId?: string | null;
  /** null: no acceptor in the event. */
  readonly acceptorAccountId?: string | null;
}

/** A License event: the licence (ARN without `arn:` unless told otherwise), the product, the agreement. */
export function licenseEvent(detailType: LicenseDetailType, options: LicenseEventOptions = {}): Record<string, unknown> {
  return envelope(detailType, options.time ?? T0, options.id ?? newId(), {
    ...(options.agreementId === null ? {} : { agreement: { id: options.agreementId ?? AGREEMENT_ID } }),
    product: { id: `prod-${options.productCode ?? PRODUCT_CODE}`, code: options.productCode ?? PRODUCT_CODE },
    license: { arn: options.licenseArn ?? LICENSE_ARN_WITHOUT_PREFIX, status: detailType.includes('Deprovisioned') ? 'DEACTIVATED' : 'AVAILABLE' },
    ...(options.acceptorAccountId === null ? {} : { acceptor: { accountId: options.acceptorAccountId ?? ACCOUNT } }),
  });
}

export type LegacyAction = 'subscribe-success' | 'subscribe-fail' | 'unsubscribe-pending' | 'unsubscribe-success' | 'entitlement-updated';
export const LEGACY_ACTIONS: readonly LegacyAction[] = [
  'subscribe-success',
  'subscribe-fail',
  'unsubscribe-pending',
  'unsubscribe-success',
  'entitlement-updated',
];

export interface LegacyMessageOptions {
  readonly customerIdentifier?: string;
  readonly productCode?: string;
  readonly offerId?: string | null;
  /** As AWS sends it: the string "true"; a boolean or other strings to test tolerance. Absent when undefined. */
  readonly isFreeTrialTermPresent?: string | boolean;
}

/** The `Message` of a legacy SNS notification (the subscription or the entitlement topic). */
export function legacyMessage(action: LegacyAction, options: LegacyMessageOptions = {}): Record<string, unknown> {
  return {
    action,
    'customer-identifier': options.customerIdentifier ?? CUSTOMER_IDENTIFIER,
    'product-code': options.productCode ?? LEGACY_PRODUCT_CODE,
    ...(options.offerId === null ? {} : { 'offer-identifier': options.offerId ?? OFFER_ID }),
    ...(options.isFreeTrialTermPresent === undefined ? {} : { isFreeTrialTermPresent: options.isFreeTrialTermPresent }),
  };
}

export interface SnsOptions {
  readonly messageId?: string;
  readonly timestamp?: string;
  /** @default the topic for the message's action */
  readonly topic?: 'subscription' | 'entitlement';
}

/** The SQS message body of an SNS notification (raw message delivery off), as the subscribed queue receives it. */
export function snsBody(message: Record<string, unknown>, options: SnsOptions = {}): string {
  const topic = options.topic ?? (message.action === 'entitlement-updated' ? 'entitlement' : 'subscription');
  const productCode = String(message['product-code'] ?? LEGACY_PRODUCT_CODE);
  const messageId = options.messageId ?? newId('msg');
  return JSON.stringify({
    Type: 'Notification',
    MessageId: messageId,
    TopicArn: `arn:aws:sns:us-east-1:287250355862:aws-mp-${topic}-notification-${productCode}`,
    // AWS formats the message with line breaks; JSON.parse does not care, a naive string match would.
    Message: JSON.stringify(message, null, 1),
    Timestamp: options.timestamp ?? '2026-11-02T10:00:00.000Z',
    SignatureVersion: '1',
    Signature: 'EXAMPLEpH+DcEwjAPg8O9mY8dReBSwksfg2S7WKQcikcNKWLQjwu6A4VbeS0QHVCkhRS7fUQvi2egU3N858fiTDN6bkkOxYDVrY0Ad8L10Hs3zH81mtnPk5uvvolIC1CXGu43obcgFxeL3khZl8IKvO61GWB6jI9b5+gLPoBc1Q=',
    SigningCertURL: 'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem',
    UnsubscribeURL: `https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:us-east-1:287250355862:aws-mp-${topic}-notification-${productCode}:${messageId}`,
  });
}

/** An SQS batch as Lambda's event source hands it to the lifecycle function. */
export function sqsEvent(bodies: readonly string[]): SQSEvent {
  return {
    Records: bodies.map((body, i) => ({
      messageId: `sqs-message-${i}`,
      receiptHandle: `receipt-${i}`,
      body,
      attributes: {
        ApproximateReceiveCount: '1',
        SentTimestamp: '1793613600000',
        SenderId: 'AIDAEXAMPLE',
        ApproximateFirstReceiveTimestamp: '1793613600000',
      },
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:legacy-notifications',
      awsRegion: 'us-east-1',
    })),
  };
}

/** An ISO time `seconds` after T0, in EventBridge's format (whole seconds, `Z`). */
export const at = (seconds: number): string => new Date(Date.parse(T0) + seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
