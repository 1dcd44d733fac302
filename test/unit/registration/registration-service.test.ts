import { createRegistrationReference, verifyRegistrationReference } from '../../../lambda/core/registration/registration-reference';
import {
  DETAILS_SUBMITTED_EVENT,
  REGISTERED_EVENT,
  RegistrationService,
  ResolveCustomerFailure,
  ResolveFailureKind,
  RETRY_AFTER_SECONDS,
} from '../../../lambda/core/registration/registration-service';
import {
  ACCOUNT,
  FakePorts,
  LEGACY_PRODUCT,
  LICENSE_ARN,
  LICENSE_ID,
  LICENSE_PRODUCT,
  NASTY_TOKEN,
  NOW,
  PRODUCTS,
  SECRET,
} from './fake-ports';

const TOKEN = 'x-amzn-marketplace-token';
const OFFER = 'x-amzn-marketplace-offer-type';
const CONTACT = { company: 'Acme Corp', name: 'Ada Lovelace', email: 'ada@example.com', phone: '+1 555 0100' };

function setup(options: { referenceLifetimeSeconds?: number } = {}) {
  const ports = new FakePorts();
  const service = new RegistrationService(ports, { products: PRODUCTS, referenceSecret: SECRET, ...options });
  return { ports, service };
}

/** Registers a licence-mode buyer and returns the reference of the outcome. */
async function registerLicenseBuyer(ports: FakePorts, service: RegistrationService, token = 'token-1'): Promise<string> {
  ports.licenseBuyer(token);
  const outcome = await service.register({ [TOKEN]: token });
  if (outcome.kind !== 'registered') throw new Error(`expected registered, got ${outcome.kind}`);
  return outcome.reference;
}

