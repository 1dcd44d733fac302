/**
 * ResolveCustomer through the real SDK client: same answer on every call until the token expires,
 * typed InvalidTokenException / ExpiredTokenException, tokens full of characters that break naive decoding.
 */
import {
  ExpiredTokenException,
  InvalidTokenException,
  ResolveCustomerCommand,
} from '@aws-sdk/client-marketplace-metering';
import { TOKEN_SPECIAL_CHARACTERS, rejectionOf, seedWorld, useSimulator } from './helpers';

describe('ResolveCustomer', () => {
  const ctx = useSimulator();

  test('a Concurrent Agreements token resolves to account, product and licence, without CustomerIdentifier', async () => {
    const world = await seedWorld(ctx.admin);
    const out = await ctx.metering.send(new ResolveCustomerCommand({ RegistrationToken: world.alice.registrationToken }));
    expect(out.CustomerAWSAccountId).toBe(world.alice.customerAWSAccountId);
    expect(out.ProductCode).toBe(world.lic.productCode);
    expect(out.LicenseArn).toBe(world.alice.licenseArn);
    expect(out.CustomerIdentifier).toBeUndefined();
  });

  test('a legacy product token also returns the CustomerIdentifier', async () => {
    const world = await seedWorld(ctx.admin);
    expect(world.carol.customerIdentifier).toEqual(expect.any(String));
    const out = await ctx.metering.send(new ResolveCustomerCommand({ RegistrationToken: world.carol.registrationToken }));
    expect(out).toMatchObject({
      CustomerIdentifier: world.carol.customerIdentifier,
      CustomerAWSAccountId: world.carol.customerAWSAccountId,
      ProductCode: world.legacy.productCode,
      LicenseArn: world.carol.licenseArn,
    });
  });

  test('the same token resolves to the same values on every call until it expires', async () => {
    const world = await seedWorld(ctx.admin);
    const token = world.bob.registrationToken;
    const first = await ctx.metering.send(new ResolveCustomerCommand({ RegistrationToken: token }));
    const strip = (o: object) => JSON.parse(JSON.stringify({ ...o, $metadata: undefined }));
    for (let i = 0; i < 3; i++) {
      const again = await ctx.metering.send(new ResolveCustomerCommand({ RegistrationToken: token }));
      expect(strip(again)).toEqual(strip(first));
    }
    await ctx.admin.advanceClock(4 * 3600 - 60); // one minute before the default 4 h lifetime ends
    const late = await ctx.metering.send(new ResolveCustomerCommand({ RegistrationToken: token }));
    expect(strip(late)).toEqual(strip(first));
  });

  test('a token expires after the default 4 hours: ExpiredTokenException, not retried', async () => {
    const world = await seedWorld(ctx.admin);
    // The customer was created at EARLY; issue a fresh token at T0 for it.
    const { registrationToken, expiresAt } = await ctx.admin.createToken({ licenseArn: world.alice.licenseArn });
    expect(new Date(expiresAt).getTime()).toBe((await ctx.admin.clock()).getTime() + 4 * 3600 * 1000);
    await ctx.admin.advanceClock(4 * 3600 + 1);
    const error = await rejectionOf(ctx.metering.send(new ResolveCustomerCommand({ RegistrationToken: registrationToken })));
    expect(error).toBeInstanceOf(ExpiredTokenException);
    expect(error.name).toBe('ExpiredTokenException');
    expect(error.$metadata.httpStatusCode).toBe(400);
    const calls = await ctx.admin.calls('ResolveCustomer');
    expect(calls).toHaveLength(1); // 4xx: the SDK does not retry
    expect(calls[0]).toMatchObject({ operation: 'ResolveCustomer', outcome: 'ExpiredTokenException', httpStatus: 400 });
  });

  test('the token lifetime follows the tokenLifetimeSeconds option', async () => {
    await ctx.admin.setConfig({ tokenLifetimeSeconds: 600 });
    const world = await seedWorld(ctx.admin);
    const { registrationToken, expiresAt } = await ctx.admin.createToken({ licenseArn: world.alice.licenseArn });
    expect(new Date(expiresAt).getTime()).toBe((await ctx.admin.clock()).getTime() + 600 * 1000);
    await ctx.admin.advanceClock(599);
    await expect(ctx.metering.send(new ResolveCustomerCommand({ RegistrationToken: registrationToken }))).resolves.toMatchObject({
      LicenseArn: world.alice.licenseArn,
    });
    await ctx.admin.advanceClock(2);
    const error = await rejectionOf(ctx.metering.send(new ResolveCustomerCommand({ RegistrationToken: registrationToken })));
    expect(error).toBeInstanceOf(ExpiredTokenException);
  });

  test('an unknown token is InvalidTokenException (not retried)', async () => {
    await seedWorld(ctx.admin);
    const error = await rejectionOf(ctx.metering.send(new ResolveCustomerCommand({ RegistrationToken: 'no-such-token' })));
    expect(error).toBeInstanceOf(InvalidTokenException);
    expect(error.name).toBe('InvalidTokenException');
    expect(error.$metadata.httpStatusCode).toBe(400);
    const calls = await ctx.admin.calls('ResolveCustomer');
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ outcome: 'InvalidTokenException', httpStatus: 400 });
  });

  test('generated tokens contain + / = . : _ - and only the exact token resolves (no lenient decoding)', async () => {
    const world = await seedWorld(ctx.admin);
    const token = world.alice.registrationToken;
    for (const character of TOKEN_SPECIAL_CHARACTERS) expect(token).toContain(character);

    // The exact token works ...
    await expect(ctx.metering.send(new ResolveCustomerCommand({ RegistrationToken: token }))).resolves.toMatchObject({
      LicenseArn: world.alice.licenseArn,
    });
    // ... the usual decoding bugs do not.
    const plusAsSpace = token.replace(/\+/g, ' '); // form-decoded twice
    const percentEncoded = encodeURIComponent(token); // never decoded
    for (const mangled of [plusAsSpace, percentEncoded]) {
      const error = await rejectionOf(ctx.metering.send(new ResolveCustomerCommand({ RegistrationToken: mangled })));
      expect(error).toBeInstanceOf(InvalidTokenException);
    }
  });

  test('a form round trip (urlencoded once, decoded once with URLSearchParams) keeps the token intact', async () => {
    const world = await seedWorld(ctx.admin);
    const body = new URLSearchParams({ 'x-amzn-marketplace-token': world.bob.registrationToken }).toString();
    const decoded = new URLSearchParams(body).get('x-amzn-marketplace-token') ?? '';
    const out = await ctx.metering.send(new ResolveCustomerCommand({ RegistrationToken: decoded }));
    expect(out.LicenseArn).toBe(world.bob.licenseArn);
  });

  test('a second token for the same customer resolves to the same customer, and the first keeps working', async () => {
    const world = await seedWorld(ctx.admin);
    const second = await ctx.admin.createToken({ licenseArn: world.alice.licenseArn });
    expect(second.registrationToken).not.toBe(world.alice.registrationToken);
    for (const character of TOKEN_SPECIAL_CHARACTERS) expect(second.registrationToken).toContain(character);
    const viaSecond = await ctx.metering.send(new ResolveCustomerCommand({ RegistrationToken: second.registrationToken }));
    expect(viaSecond).toMatchObject({
      CustomerAWSAccountId: world.alice.customerAWSAccountId,
      LicenseArn: world.alice.licenseArn,
      ProductCode: world.lic.productCode,
    });
    // The legacy flavour of POST /_admin/tokens.
    const legacyToken = await ctx.admin.createToken({ customerIdentifier: world.carol.customerIdentifier ?? '' });
    const viaLegacy = await ctx.metering.send(new ResolveCustomerCommand({ RegistrationToken: legacyToken.registrationToken }));
    expect(viaLegacy.CustomerIdentifier).toBe(world.carol.customerIdentifier);
  });

  test('a registration token given when the customer is created is the one that resolves', async () => {
    const world = await seedWorld(ctx.admin);
    const chosen = 'given+token/with=all.the:odd_chars-1';
    const customer = await ctx.admin.createCustomer({ productCode: world.lic.productCode, registrationToken: chosen });
    expect(customer.registrationToken).toBe(chosen);
    const out = await ctx.metering.send(new ResolveCustomerCommand({ RegistrationToken: chosen }));
    expect(out.LicenseArn).toBe(customer.licenseArn);
    expect(out.CustomerAWSAccountId).toBe(customer.customerAWSAccountId);
  });

  test('one account may hold two licences for the same product; each token resolves to its own licence', async () => {
    const world = await seedWorld(ctx.admin);
    const second = await ctx.admin.createCustomer({ productCode: world.lic.productCode, customerAWSAccountId: world.alice.customerAWSAccountId });
    expect(second.licenseArn).not.toBe(world.alice.licenseArn);
    const a = await ctx.metering.send(new ResolveCustomerCommand({ RegistrationToken: world.alice.registrationToken }));
    const b = await ctx.metering.send(new ResolveCustomerCommand({ RegistrationToken: second.registrationToken }));
    expect(a.CustomerAWSAccountId).toBe(b.CustomerAWSAccountId);
    expect(a.LicenseArn).toBe(world.alice.licenseArn);
    expect(b.LicenseArn).toBe(second.licenseArn);
  });
});
