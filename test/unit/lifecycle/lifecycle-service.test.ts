/**
 * The lifecycle service on in-memory ports: correlation of agreement events (which name no licence)
 * with customers, agreement events kept until their licence event arrives, newer-wins status and
 * entitlements, the provisioning event of every transition, and the final usage flush when access ends.
 */
import { CustomerIdentity } from '../../../lambda/core/customer';
import { LIFECYCLE_EVENTS, LifecycleService } from '../../../lambda/core/lifecycle/lifecycle-service';
import { LifecycleSignal, signalFromEventBridge, signalFromSnsEnvelope } from '../../../lambda/core/lifecycle/lifecycle-signal';
import { FakeLifecyclePorts } from './fake-lifecycle-ports';
import {
  ACCOUNT,
  AGREEMENT_ID,
  agreementEvent,
  AgreementDetailType,
  AgreementEventOptions,
  at,
  CUSTOMER_IDENTIFIER,
  LEGACY_KEY,
  LEGACY_PRODUCT_CODE,
  LegacyAction,
  legacyMessage,
  LegacyMessageOptions,
  LICENSE_ARN,
  LICENSE_KEY,
  LicenseDetailType,
  licenseEvent,
  LicenseEventOptions,
  PRODUCT_CODE,
  PRODUCTS,
  snsBody,
} from './fixtures';

const agreement = (detailType: AgreementDetailType, options: AgreementEventOptions = {}): LifecycleSignal =>
  signalFromEventBridge(agreementEvent(detailType, options));
const license = (detailType: LicenseDetailType, options: LicenseEventOptions = {}): LifecycleSignal =>
  signalFromEventBridge(licenseEvent(detailType, options));
const legacy = (action: LegacyAction, options: LegacyMessageOptions & { time?: string; messageId?: string } = {}): LifecycleSignal =>
  signalFromSnsEnvelope(snsBody(legacyMessage(action, options), { timestamp: options.time, messageId: options.messageId }));

const CREATED = 'Purchase Agreement Created - Manufacturer';
const AMENDED = 'Purchase Agreement Amended - Manufacturer';
const ENDED = 'Purchase Agreement Ended - Manufacturer';
const UPDATED = 'License Updated - Manufacturer';
const DEPROVISIONED = 'License Deprovisioned - Manufacturer';

const LICENSE_IDENTITY: CustomerIdentity = {
  customerKey: LICENSE_KEY,
  productCode: PRODUCT_CODE,
  identityMode: 'license',
  customerAWSAccountId: ACCOUNT,
  licenseArn: LICENSE_ARN,
};

const SEATS = [{ dimension: 'seats', value: { IntegerValue: 10 }, expirationDate: '2027-11-02T10:00:00.000Z' }];

let ports: FakeLifecyclePorts;
let service: LifecycleService;

beforeEach(() => {
  ports = new FakeLifecyclePorts();
  ports.entitlements = () => SEATS;
  service = new LifecycleService(ports, PRODUCTS);
});

const statusOf = (key: string) => ports.items.get(key)?.status;
const eventNames = () => ports.published.map((p) => p.detailType);