describe('RegistrationService.register', () => {
  it.each([[{}], [{ [TOKEN]: '' }], [{ [TOKEN]: '   ' }], [{ token: 'abc' }]])('no token in %j: no-token, AWS not called', async (fields) => {
    const { ports, service } = setup();
    expect(await service.register(fields)).toEqual({ kind: 'no-token' });
    expect(ports.resolvedTokens).toEqual([]);
  });

  it('resolves the token exactly as received (no decoding, no re-encoding)', async () => {
    const { ports, service } = setup();
    ports.licenseBuyer(NASTY_TOKEN);
    const outcome = await service.register({ [TOKEN]: NASTY_TOKEN });
    expect(outcome.kind).toBe('registered');
    expect(ports.resolvedTokens).toEqual([NASTY_TOKEN]);
  });

  const failures: [ResolveFailureKind, object][] = [
    ['invalid-token', { kind: 'token-rejected', reason: 'invalid' }],
    ['expired-token', { kind: 'token-rejected', reason: 'expired' }],
    ['throttled', { kind: 'unavailable', retryAfterSeconds: RETRY_AFTER_SECONDS, cause: expect.stringContaining('ThrottlingException') }],
    ['unavailable', { kind: 'unavailable', retryAfterSeconds: RETRY_AFTER_SECONDS, cause: expect.stringContaining('InternalServiceError') }],
    ['disabled', { kind: 'configuration-error', cause: expect.stringContaining('DisabledApiException') }],
  ];
  const messages: Record<ResolveFailureKind, string> = {
    'invalid-token': 'InvalidTokenException',
    'expired-token': 'ExpiredTokenException',
    throttled: 'ThrottlingException',
    unavailable: 'InternalServiceErrorException',
    disabled: 'DisabledApiException',
  };

  it.each(failures)('ResolveCustomer fails with %s: outcome %j, nothing stored or announced', async (kind, expected) => {
    const { ports, service } = setup();
    ports.tokens.set('t', new ResolveCustomerFailure(kind, messages[kind]));
    expect(await service.register({ [TOKEN]: 't' })).toEqual(expected);
    expect(ports.customers.size).toBe(0);
    expect(ports.events).toEqual([]);
  });

  it('lets an unexpected resolver error through (the HTTP layer answers 503)', async () => {
    const { ports, service } = setup();
    ports.tokens.set('t', new TypeError('socket hang up'));
    await expect(service.register({ [TOKEN]: 't' })).rejects.toThrow('socket hang up');
  });

  it('refuses a product the stack does not serve: unknown-product, nothing stored or announced', async () => {
    const { ports, service } = setup();
    ports.tokens.set('t', { productCode: 'someone-elses-product', customerAWSAccountId: ACCOUNT, licenseArn: LICENSE_ARN });
    expect(await service.register({ [TOKEN]: 't' })).toEqual({ kind: 'unknown-product', productCode: 'someone-elses-product' });
    expect(ports.customers.size).toBe(0);
    expect(ports.events).toEqual([]);
  });

  it('license mode: the customer key is the licence id; the identity is what AWS returned', async () => {
    const { ports, service } = setup();
    ports.licenseBuyer('t');
    const outcome = await service.register({ [TOKEN]: 't' });
    expect(outcome).toMatchObject({
      kind: 'registered',
      product: LICENSE_PRODUCT,
      firstRegistration: true,
      freeTrial: false,
      identity: {
        customerKey: `license#${LICENSE_ID}`,
        identityMode: 'license',
        productCode: LICENSE_PRODUCT.productCode,
        customerAWSAccountId: ACCOUNT,
        licenseArn: LICENSE_ARN,
      },
    });
    expect([...ports.customers.keys()]).toEqual([`license#${LICENSE_ID}`]);
  });

  it('legacy mode: the customer key is product code + CustomerIdentifier, even though a licence ARN came back too', async () => {
    const { ports, service } = setup();
    ports.legacyBuyer('t', 'cust-AbC123');
    const outcome = await service.register({ [TOKEN]: 't' });
    expect(outcome).toMatchObject({
      kind: 'registered',
      identity: {
        customerKey: `legacy#${LEGACY_PRODUCT.productCode}#cust-AbC123`,
        identityMode: 'legacy',
        customerIdentifier: 'cust-AbC123',
      },
    });
    expect([...ports.customers.keys()]).toEqual([`legacy#${LEGACY_PRODUCT.productCode}#cust-AbC123`]);
  });

  it('a license-mode product without a LicenseArn from AWS is a configuration error, nothing stored', async () => {
    const { ports, service } = setup();
    ports.tokens.set('t', { productCode: LICENSE_PRODUCT.productCode, customerAWSAccountId: ACCOUNT });
    expect(await service.register({ [TOKEN]: 't' })).toEqual({ kind: 'configuration-error', cause: expect.stringContaining('LicenseArn') });
    expect(ports.customers.size).toBe(0);
  });

  it('a legacy product without a CustomerIdentifier from AWS is a configuration error, nothing stored', async () => {
    const { ports, service } = setup();
    ports.tokens.set('t', { productCode: LEGACY_PRODUCT.productCode, customerAWSAccountId: ACCOUNT, licenseArn: LICENSE_ARN });
    expect(await service.register({ [TOKEN]: 't' })).toEqual({
      kind: 'configuration-error',
      cause: expect.stringContaining('CustomerIdentifier'),
    });
    expect(ports.customers.size).toBe(0);
  });

  it.each([
    ['free-trial', true],
    ['', false],
    ['paid', false],
    ['FREE-TRIAL ', false],
    [undefined, false],
  ])('offer type %j: free trial %s, stored and announced', async (offer, freeTrial) => {
    const { ports, service } = setup();
    ports.licenseBuyer('t');
    const fields: Record<string, string> = { [TOKEN]: 't' };
    if (offer !== undefined) fields[OFFER] = offer;
    expect(await service.register(fields)).toMatchObject({ kind: 'registered', freeTrial });
    expect(ports.customers.get(`license#${LICENSE_ID}`)?.freeTrial).toBe(freeTrial);
    expect(ports.events[0].detail.freeTrial).toBe(freeTrial);
  });

  it('is idempotent: the same token twice, then a second token for the same licence, leave one customer', async () => {
    const { ports, service } = setup();
    ports.licenseBuyer('first');
    ports.licenseBuyer('second');
    const outcomes = [
      await service.register({ [TOKEN]: 'first' }),
      await service.register({ [TOKEN]: 'first' }),
      await service.register({ [TOKEN]: 'second' }),
    ];
    expect(outcomes.map((o) => o.kind === 'registered' && o.firstRegistration)).toEqual([true, false, false]);
    expect(ports.customers.size).toBe(1);
    expect(ports.customers.get(`license#${LICENSE_ID}`)?.registrationCount).toBe(3);
  });

  it('stores the registration at the ports’ clock', async () => {
    const { ports, service } = setup();
    ports.licenseBuyer('t');
    await service.register({ [TOKEN]: 't' });
    expect(ports.customers.get(`license#${LICENSE_ID}`)?.firstRegisteredAt).toEqual(NOW);
  });

  it('announces Marketplace Customer Registered with identifiers only', async () => {
    const { ports, service } = setup();
    ports.licenseBuyer(NASTY_TOKEN);
    await service.register({ [TOKEN]: NASTY_TOKEN, [OFFER]: 'free-trial' });
    expect(ports.events).toEqual([
      {
        detailType: REGISTERED_EVENT,
        detail: {
          customerKey: `license#${LICENSE_ID}`,
          productCode: LICENSE_PRODUCT.productCode,
          identityMode: 'license',
          customerAWSAccountId: ACCOUNT,
          licenseArn: LICENSE_ARN,
          customerIdentifier: undefined,
          freeTrial: true,
          firstRegistration: true,
        },
      },
    ]);
    expect(JSON.stringify(ports.events)).not.toContain('mpt+');
  });

  it('hands back a signed reference to the customer (never the token), valid for the configured lifetime', async () => {
    const { ports, service } = setup({ referenceLifetimeSeconds: 120 });
    ports.licenseBuyer(NASTY_TOKEN);
    const outcome = await service.register({ [TOKEN]: NASTY_TOKEN });
    if (outcome.kind !== 'registered') throw new Error(outcome.kind);
    expect(outcome.reference).not.toContain(NASTY_TOKEN);
    expect(Buffer.from(outcome.reference.split('.')[0], 'base64url').toString()).not.toContain('mpt+');
    expect(verifyRegistrationReference(outcome.reference, SECRET, NOW)).toEqual({
      valid: true,
      reference: {
        customerKey: `license#${LICENSE_ID}`,
        productCode: LICENSE_PRODUCT.productCode,
        customerAWSAccountId: ACCOUNT,
        licenseArn: LICENSE_ARN,
        expiresAt: NOW.getTime() / 1000 + 120,
      },
    });
  });

  it('lets a storage failure through, announcing nothing', async () => {
    const { ports, service } = setup();
    ports.licenseBuyer('t');
    ports.failSave = new Error('ProvisionedThroughputExceededException');
    await expect(service.register({ [TOKEN]: 't' })).rejects.toThrow('ProvisionedThroughputExceededException');
    expect(ports.events).toEqual([]);
  });

  it('a registration whose event could not be published is still the first when the buyer tries again', async () => {
    const { ports, service } = setup();
    ports.licenseBuyer('t');
    ports.failPublish = new Error('EventBridge unavailable');
    await expect(service.register({ [TOKEN]: 't' })).rejects.toThrow('EventBridge unavailable');
    expect(ports.customers.get(`license#${LICENSE_ID}`)?.registeredEventAt).toBeUndefined();

    ports.failPublish = undefined;
    const retry = await service.register({ [TOKEN]: 't' });
    expect(retry.kind === 'registered' && retry.firstRegistration).toBe(true);
    expect(ports.events.map((e) => e.detail.firstRegistration)).toEqual([true]);
    expect(ports.customers.get(`license#${LICENSE_ID}`)?.registeredEventAt).toEqual(ports.clock);

    const again = await service.register({ [TOKEN]: 't' });
    expect(again.kind === 'registered' && again.firstRegistration).toBe(false);
  });
});

