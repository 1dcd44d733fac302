/**
 * Every form of AWS Marketplace lifecycle notification parsed into a signal: the six Purchase
 * Agreement detail-types, the two License detail-types (licence ARNs with and without `arn:`), and
 * the legacy SNS envelopes for every action with the free-trial flag as AWS sends it (a string).
 */
import {
  signalFromEventBridge,
  signalFromSnsEnvelope,
  UnrecognisedNotification,
} from '../../../lambda/core/lifecycle/lifecycle-signal';
import {
  ACCOUNT,
  AGREEMENT_DETAIL_TYPES,
  AGREEMENT_ID,
  agreementEvent,
  CUSTOMER_IDENTIFIER,
  LEGACY_ACTIONS,
  LEGACY_KEY,
  LEGACY_PRODUCT_CODE,
  legacyMessage,
  LICENSE_ARN,
  LICENSE_ARN_WITHOUT_PREFIX,
  LICENSE_KEY,
  licenseEvent,
  OFFER_ID,
  PRODUCT_CODE,
  snsBody,
} from './fixtures';

describe('EventBridge: Purchase Agreement events', () => {
  test.each(AGREEMENT_DETAIL_TYPES)('%s: an agreement signal with the agreement, the buyer account and the offer', (detailType) => {
    const event = agreementEvent(detailType, { id: 'evt-agreement-1', time: '2026-11-02T10:15:30Z' });
    const change = /Purchase Agreement (\w+)/.exec(detailType)![1].toLowerCase();

    expect(signalFromEventBridge(event)).toEqual({
      kind: 'agreement',
      change,
      eventId: 'evt-agreement-1',
      eventTime: '2026-11-02T10:15:30.000Z',
      agreementId: AGREEMENT_ID,
      acceptorAccountId: ACCOUNT,
      offerId: OFFER_ID,
      intent: change === 'amended' ? 'AMEND' : 'NEW',
      agreementStatus: change === 'ended' ? 'CANCELLED' : 'ACTIVE',
    });
  });

  test('Proposer and Manufacturer variants of one change are the same change (only the event id differs)', () => {
    const proposer = signalFromEventBridge(agreementEvent('Purchase Agreement Ended - Proposer', { id: 'p' }));
    const manufacturer = signalFromEventBridge(agreementEvent('Purchase Agreement Ended - Manufacturer', { id: 'm' }));
    expect({ ...proposer, eventId: 'x' }).toEqual({ ...manufacturer, eventId: 'x' });
  });

  test('an event without acceptor and offer (they are optional) still names its agreement', () => {
    const signal = signalFromEventBridge(agreementEvent('Purchase Agreement Created - Manufacturer', { acceptorAccountId: null, offerId: null }));
    expect(signal).toMatchObject({ kind: 'agreement', agreementId: AGREEMENT_ID, acceptorAccountId: undefined, offerId: undefined });
  });

  test('the event time is normalised to UTC with milliseconds, whatever offset it was given in', () => {
    const signal = signalFromEventBridge(agreementEvent('Purchase Agreement Created - Manufacturer', { time: '2026-11-02T12:15:30+02:00' }));
    expect(signal.eventTime).toBe('2026-11-02T10:15:30.000Z');
  });

  test('an agreement event without agreement id is not recognised', () => {
    const event = agreementEvent('Purchase Agreement Created - Manufacturer') as { detail: Record<string, unknown> };
    delete event.detail.agreement;
    expect(() => signalFromEventBridge(event)).toThrow(UnrecognisedNotification);
  });
});

describe('EventBridge: License events', () => {
  test.each([
    ['License Updated - Manufacturer', 'updated'],
    ['License Deprovisioned - Manufacturer', 'deprovisioned'],
  ] as const)('%s with the licence ARN without `arn:` (as in AWS examples): keyed by licence id, ARN as ResolveCustomer gives it', (detailType, change) => {
    const event = licenseEvent(detailType, { id: 'evt-license-1', time: '2026-11-02T10:15:30Z' });
    expect(((event.detail as { license: { arn: string } }).license.arn)).toBe(LICENSE_ARN_WITHOUT_PREFIX);

    expect(signalFromEventBridge(event)).toEqual({
      kind: 'license',
      change,
      eventId: 'evt-license-1',
      eventTime: '2026-11-02T10:15:30.000Z',
      customerKey: LICENSE_KEY,
      licenseArn: LICENSE_ARN,
      productCode: PRODUCT_CODE,
      agreementId: AGREEMENT_ID,
      acceptorAccountId: ACCOUNT,
    });
  });

  test('a licence ARN with `arn:` is kept as it is, and names the same customer', () => {
    const withPrefix = signalFromEventBridge(licenseEvent('License Updated - Manufacturer', { licenseArn: LICENSE_ARN }));
    const without = signalFromEventBridge(licenseEvent('License Updated - Manufacturer', { licenseArn: LICENSE_ARN_WITHOUT_PREFIX }));
    expect(withPrefix).toMatchObject({ customerKey: LICENSE_KEY, licenseArn: LICENSE_ARN });
    expect(without).toMatchObject({ customerKey: LICENSE_KEY, licenseArn: LICENSE_ARN });
  });

  test('a licence event without agreement or acceptor is still a licence signal', () => {
    const signal = signalFromEventBridge(licenseEvent('License Deprovisioned - Manufacturer', { agreementId: null, acceptorAccountId: null }));
    expect(signal).toMatchObject({ kind: 'license', change: 'deprovisioned', customerKey: LICENSE_KEY, agreementId: undefined, acceptorAccountId: undefined });
  });

  test.each([
    ['no licence id in the ARN', { licenseArn: 'aws:license-manager::999988887777:license:' }],
    ['no product code', { productCode: '' }],
  ])('not recognised: %s', (_, options) => {
    expect(() => signalFromEventBridge(licenseEvent('License Updated - Manufacturer', options))).toThrow(UnrecognisedNotification);
  });
});