describe('agreement events: correlated through the agreement, or kept until they can be', () => {
  test('an agreement event before any licence event is kept, changes nothing, and is applied when the licence event names its agreement', async () => {
    expect(await service.handle(agreement(CREATED, { time: at(0) }))).toEqual({ result: 'kept-for-later', agreementId: AGREEMENT_ID });
    expect(statusOf(LICENSE_KEY)).toBeUndefined();
    expect(ports.published).toEqual([]);

    const outcome = await service.handle(license(UPDATED, { time: at(0) }));

    expect(outcome).toEqual({ result: 'applied', customerKey: LICENSE_KEY, status: undefined, entitlements: 1 });
    expect(statusOf(LICENSE_KEY)).toBe('subscribed');
    expect(ports.items.get(LICENSE_KEY)).toMatchObject({ agreementId: AGREEMENT_ID, entitlements: SEATS });
    expect(ports.items.get(`agreement#${AGREEMENT_ID}`)).toEqual({ customerKey: `agreement#${AGREEMENT_ID}`, belongsTo: LICENSE_KEY });
    expect(ports.items.has(`kept-agreement#${AGREEMENT_ID}`)).toBe(false);
    expect(eventNames()).toEqual([LIFECYCLE_EVENTS.entitlements, LIFECYCLE_EVENTS.subscribed]);
  });

  test('several kept events (created, ended) are all applied, in version order whatever the arrival order, and the end flushes usage', async () => {
    await service.handle(agreement(ENDED, { time: at(7200) }));
    await service.handle(agreement(CREATED, { time: at(0) }));
    expect(ports.items.get(`kept-agreement#${AGREEMENT_ID}`)?.signals).toHaveLength(2);

    await service.handle(license(UPDATED, { time: at(0) }));

    expect(ports.items.get(LICENSE_KEY)).toMatchObject({ status: 'unsubscribe-pending', finalUsageUntil: new Date(Date.parse(at(10800))).toISOString() });
    expect(ports.flushed).toEqual([LICENSE_KEY]);
    // The older "created" came second and changed nothing.
    expect(eventNames()).toEqual([LIFECYCLE_EVENTS.entitlements, LIFECYCLE_EVENTS['unsubscribe-pending']]);
  });

  test('once a licence event named the agreement, its agreement events are applied at once', async () => {
    await service.handle(license(UPDATED, { time: at(0) }));
    ports.published.length = 0;

    expect(await service.handle(agreement(ENDED, { time: at(60) }))).toMatchObject({ result: 'applied', customerKey: LICENSE_KEY, status: 'unsubscribe-pending' });
    expect(eventNames()).toEqual([LIFECYCLE_EVENTS['unsubscribe-pending']]);
    expect(ports.flushed).toEqual([LICENSE_KEY]);
  });

  test('an agreement of an account with exactly one customer (registered) is matched to it, but not remembered: a guess', async () => {
    ports.register(LICENSE_IDENTITY, { freeTrial: false, at: at(0) });

    expect(await service.handle(agreement(CREATED, { time: at(0) }))).toMatchObject({ result: 'applied', customerKey: LICENSE_KEY, status: 'subscribed' });
    expect(ports.items.has(`agreement#${AGREEMENT_ID}`)).toBe(false);
    expect(ports.items.get(LICENSE_KEY)?.agreementId).toBeUndefined();
  });

  test("an end is never guessed: an account's only customer, its agreement unknown, waits for the licence event", async () => {
    ports.register(LICENSE_IDENTITY, { freeTrial: false, at: at(0) });
    await service.handle(agreement(CREATED, { time: at(0) }));

    // Perhaps a second licence of the account, whose licence event has not arrived: not applied.
    expect(await service.handle(agreement(ENDED, { time: at(60) }))).toEqual({ result: 'kept-for-later', agreementId: AGREEMENT_ID });
    expect(statusOf(LICENSE_KEY)).toBe('subscribed');
    expect(ports.flushed).toEqual([]);

    // The licence event names the agreement: the kept end is applied to its customer.
    await service.handle(license(UPDATED, { time: at(0) }));
    expect(statusOf(LICENSE_KEY)).toBe('unsubscribe-pending');
    expect(ports.flushed).toEqual([LICENSE_KEY]);
  });

  test('an account with two licences (Concurrent Agreements): its agreement events are kept, not guessed', async () => {
    ports.register(LICENSE_IDENTITY, { freeTrial: false, at: at(0) });
    const second = 'arn:aws:license-manager::999988887777:license:l-ffffffffffffffffffffffffffffffff';
    ports.register({ ...LICENSE_IDENTITY, customerKey: 'license#l-ffffffffffffffffffffffffffffffff', licenseArn: second }, { freeTrial: false, at: at(0) });

    expect(await service.handle(agreement(ENDED, { time: at(60) }))).toEqual({ result: 'kept-for-later', agreementId: AGREEMENT_ID });
    expect(statusOf(LICENSE_KEY)).toBeUndefined();
    expect(ports.flushed).toEqual([]);
  });

  test("a new agreement of an account whose only customer belongs to another agreement is kept, not applied to that customer", async () => {
    // The account's first licence, its agreement known from its licence event.
    ports.register(LICENSE_IDENTITY, { freeTrial: false, at: at(0) });
    await service.handle(license(UPDATED, { time: at(0) }));
    await service.handle(agreement(CREATED, { time: at(0) }));
    expect(statusOf(LICENSE_KEY)).toBe('subscribed');
    ports.flushed.length = 0;

    // The same account buys again (a second agreement, a second licence); the agreement events come first.
    const secondAgreement = 'agmt-second000000000000000000';
    const secondLicense = 'aws:license-manager::999988887777:license:l-22222222222222222222222222222222';
    expect(await service.handle(agreement(CREATED, { agreementId: secondAgreement, time: at(3600) }))).toMatchObject({ result: 'kept-for-later' });
    expect(await service.handle(agreement(ENDED, { agreementId: secondAgreement, time: at(7200) }))).toMatchObject({ result: 'kept-for-later' });

    // The first licence is untouched: still subscribed, its usage not flushed.
    expect(statusOf(LICENSE_KEY)).toBe('subscribed');
    expect(ports.flushed).toEqual([]);

    // The second licence's event arrives: the kept events go to it.
    await service.handle(license(UPDATED, { agreementId: secondAgreement, licenseArn: secondLicense, time: at(3600) }));
    expect(statusOf('license#l-22222222222222222222222222222222')).toBe('unsubscribe-pending');
    expect(statusOf(LICENSE_KEY)).toBe('subscribed');
  });

  test('a renewal (the old agreement ended RENEWED after its successor was created, on the same licence): the customer stays subscribed, nothing flushed', async () => {
    ports.register(LICENSE_IDENTITY, { freeTrial: false, at: at(0) });
    await service.handle(license(UPDATED, { time: at(0) }));
    await service.handle(agreement(CREATED, { time: at(0) }));
    ports.flushed.length = 0;
    const renewal = 'agmt-renewal0000000000000000000';
    await service.handle(agreement(CREATED, { agreementId: renewal, intent: 'RENEW', time: at(3600) }));
    await service.handle(license(UPDATED, { agreementId: renewal, time: at(3600) }));

    // The old agreement's end comes a second later.
    await service.handle(agreement(ENDED, { status: 'RENEWED', time: at(3601) }));

    expect(statusOf(LICENSE_KEY)).toBe('subscribed');
    expect(ports.flushed).toEqual([]);
    expect(eventNames()).not.toContain(LIFECYCLE_EVENTS['unsubscribe-pending']);
    // A real end still ends it.
    await service.handle(agreement(ENDED, { agreementId: renewal, status: 'CANCELLED', time: at(7200) }));
    expect(statusOf(LICENSE_KEY)).toBe('unsubscribe-pending');
    expect(ports.flushed).toEqual([LICENSE_KEY]);
  });

  test('an agreement event and its licence event handled at the same time (two invocations): the agreement event is not stranded', async () => {
    // The agreement event finds no customer; before it keeps itself, the licence event is handled
    // completely (and finds nothing kept yet).
    const lookUp = ports.customerKeyForAgreement.bind(ports);
    let interleaved = false;
    ports.customerKeyForAgreement = async (agreementId) => {
      const answer = await lookUp(agreementId);
      if (!interleaved) {
        interleaved = true;
        await service.handle(license(UPDATED, { time: at(0) }));
      }
      return answer;
    };

    // Without acceptor, so the account cannot help.
    await service.handle(agreement(CREATED, { time: at(0), acceptorAccountId: null }));

    expect(statusOf(LICENSE_KEY)).toBe('subscribed');
    expect(eventNames()).toContain(LIFECYCLE_EVENTS.subscribed);
    expect(ports.items.has(`kept-agreement#${AGREEMENT_ID}`)).toBe(false);
  });

  test('a licence event without agreement id leaves kept agreement events kept', async () => {
    await service.handle(agreement(CREATED, { time: at(0) }));
    await service.handle(license(UPDATED, { time: at(0), agreementId: null }));
    expect(ports.items.get(`kept-agreement#${AGREEMENT_ID}`)?.signals).toHaveLength(1);
    expect(statusOf(LICENSE_KEY)).toBeUndefined();
  });
});