describe('RegistrationService.submitDetails', () => {
  it('stores valid details for the referenced customer and announces it with identifiers only', async () => {
    const { ports, service } = setup();
    const reference = await registerLicenseBuyer(ports, service);
    ports.events.length = 0;
    const outcome = await service.submitDetails({ reference, ...CONTACT });
    expect(outcome).toEqual({ kind: 'details-saved', product: LICENSE_PRODUCT, customerKey: `license#${LICENSE_ID}` });
    expect(ports.customers.get(`license#${LICENSE_ID}`)?.contact).toEqual(CONTACT);
    expect(ports.events).toEqual([
      {
        detailType: DETAILS_SUBMITTED_EVENT,
        detail: {
          customerKey: `license#${LICENSE_ID}`,
          productCode: LICENSE_PRODUCT.productCode,
          customerAWSAccountId: ACCOUNT,
          licenseArn: LICENSE_ARN,
        },
      },
    ]);
    const published = JSON.stringify(ports.events);
    for (const value of Object.values(CONTACT)) expect(published).not.toContain(value);
  });

  it('invalid details: the errors and the values back, nothing stored or announced', async () => {
    const { ports, service } = setup();
    const reference = await registerLicenseBuyer(ports, service);
    ports.events.length = 0;
    const outcome = await service.submitDetails({ reference, ...CONTACT, email: 'not-an-email', name: '' });
    expect(outcome).toEqual({
      kind: 'details-invalid',
      product: LICENSE_PRODUCT,
      reference,
      values: { ...CONTACT, email: 'not-an-email', name: '' },
      errors: { email: 'is not a valid e-mail address', name: 'is required' },
    });
    expect(ports.customers.get(`license#${LICENSE_ID}`)?.contact).toBeUndefined();
    expect(ports.events).toEqual([]);
  });

  it.each([
    ['missing', undefined],
    ['garbage', 'garbage'],
    ['signed with another secret', createRegistrationReference(
      { customerKey: `license#${LICENSE_ID}`, productCode: LICENSE_PRODUCT.productCode, customerAWSAccountId: ACCOUNT },
      'another-secret-of-at-least-32-characters',
      NOW,
    )],
  ])('a %s reference is rejected, nothing stored', async (_label, reference) => {
    const { ports, service } = setup();
    await registerLicenseBuyer(ports, service);
    const fields: Record<string, string> = { ...CONTACT };
    if (reference !== undefined) fields.reference = reference;
    expect(await service.submitDetails(fields)).toMatchObject({ kind: 'reference-rejected' });
    expect(ports.customers.get(`license#${LICENSE_ID}`)?.contact).toBeUndefined();
  });

  it('an expired reference is rejected', async () => {
    const { ports, service } = setup({ referenceLifetimeSeconds: 60 });
    const reference = await registerLicenseBuyer(ports, service);
    ports.clock = new Date(NOW.getTime() + 61_000);
    expect(await service.submitDetails({ reference, ...CONTACT })).toEqual({ kind: 'reference-rejected', reason: 'expired' });
  });

  it('a valid reference to a customer that was never stored is rejected', async () => {
    const { service } = setup();
    const reference = createRegistrationReference(
      { customerKey: 'license#l-neverregistered', productCode: LICENSE_PRODUCT.productCode, customerAWSAccountId: ACCOUNT },
      SECRET,
      NOW,
    );
    expect(await service.submitDetails({ reference, ...CONTACT })).toEqual({ kind: 'reference-rejected', reason: 'unknown-customer' });
  });

  it('a valid reference for a product no longer served: unknown-product', async () => {
    const { service } = setup();
    const reference = createRegistrationReference(
      { customerKey: 'license#l-x', productCode: 'retired-product', customerAWSAccountId: ACCOUNT },
      SECRET,
      NOW,
    );
    expect(await service.submitDetails({ reference, ...CONTACT })).toEqual({ kind: 'unknown-product', productCode: 'retired-product' });
  });

  it('submitting again replaces the contact details (one customer)', async () => {
    const { ports, service } = setup();
    const reference = await registerLicenseBuyer(ports, service);
    await service.submitDetails({ reference, ...CONTACT });
    await service.submitDetails({ reference, ...CONTACT, name: 'Grace Hopper' });
    expect(ports.customers.size).toBe(1);
    expect(ports.customers.get(`license#${LICENSE_ID}`)?.contact?.name).toBe('Grace Hopper');
  });
});