describe('EventBridge: what is not an AWS Marketplace lifecycle event', () => {
  test.each([
    ['another source', { ...agreementEvent('Purchase Agreement Created - Manufacturer'), source: 'aws.marketplace' }],
    ['an unhandled detail-type', { ...agreementEvent('Purchase Agreement Created - Manufacturer'), 'detail-type': 'License Deprovisioned - Proposer' }],
    ['a time that is not ISO 8601', { ...agreementEvent('Purchase Agreement Created - Manufacturer'), time: 'yesterday' }],
    ['no id', { ...agreementEvent('Purchase Agreement Created - Manufacturer'), id: '' }],
    ['not an object', 'Purchase Agreement Created - Manufacturer'],
    ['null', null],
  ])('%s: UnrecognisedNotification', (_, event) => {
    expect(() => signalFromEventBridge(event)).toThrow(UnrecognisedNotification);
  });
});

describe('SNS (legacy products): envelopes from the queue subscribed to the topics', () => {
  test.each(LEGACY_ACTIONS)('%s: a legacy signal keyed by product code and CustomerIdentifier', (action) => {
    const body = snsBody(legacyMessage(action), { messageId: 'msg-1', timestamp: '2026-11-02T10:15:30.123Z' });

    expect(signalFromSnsEnvelope(body)).toEqual({
      kind: 'legacy',
      action,
      eventId: 'msg-1',
      eventTime: '2026-11-02T10:15:30.123Z',
      customerKey: LEGACY_KEY,
      productCode: LEGACY_PRODUCT_CODE,
      customerIdentifier: CUSTOMER_IDENTIFIER,
      freeTrial: false,
      offerId: OFFER_ID,
    });
  });

  test.each([
    ['the string "true" (as AWS sends it)', 'true', true],
    ['"TRUE"', 'TRUE', true],
    ['the string "false"', 'false', false],
    ['a boolean true', true, true],
    ['a boolean false', false, false],
    ['absent', undefined, false],
  ] as const)('isFreeTrialTermPresent %s: freeTrial %s', (_, flag, expected) => {
    const body = snsBody(legacyMessage('subscribe-success', { isFreeTrialTermPresent: flag }));
    expect(signalFromSnsEnvelope(body).freeTrial).toBe(expected);
  });

  test('the entitlement topic message (no offer identifier) is an entitlement-updated signal', () => {
    const body = snsBody(legacyMessage('entitlement-updated', { offerId: null }), { topic: 'entitlement' });
    expect(signalFromSnsEnvelope(body)).toMatchObject({ action: 'entitlement-updated', offerId: undefined, customerKey: LEGACY_KEY });
  });

  test.each([
    ['not JSON', 'subscribe-success'],
    ['a subscription confirmation', JSON.stringify({ Type: 'SubscriptionConfirmation', MessageId: 'm', Message: '{}', Timestamp: '2026-11-02T10:00:00Z' })],
    ['a Message that is not JSON', JSON.stringify({ Type: 'Notification', MessageId: 'm', Message: 'subscribe-success', Timestamp: '2026-11-02T10:00:00Z' })],
    ['an unknown action', snsBody({ ...legacyMessage('subscribe-success'), action: 'subscribe-maybe' })],
    ['no customer identifier', snsBody({ ...legacyMessage('subscribe-success'), 'customer-identifier': '' })],
    ['no product code', snsBody({ action: 'subscribe-success', 'customer-identifier': CUSTOMER_IDENTIFIER })],
    ['the raw message without envelope (raw message delivery)', JSON.stringify(legacyMessage('subscribe-success'))],
  ])('%s: UnrecognisedNotification', (_, body) => {
    expect(() => signalFromSnsEnvelope(body)).toThrow(UnrecognisedNotification);
  });
});