describe('newer wins: an older or repeated event never overwrites a newer state', () => {
  test('License Deprovisioned, then the older Agreement Created and Ended: still unsubscribed, nothing published or flushed again', async () => {
    await service.handle(license(UPDATED, { time: at(0) }));
    await service.handle(license(DEPROVISIONED, { time: at(7200) }));
    const published = ports.published.length;
    const before = structuredClone(ports.items.get(LICENSE_KEY));

    expect(await service.handle(agreement(CREATED, { time: at(0) }))).toEqual({ result: 'stale', customerKey: LICENSE_KEY });
    expect(await service.handle(agreement(ENDED, { time: at(3600) }))).toEqual({ result: 'stale', customerKey: LICENSE_KEY });

    expect(ports.items.get(LICENSE_KEY)).toEqual(before);
    expect(ports.published).toHaveLength(published);
    expect(ports.flushed).toEqual([LICENSE_KEY]);
  });

  test('the same event delivered twice: the state changes once; its provisioning event and flush are repeated (at least once)', async () => {
    await service.handle(license(UPDATED, { time: at(0) }));
    const ended = agreementEvent(ENDED, { time: at(60) });

    expect(await service.handle(signalFromEventBridge(ended))).toMatchObject({ result: 'applied' });
    const stored = structuredClone(ports.items.get(LICENSE_KEY));
    expect(await service.handle(signalFromEventBridge(structuredClone(ended)))).toEqual({ result: 'stale', customerKey: LICENSE_KEY });

    expect(ports.items.get(LICENSE_KEY)).toEqual(stored);
    expect(eventNames().filter((n) => n === LIFECYCLE_EVENTS['unsubscribe-pending'])).toHaveLength(2);
    expect(ports.flushed).toEqual([LICENSE_KEY, LICENSE_KEY]);
  });

  test('a licence update (legacy: subscribe-success) stores, once, an instant the licence was active: a second after the notification', async () => {
    await service.handle(license(UPDATED, { time: at(0) }));
    await service.handle(license(UPDATED, { time: at(600) }));
    await service.handle(license(DEPROVISIONED, { time: at(3600) }));
    expect(ports.items.get(LICENSE_KEY)?.activeSince).toBe(new Date(Date.parse(at(1))).toISOString());
    await service.handle(legacy('subscribe-success', { time: at(0) }));
    expect([...ports.items.values()].filter((item) => item.identityMode === 'legacy').map((item) => item.activeSince)).toEqual([new Date(Date.parse(at(1))).toISOString()]);
  });

  test('the flush is due 5 minutes after access ended by default, or after the delay configured', async () => {
    await service.handle(license(UPDATED, { time: at(0) }));
    await service.handle(license(DEPROVISIONED, { time: at(3600) }));
    const iso = (text: string) => new Date(text).toISOString();
    expect(ports.flushesDue).toEqual([iso(at(3600 + 300))]);

    const quick = new LifecycleService(ports, PRODUCTS, { finalUsageDelaySeconds: 20 });
    await quick.handle(legacy('subscribe-success', { time: at(0) }));
    await quick.handle(legacy('unsubscribe-pending', { time: at(7200) }));
    expect(ports.flushesDue).toEqual([iso(at(3600 + 300)), iso(at(7200 + 20))]);
    // Each flush names the ending it came from, as stored: a later change withdraws it.
    expect(ports.flushVersions).toEqual([ports.items.get(LICENSE_KEY)?.statusVersion, expect.stringMatching(/\|/)]);
    expect(ports.flushVersions[0]).toMatch(/\|/);
  });

  test('an agreement ending in the second half of an hour also schedules a last call for the next hour, from the same ending', async () => {
    await service.handle(license(UPDATED, { time: at(0) }));
    await service.handle(agreement(ENDED, { time: at(3600 + 45 * 60) }));
    const iso = (text: string) => new Date(text).toISOString();
    // 11:45 ended: 11:50 seals 11:00; 12:15 (half an hour before the window closes) seals 12:00.
    expect(ports.flushesDue).toEqual([iso(at(3600 + 50 * 60)), iso(at(7200 + 15 * 60))]);
    expect(ports.flushVersions).toEqual([ports.items.get(LICENSE_KEY)?.statusVersion, ports.items.get(LICENSE_KEY)?.statusVersion]);
  });

  test('a retry after the change was stored but the flush failed flushes (the final usage is not left to the schedule)', async () => {
    await service.handle(license(UPDATED, { time: at(0) }));
    const flushUsage = ports.flushUsage.bind(ports);
    ports.flushUsage = async () => {
      throw new Error('Lambda Invoke: TooManyRequestsException');
    };
    const deprovisioned = licenseEvent(DEPROVISIONED, { time: at(3600) });
    await expect(service.handle(signalFromEventBridge(deprovisioned))).rejects.toThrow('TooManyRequestsException');
    expect(statusOf(LICENSE_KEY)).toBe('unsubscribed');
    expect(ports.flushed).toEqual([]);

    // EventBridge retries the same event.
    ports.flushUsage = flushUsage;
    await service.handle(signalFromEventBridge(structuredClone(deprovisioned)));

    expect(ports.flushed).toEqual([LICENSE_KEY]);
    expect(eventNames().at(-1)).toBe(LIFECYCLE_EVENTS.unsubscribed);
  });

  test('a retry after publishing failed publishes the transition', async () => {
    const publish = ports.publish.bind(ports);
    ports.publish = async () => {
      throw new Error('EventBridge PutEvents: ThrottlingException');
    };
    const subscribed = snsBody(legacyMessage('subscribe-success'), { timestamp: at(0) });
    await expect(service.handle(signalFromSnsEnvelope(subscribed))).rejects.toThrow('ThrottlingException');

    ports.publish = publish;
    await service.handle(signalFromSnsEnvelope(subscribed));
    expect(eventNames()).toEqual([LIFECYCLE_EVENTS.subscribed]);
  });

  test('kept agreement events survive a failure while they are applied, and are applied on the retry', async () => {
    await service.handle(agreement(ENDED, { time: at(3600) }));
    const flushUsage = ports.flushUsage.bind(ports);
    ports.flushUsage = async () => {
      throw new Error('DynamoDB: InternalServerError');
    };
    const updated = licenseEvent(UPDATED, { time: at(0) });
    await expect(service.handle(signalFromEventBridge(updated))).rejects.toThrow('InternalServerError');
    expect(ports.items.get(`kept-agreement#${AGREEMENT_ID}`)?.signals).toHaveLength(1);

    ports.flushUsage = flushUsage;
    await service.handle(signalFromEventBridge(structuredClone(updated)));

    expect(statusOf(LICENSE_KEY)).toBe('unsubscribe-pending');
    expect(ports.flushed).toEqual([LICENSE_KEY]);
    expect(ports.items.has(`kept-agreement#${AGREEMENT_ID}`)).toBe(false);
  });

  test('an older licence update does not replace newer entitlements', async () => {
    ports.entitlements = () => [{ dimension: 'seats', value: { IntegerValue: 20 } }];
    await service.handle(license(UPDATED, { time: at(3600), id: 'newer' }));
    ports.entitlements = () => [{ dimension: 'seats', value: { IntegerValue: 5 } }];

    expect(await service.handle(license(UPDATED, { time: at(0), id: 'older' }))).toEqual({ result: 'stale', customerKey: LICENSE_KEY });
    expect(ports.items.get(LICENSE_KEY)?.entitlements).toEqual([{ dimension: 'seats', value: { IntegerValue: 20 } }]);
    expect(eventNames()).toEqual([LIFECYCLE_EVENTS.entitlements]);
  });

  test('two licence updates in the same second (EventBridge times have whole seconds): the later read is stored, whatever the event ids', async () => {
    for (const [first, second] of [
      ['evt-zzzz', 'evt-aaaa'],
      ['evt-aaaa', 'evt-zzzz'],
    ]) {
      const fresh = new FakeLifecyclePorts();
      const s = new LifecycleService(fresh, PRODUCTS);
      fresh.entitlements = () => [];
      await s.handle(license(UPDATED, { time: at(0), id: first }));
      fresh.entitlements = () => SEATS;
      expect(await s.handle(license(UPDATED, { time: at(0), id: second }))).toMatchObject({ result: 'applied', entitlements: 1 });
      expect(fresh.items.get(LICENSE_KEY)?.entitlements).toEqual(SEATS);
    }
  });

  test('two changes at the same second: the one further along the lifecycle wins in either order', async () => {
    for (const order of [
      [legacy('subscribe-success', { time: at(0), messageId: 'm-sub' }), legacy('unsubscribe-pending', { time: at(0), messageId: 'm-unsub' })],
      [legacy('unsubscribe-pending', { time: at(0), messageId: 'm-unsub' }), legacy('subscribe-success', { time: at(0), messageId: 'm-sub' })],
    ]) {
      const fresh = new FakeLifecyclePorts();
      const s = new LifecycleService(fresh, PRODUCTS);
      for (const signal of order) await s.handle(signal);
      expect(fresh.items.get(LEGACY_KEY)?.status).toBe('unsubscribe-pending');
    }
  });
});

describe('every transition publishes its provisioning event', () => {
  test('licence mode: Subscribed, Entitlements Updated, Unsubscribe Pending, Unsubscribed, with the customer identifiers', async () => {
    ports.register(LICENSE_IDENTITY, { freeTrial: false, at: at(0) });
    await service.handle(agreement(CREATED, { time: at(0) }));
    await service.handle(license(UPDATED, { time: at(0) }));
    await service.handle(agreement(AMENDED, { time: at(600) }));
    await service.handle(agreement(ENDED, { time: at(3600) }));
    await service.handle(license(DEPROVISIONED, { time: at(7200) }));

    const identifiers = { customerKey: LICENSE_KEY, productCode: PRODUCT_CODE, customerAWSAccountId: ACCOUNT, licenseArn: LICENSE_ARN };
    expect(ports.published).toEqual([
      { detailType: 'Marketplace Customer Subscribed', detail: expect.objectContaining({ ...identifiers, status: 'subscribed', eventTime: new Date(at(0)).toISOString() }) },
      { detailType: 'Marketplace Customer Entitlements Updated', detail: expect.objectContaining({ ...identifiers, entitlements: SEATS }) },
      { detailType: 'Marketplace Customer Subscribed', detail: expect.objectContaining({ ...identifiers, status: 'subscribed' }) },
      { detailType: 'Marketplace Customer Entitlements Updated', detail: expect.objectContaining({ ...identifiers, entitlements: SEATS }) },
      {
        detailType: 'Marketplace Customer Unsubscribe Pending',
        detail: expect.objectContaining({ ...identifiers, status: 'unsubscribe-pending', finalUsageUntil: new Date(at(7200)).toISOString() }),
      },
      {
        detailType: 'Marketplace Customer Unsubscribed',
        detail: expect.objectContaining({ ...identifiers, status: 'unsubscribed', finalUsageUntil: new Date(at(10800)).toISOString() }),
      },
    ]);
    // Access ended twice (agreement ended, licence deprovisioned): the usage is flushed each time.
    expect(ports.flushed).toEqual([LICENSE_KEY, LICENSE_KEY]);
    expect(ports.entitlementCalls).toEqual([
      expect.objectContaining({ productCode: PRODUCT_CODE, licenseArn: LICENSE_ARN }),
      expect.objectContaining({ productCode: PRODUCT_CODE, licenseArn: LICENSE_ARN }),
    ]);
  });

  test('the events of a buyer who has not registered yet still name the product and the licence', async () => {
    await service.handle(agreement(CREATED, { time: at(0) }));
    await service.handle(license(UPDATED, { time: at(0) }));
    await service.handle(license(DEPROVISIONED, { time: at(3600) }));

    for (const { detailType, detail } of ports.published) {
      expect({ detailType, ...detail }).toMatchObject({ detailType, customerKey: LICENSE_KEY, productCode: PRODUCT_CODE, licenseArn: LICENSE_ARN });
    }
    expect(eventNames()).toEqual([LIFECYCLE_EVENTS.entitlements, LIFECYCLE_EVENTS.subscribed, LIFECYCLE_EVENTS.unsubscribed]);
  });

  test('legacy: Subscribed (free trial from the string "true"), Entitlements Updated, Unsubscribe Pending, Unsubscribed; Subscription Failed', async () => {
    await service.handle(legacy('subscribe-success', { time: at(0), isFreeTrialTermPresent: 'true' }));
    await service.handle(legacy('entitlement-updated', { time: at(60) }));
    await service.handle(legacy('unsubscribe-pending', { time: at(3600) }));
    await service.handle(legacy('unsubscribe-success', { time: at(7200) }));

    const identifiers = { customerKey: LEGACY_KEY, productCode: LEGACY_PRODUCT_CODE, customerIdentifier: CUSTOMER_IDENTIFIER };
    expect(ports.published).toEqual([
      { detailType: 'Marketplace Customer Subscribed', detail: expect.objectContaining({ ...identifiers, status: 'subscribed', freeTrial: true }) },
      { detailType: 'Marketplace Customer Entitlements Updated', detail: expect.objectContaining({ ...identifiers, entitlements: SEATS }) },
      { detailType: 'Marketplace Customer Unsubscribe Pending', detail: expect.objectContaining({ ...identifiers, status: 'unsubscribe-pending' }) },
      { detailType: 'Marketplace Customer Unsubscribed', detail: expect.objectContaining({ ...identifiers, status: 'unsubscribed', finalUsageUntil: new Date(at(7200)).toISOString() }) },
    ]);
    expect(ports.items.get(LEGACY_KEY)).toMatchObject({ status: 'unsubscribed', freeTrial: true, identityMode: 'legacy', customerIdentifier: CUSTOMER_IDENTIFIER });
    expect(ports.entitlementCalls).toEqual([expect.objectContaining({ productCode: LEGACY_PRODUCT_CODE, customerIdentifier: CUSTOMER_IDENTIFIER })]);
    expect(ports.flushed).toEqual([LEGACY_KEY, LEGACY_KEY]);

    const other = legacyMessage('subscribe-fail', { customerIdentifier: 'FAILED00001' });
    await service.handle(signalFromSnsEnvelope(snsBody(other)));
    expect(ports.published.at(-1)).toEqual({
      detailType: 'Marketplace Customer Subscription Failed',
      detail: expect.objectContaining({ customerKey: `legacy#${LEGACY_PRODUCT_CODE}#FAILED00001`, status: 'failed' }),
    });
  });

  test('a re-subscribe before unsubscribe-success (subscribe-success replaces it): subscribed again, published again', async () => {
    await service.handle(legacy('subscribe-success', { time: at(0) }));
    await service.handle(legacy('unsubscribe-pending', { time: at(3600) }));
    await service.handle(legacy('subscribe-success', { time: at(5400) }));

    expect(ports.items.get(LEGACY_KEY)).toMatchObject({ status: 'subscribed' });
    expect(ports.items.get(LEGACY_KEY)?.finalUsageUntil).toBeUndefined();
    expect(eventNames()).toEqual([LIFECYCLE_EVENTS.subscribed, LIFECYCLE_EVENTS['unsubscribe-pending'], LIFECYCLE_EVENTS.subscribed]);
  });

  test('a stale change publishes nothing and flushes nothing', async () => {
    await service.handle(legacy('unsubscribe-success', { time: at(7200) }));
    const before = ports.published.length;
    expect(await service.handle(legacy('unsubscribe-pending', { time: at(3600) }))).toEqual({ result: 'stale', customerKey: LEGACY_KEY });
    expect(ports.published).toHaveLength(before);
    expect(ports.flushed).toEqual([LEGACY_KEY]);
  });
});

describe('what the service does not touch', () => {
  test('a licence event of a product metered as legacy is ignored (its lifecycle is the SNS one): no license-mode customer is made', async () => {
    for (const detailType of [UPDATED, DEPROVISIONED] as const) {
      expect(await service.handle(license(detailType, { productCode: LEGACY_PRODUCT_CODE }))).toEqual({
        result: 'ignored',
        reason: `product ${LEGACY_PRODUCT_CODE} is metered as a legacy product: its lifecycle comes from its SNS topics`,
      });
    }
    expect(ports.items.size).toBe(0);
    expect(ports.published).toEqual([]);
    expect(ports.flushed).toEqual([]);
  });

  test('a licence or legacy event of a product this stack does not serve is ignored', async () => {
    expect(await service.handle(license(DEPROVISIONED, { productCode: 'someone-elses' }))).toEqual({
      result: 'ignored',
      reason: 'product someone-elses is not served by this stack',
    });
    expect(await service.handle(legacy('unsubscribe-success', { productCode: 'someone-elses' }))).toMatchObject({ result: 'ignored' });
    expect(ports.items.size).toBe(0);
    expect(ports.published).toEqual([]);
    expect(ports.flushed).toEqual([]);
  });

});
