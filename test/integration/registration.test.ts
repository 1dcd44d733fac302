/**
 * Buyer registration end to end against real components: the AWS Marketplace simulator (real HTTP,
 * real `@aws-sdk/client-marketplace-metering` with its standard retries, a frozen clock), DynamoDB
 * Local holding the Customers table, and our handler behind the local API Gateway stand-in, driven
 * over HTTP with form bodies encoded as a browser encodes them.
 */
import { UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { verifyRegistrationReference } from '../../lambda/core/registration/registration-reference';
import { DETAILS_SUBMITTED_EVENT, REGISTERED_EVENT } from '../../lambda/core/registration/registration-service';
import { ProductConfig } from '../../lambda/core/product-config';
import { RegistrationLog } from '../../lambda/registration/http';
import { LocalApiServer, startLocalApiServer } from '../../local/api-gateway-server';
import { createLocalRegistration, LocalRegistration } from '../../local/local-registration';
import { RunningSimulator, SimulatorClock, startMarketplaceSimulator } from '../../local/simulator';
import { requireJava, useDynamoDbLocal } from '../support/local-services';
import { simulatorAdmin } from '../support/metering-environment';

requireJava();
const dynamoDb = useDynamoDbLocal();

const T0 = new Date('2026-11-02T10:20:00Z');
const SECRET = 'integration-test-reference-secret-0123456789';
const TOKEN_FIELD = 'x-amzn-marketplace-token';
const OFFER_TYPE_FIELD = 'x-amzn-marketplace-offer-type';
/** What Chromium sends when it submits a form. */
const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8';

const LICENSE_PRODUCT: ProductConfig = {
  productCode: 'reg-license-product',
  identityMode: 'license',
  dimensions: ['requests'],
  displayName: 'Registration Test Product',
  productUrl: 'https://app.example.com/',
};
const LEGACY_PRODUCT: ProductConfig = { productCode: 'reg-legacy-product', identityMode: 'legacy', dimensions: ['requests'] };
const ONBOARDING_PRODUCT: ProductConfig = {
  productCode: 'reg-onboarding-product',
  identityMode: 'license',
  dimensions: ['requests'],
  onboardingUrl: 'https://app.example.com/welcome?from=marketplace',
};
/** Listed on the simulator (so its tokens resolve) but not served by this stack. */
const FOREIGN_PRODUCT_CODE = 'someone-elses-product';

const clock = new SimulatorClock({ start: T0, frozen: true });
let simulator: RunningSimulator | undefined;
let registration: LocalRegistration | undefined;
let api: LocalApiServer | undefined;
const logLines: { level: string; message: string; attributes: Record<string, unknown> }[] = [];
const log: RegistrationLog = {
  info: (message, attributes) => logLines.push({ level: 'info', message, attributes }),
  error: (message, attributes) => logLines.push({ level: 'error', message, attributes }),
};

beforeAll(async () => {
  simulator = await startMarketplaceSimulator({ port: 0, clock, config: { rateLimitPerSecond: 0, tokenLifetimeSeconds: 4 * 3600 } });
  registration = await createLocalRegistration({
    simulatorUrl: simulator.url,
    dynamoDbEndpoint: dynamoDb.endpoint,
    products: [LICENSE_PRODUCT, LEGACY_PRODUCT, ONBOARDING_PRODUCT],
    referenceSecret: SECRET,
    log,
  });
  api = await startLocalApiServer({ routes: registration.routes });
}, 60_000);

afterAll(async () => {
  await Promise.allSettled([api?.stop(), simulator?.stop()]);
  registration?.documents.destroy();
});

const running = () => {
  if (!simulator || !registration || !api) throw new Error('The simulator, the registration or the local API did not start (see beforeAll)');
  return { simulator, registration, api };
};

beforeEach(async () => {
  await admin('POST', '/_admin/reset');
  await admin('POST', '/_admin/config', { rateLimitPerSecond: 0, tokenLifetimeSeconds: 4 * 3600 });
  for (const product of [LICENSE_PRODUCT, LEGACY_PRODUCT, ONBOARDING_PRODUCT]) {
    await admin('POST', '/_admin/products', { productCode: product.productCode, identityMode: product.identityMode, dimensions: product.dimensions });
  }
  await admin('POST', '/_admin/products', { productCode: FOREIGN_PRODUCT_CODE, identityMode: 'license', dimensions: ['requests'] });
  running().registration.events.length = 0;
  logLines.length = 0;
});

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

function admin<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  return simulatorAdmin<T>(running().simulator.url, method, path, body);
}

interface SimCustomer {
  customerAWSAccountId: string;
  licenseArn: string;
  customerIdentifier?: string;
  productCode: string;
  registrationToken: string;
}

let accountCounter = 0;
/** A new buyer of `productCode` on the simulator, with a fresh account id. */
function subscribe(productCode: string, extra: { freeTrial?: boolean; registrationToken?: string } = {}): Promise<SimCustomer> {
  const customerAWSAccountId = String(700000000000 + process.pid * 1000 + ++accountCounter).padStart(12, '0').slice(-12);
  return admin('POST', '/_admin/customers', { productCode, customerAWSAccountId, ...extra });
}

const licenseIdOf = (arn: string) => /(l-[A-Za-z0-9]+)$/.exec(arn)![1];
const licenseKey = (customer: SimCustomer) => `license#${licenseIdOf(customer.licenseArn)}`;

interface HttpAnswer {
  status: number;
  headers: Headers;
  text: string;
  json: () => any;
}

const usedTokens: string[] = [];

/** POSTs a form as a browser does (application/x-www-form-urlencoded, the WHATWG serializer). */
async function postForm(path: string, fields: Record<string, string>, accept = BROWSER_ACCEPT): Promise<HttpAnswer> {
  const response = await fetch(`${running().api.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept },
    body: new URLSearchParams(fields).toString(),
    redirect: 'manual',
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: () => JSON.parse(text) };
}

/** The buyer arriving from AWS Marketplace with a token; afterwards, the token must be nowhere in the logs. */
async function register(token: string, options: { offerType?: string; accept?: string } = {}): Promise<HttpAnswer> {
  usedTokens.push(token);
  const fields: Record<string, string> = { [TOKEN_FIELD]: token };
  if (options.offerType) fields[OFFER_TYPE_FIELD] = options.offerType;
  const answer = await postForm('/register', fields, options.accept);
  expectNoTokenInLogs();
  return answer;
}

function expectNoTokenInLogs(): void {
  const text = JSON.stringify(logLines);
  for (const token of usedTokens) {
    expect(text).not.toContain(token);
    expect(text).not.toContain(encodeURIComponent(token));
  }
}

const referenceIn = (page: string): string => {
  const match = /<input type="hidden" name="reference" value="([^"]+)">/.exec(page);
  if (!match) throw new Error(`no reference in the page:\n${page}`);
  return match[1];
};

/** Every item of the Customers table for an AWS account, read with the plain DynamoDB client. */
async function itemsOf(customerAWSAccountId: string): Promise<Record<string, any>[]> {
  const result = await DynamoDBDocumentClient.from(dynamoDb.client).send(
    new ScanCommand({
      TableName: running().registration.tableName,
      FilterExpression: 'customerAWSAccountId = :account',
      ExpressionAttributeValues: { ':account': customerAWSAccountId },
      ConsistentRead: true,
    }),
  );
  return result.Items ?? [];
}

async function onlyItemOf(customer: SimCustomer): Promise<Record<string, any>> {
  const items = await itemsOf(customer.customerAWSAccountId);
  expect(items).toHaveLength(1);
  return items[0];
}

async function resolveCalls(): Promise<{ outcome: string; httpStatus: number }[]> {
  return (await admin<{ calls: { outcome: string; httpStatus: number }[] }>('GET', '/_admin/calls?operation=ResolveCustomer')).calls;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

describe('registration against the simulator and DynamoDB Local', () => {
  test('a new customer: 200 contact form carrying a signed reference (never the token), one item with the identity', async () => {
    const buyer = await subscribe(LICENSE_PRODUCT.productCode);
    // The simulator's tokens hold + / = . : _ - : a double decode or a `+`-as-space would break them.
    expect(buyer.registrationToken).toMatch(/[+]/);
    expect(buyer.registrationToken).toMatch(/[/]/);
    expect(buyer.registrationToken).toMatch(/=/);

    const before = Date.now();
    const answer = await register(buyer.registrationToken);
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(answer.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(answer.headers.get('content-security-policy')).not.toContain('unsafe-inline');
    expect(answer.text).toContain('<form method="post" action="/register/details"');
    expect(answer.text).toContain('Welcome to Registration Test Product');
    for (const form of [buyer.registrationToken, encodeURIComponent(buyer.registrationToken), new URLSearchParams({ t: buyer.registrationToken }).toString().slice(2)]) {
      expect(answer.text).not.toContain(form);
    }
    const check = verifyRegistrationReference(referenceIn(answer.text), SECRET);
    expect(check).toMatchObject({ valid: true, reference: { customerKey: licenseKey(buyer), productCode: LICENSE_PRODUCT.productCode } });

    const item = await onlyItemOf(buyer);
    expect(item).toEqual({
      customerKey: licenseKey(buyer),
      productCode: LICENSE_PRODUCT.productCode,
      identityMode: 'license',
      customerAWSAccountId: buyer.customerAWSAccountId,
      licenseArn: buyer.licenseArn,
      freeTrial: false,
      firstRegisteredAt: expect.any(String),
      lastRegisteredAt: expect.any(String),
      registeredEventAt: item.firstRegisteredAt,
      registrationCount: 1,
    });
    expect(item.firstRegisteredAt).toBe(item.lastRegisteredAt);
    expect(Date.parse(item.firstRegisteredAt)).toBeGreaterThanOrEqual(before - 1000);
    expect(Date.parse(item.firstRegisteredAt)).toBeLessThanOrEqual(Date.now() + 1000);

    expect(running().registration.events).toEqual([
      {
        detailType: REGISTERED_EVENT,
        detail: {
          customerKey: licenseKey(buyer),
          productCode: LICENSE_PRODUCT.productCode,
          identityMode: 'license',
          customerAWSAccountId: buyer.customerAWSAccountId,
          licenseArn: buyer.licenseArn,
          customerIdentifier: undefined,
          freeTrial: false,
          firstRegistration: true,
        },
      },
    ]);
    expect(logLines).toContainEqual({ level: 'info', message: 'registered', attributes: expect.objectContaining({ customerKey: licenseKey(buyer) }) });
  });

  test('a token with a literal %2B, + / = and a space survives the form encoding exactly', async () => {
    const token = 'tok+en/with==%2Band %25 literal.v1:_-';
    const buyer = await subscribe(LICENSE_PRODUCT.productCode, { registrationToken: token });
    const answer = await register(token);
    expect(answer.status).toBe(200);
    expect((await onlyItemOf(buyer)).customerKey).toBe(licenseKey(buyer));
    // A corrupted token would have been refused by the simulator: it only knows the exact string.
    expect((await resolveCalls()).map((c) => c.outcome)).toEqual(['Success']);
  });

  test('the same token twice: one item, registrationCount 2, firstRegisteredAt unchanged', async () => {
    const buyer = await subscribe(LICENSE_PRODUCT.productCode);
    expect((await register(buyer.registrationToken)).status).toBe(200);
    const first = await onlyItemOf(buyer);
    await sleep(5);
    expect((await register(buyer.registrationToken)).status).toBe(200);
    const second = await onlyItemOf(buyer);
    expect(second.registrationCount).toBe(2);
    expect(second.firstRegisteredAt).toBe(first.firstRegisteredAt);
    expect(Date.parse(second.lastRegisteredAt)).toBeGreaterThan(Date.parse(first.lastRegisteredAt));
    expect(running().registration.events.map((e) => e.detail.firstRegistration)).toEqual([true, false]);
    // Set once the first Registered event was out: what makes a later registration not the first.
    expect(first.registeredEventAt).toBe(first.firstRegisteredAt);
    expect(second.registeredEventAt).toBe(first.registeredEventAt);
  });

  test('a second token for the same licence: still one item', async () => {
    const buyer = await subscribe(LICENSE_PRODUCT.productCode);
    expect((await register(buyer.registrationToken)).status).toBe(200);
    const first = await onlyItemOf(buyer);
    const { registrationToken: second } = await admin('POST', '/_admin/tokens', { licenseArn: buyer.licenseArn });
    expect(second).not.toBe(buyer.registrationToken);
    expect((await register(second)).status).toBe(200);
    const item = await onlyItemOf(buyer);
    expect(item.customerKey).toBe(licenseKey(buyer));
    expect(item.registrationCount).toBe(2);
    expect(item.firstRegisteredAt).toBe(first.firstRegisteredAt);
  });

  test('re-registration leaves lifecycle fields (status, entitlements, event time) and identity fields untouched', async () => {
    const buyer = await subscribe(LICENSE_PRODUCT.productCode);
    expect((await register(buyer.registrationToken)).status).toBe(200);
    // What the lifecycle handler would have written meanwhile.
    await dynamoDb.client.send(
      new UpdateItemCommand({
        TableName: running().registration.tableName,
        Key: { customerKey: { S: licenseKey(buyer) } },
        UpdateExpression: 'SET #status = :status, #entitlements = :entitlements, #statusEventTime = :time',
        ExpressionAttributeNames: { '#status': 'status', '#entitlements': 'entitlements', '#statusEventTime': 'statusEventTime' },
        ExpressionAttributeValues: {
          ':status': { S: 'unsubscribe-pending' },
          ':entitlements': { L: [{ M: { dimension: { S: 'requests' }, value: { N: '100' } } }] },
          ':time': { S: '2026-11-02T10:30:00.000Z' },
        },
      }),
    );
    const before = await onlyItemOf(buyer);

    const { registrationToken } = await admin('POST', '/_admin/tokens', { licenseArn: buyer.licenseArn });
    expect((await register(registrationToken, { offerType: 'free-trial' })).status).toBe(200);
    const after = await onlyItemOf(buyer);
    expect(after.status).toBe('unsubscribe-pending');
    expect(after.entitlements).toEqual([{ dimension: 'requests', value: 100 }]);
    expect(after.statusEventTime).toBe('2026-11-02T10:30:00.000Z');
    for (const field of ['productCode', 'identityMode', 'customerAWSAccountId', 'licenseArn', 'firstRegisteredAt', 'freeTrial']) {
      expect({ field, value: after[field] }).toEqual({ field, value: before[field] });
    }
    expect(after.registrationCount).toBe(2);
  });

  test('an expired token (simulator clock past 4 h): 400 page sending the buyer back to AWS Marketplace, nothing stored', async () => {
    const buyer = await subscribe(LICENSE_PRODUCT.productCode);
    await admin('POST', '/_admin/clock', { advanceSeconds: 4 * 3600 + 1 });
    const answer = await register(buyer.registrationToken);
    expect(answer.status).toBe(400);
    expect(answer.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(answer.text).toContain('expired');
    expect(answer.text).toContain('Return to AWS Marketplace');
    expect(answer.text).not.toContain('<form');
    expect(await itemsOf(buyer.customerAWSAccountId)).toEqual([]);
    expect(running().registration.events).toEqual([]);
    expect((await resolveCalls()).map((c) => c.outcome)).toEqual(['ExpiredTokenException']);
  });

  test('an invalid token: 400 page, AWS asked once (not retried)', async () => {
    const answer = await register('not-a-token-the-simulator-issued+/=');
    expect(answer.status).toBe(400);
    expect(answer.text).toContain('AWS Marketplace did not recognise this registration');
    expect((await resolveCalls()).map((c) => c.outcome)).toEqual(['InvalidTokenException']);
  });

  test('no token: 400', async () => {
    const answer = await postForm('/register', { something: 'else' });
    expect(answer.status).toBe(400);
    expect(answer.text).toContain('AWS Marketplace');
    expect(await resolveCalls()).toEqual([]);
  });

  describe.each([['ThrottlingException'], ['InternalServiceErrorException']])('%s from ResolveCustomer', (error) => {
    test('on every attempt the SDK makes (3): 503 with Retry-After, nothing stored', async () => {
      const buyer = await subscribe(LICENSE_PRODUCT.productCode);
      await admin('POST', '/_admin/faults', { operation: 'ResolveCustomer', error, count: 3 });
      const answer = await register(buyer.registrationToken);
      expect(answer.status).toBe(503);
      expect(answer.headers.get('retry-after')).toBe('5');
      expect(answer.text).toContain('try again');
      expect((await resolveCalls()).map((c) => c.outcome)).toEqual([error, error, error]);
      expect(await itemsOf(buyer.customerAWSAccountId)).toEqual([]);
      expect(logLines).toContainEqual({ level: 'error', message: 'registration unavailable', attributes: expect.objectContaining({ outcome: 'unavailable' }) });
    });

    test('once: the SDK’s retry succeeds, 200 and stored', async () => {
      const buyer = await subscribe(LICENSE_PRODUCT.productCode);
      await admin('POST', '/_admin/faults', { operation: 'ResolveCustomer', error, count: 1 });
      const answer = await register(buyer.registrationToken);
      expect(answer.status).toBe(200);
      expect((await resolveCalls()).map((c) => c.outcome)).toEqual([error, 'Success']);
      expect((await onlyItemOf(buyer)).registrationCount).toBe(1);
    });
  });

  test('DisabledApiException: 500, not retried, nothing stored', async () => {
    const buyer = await subscribe(LICENSE_PRODUCT.productCode);
    await admin('POST', '/_admin/faults', { operation: 'ResolveCustomer', error: 'DisabledApiException', count: 1 });
    const answer = await register(buyer.registrationToken);
    expect(answer.status).toBe(500);
    expect(answer.text).not.toContain('DisabledApiException');
    expect((await resolveCalls()).map((c) => c.outcome)).toEqual(['DisabledApiException']);
    expect(await itemsOf(buyer.customerAWSAccountId)).toEqual([]);
  });

  test('a product the stack does not serve: 403 naming no internals, nothing stored, nothing announced', async () => {
    const buyer = await subscribe(FOREIGN_PRODUCT_CODE);
    const answer = await register(buyer.registrationToken);
    expect(answer.status).toBe(403);
    expect(answer.text).toContain('Return to AWS Marketplace');
    expect(answer.text).not.toContain(FOREIGN_PRODUCT_CODE);
    expect(answer.text).not.toContain(buyer.customerAWSAccountId);
    expect(await itemsOf(buyer.customerAWSAccountId)).toEqual([]);
    expect(running().registration.events).toEqual([]);
  });

  test('a legacy product: customer key legacy#<productCode>#<CustomerIdentifier>', async () => {
    const buyer = await subscribe(LEGACY_PRODUCT.productCode);
    expect(buyer.customerIdentifier).toEqual(expect.any(String));
    const answer = await register(buyer.registrationToken);
    expect(answer.status).toBe(200);
    const item = await onlyItemOf(buyer);
    expect(item).toMatchObject({
      customerKey: `legacy#${LEGACY_PRODUCT.productCode}#${buyer.customerIdentifier}`,
      identityMode: 'legacy',
      productCode: LEGACY_PRODUCT.productCode,
      customerIdentifier: buyer.customerIdentifier,
      customerAWSAccountId: buyer.customerAWSAccountId,
    });
    expect(verifyRegistrationReference(referenceIn(answer.text), SECRET)).toMatchObject({
      valid: true,
      reference: { customerKey: `legacy#${LEGACY_PRODUCT.productCode}#${buyer.customerIdentifier}` },
    });
  });

  test('a free trial (x-amzn-marketplace-offer-type=free-trial) is recorded and announced', async () => {
    const buyer = await subscribe(LICENSE_PRODUCT.productCode, { freeTrial: true });
    const answer = await register(buyer.registrationToken, { offerType: 'free-trial' });
    expect(answer.status).toBe(200);
    expect((await onlyItemOf(buyer)).freeTrial).toBe(true);
    expect(running().registration.events[0].detail).toMatchObject({ freeTrial: true, customerKey: licenseKey(buyer) });
  });

  test('a product with an onboarding URL: 303 there with the signed reference, never the token', async () => {
    const buyer = await subscribe(ONBOARDING_PRODUCT.productCode);
    const answer = await register(buyer.registrationToken);
    expect(answer.status).toBe(303);
    const location = new URL(answer.headers.get('location')!);
    expect(`${location.origin}${location.pathname}`).toBe('https://app.example.com/welcome');
    expect(location.searchParams.get('from')).toBe('marketplace');
    expect(location.toString()).not.toContain(encodeURIComponent(buyer.registrationToken));
    expect(verifyRegistrationReference(location.searchParams.get('reference')!, SECRET)).toMatchObject({
      valid: true,
      reference: { customerKey: licenseKey(buyer) },
    });
    expect((await onlyItemOf(buyer)).registrationCount).toBe(1);
  });

  test('contact details: posted with the reference from the page, stored, thank-you page, announced without them', async () => {
    const buyer = await subscribe(LICENSE_PRODUCT.productCode);
    const page = await register(buyer.registrationToken);
    const reference = referenceIn(page.text);
    const contact = { company: 'Analytical Engines <Ltd>', name: 'Ada Lovelace', email: 'ada+billing@example.com', phone: '+44 20 7946 0958' };

    const invalid = await postForm('/register/details', { reference, ...contact, email: 'not an e-mail' });
    expect(invalid.status).toBe(400);
    expect(invalid.text).toContain('value="Analytical Engines &lt;Ltd&gt;"');
    expect(referenceIn(invalid.text)).toBe(reference);
    expect((await onlyItemOf(buyer)).contact).toBeUndefined();

    const answer = await postForm('/register/details', { reference, ...contact });
    expect(answer.status).toBe(200);
    expect(answer.text).toContain('Thank you');
    expect(answer.text).toContain('<a href="https://app.example.com/">');
    const item = await onlyItemOf(buyer);
    expect(item.contact).toEqual(contact);
    expect(item.contactUpdatedAt).toEqual(expect.any(String));
    expect(item.registrationCount).toBe(1);

    const events = running().registration.events;
    expect(events.map((e) => e.detailType)).toEqual([REGISTERED_EVENT, DETAILS_SUBMITTED_EVENT]);
    expect(events[1].detail).toEqual({
      customerKey: licenseKey(buyer),
      productCode: LICENSE_PRODUCT.productCode,
      customerAWSAccountId: buyer.customerAWSAccountId,
      licenseArn: buyer.licenseArn,
    });
    const published = JSON.stringify(events);
    const logged = JSON.stringify(logLines);
    for (const value of [contact.email, contact.name, contact.phone, 'Analytical Engines']) {
      expect(published).not.toContain(value);
      expect(logged).not.toContain(value);
    }
  });

  test('contact details with a tampered reference: 400, nothing stored', async () => {
    const buyer = await subscribe(LICENSE_PRODUCT.productCode);
    const reference = referenceIn((await register(buyer.registrationToken)).text);
    const [payload, signature] = reference.split('.');
    const tampered = `${payload}.${signature.startsWith('A') ? 'B' : 'A'}${signature.slice(1)}`;
    const answer = await postForm('/register/details', { reference: tampered, company: 'X', name: 'Y', email: 'y@example.com' });
    expect(answer.status).toBe(400);
    expect((await onlyItemOf(buyer)).contact).toBeUndefined();
  });

  test('Accept: application/json gets JSON, for a form body and for a JSON body, for success and failure', async () => {
    const buyer = await subscribe(LICENSE_PRODUCT.productCode, { freeTrial: true });
    const formAnswer = await register(buyer.registrationToken, { offerType: 'free-trial', accept: 'application/json' });
    expect(formAnswer.status).toBe(200);
    expect(formAnswer.headers.get('content-type')).toBe('application/json');
    const body = formAnswer.json();
    expect(body).toEqual({
      customerKey: licenseKey(buyer),
      productCode: LICENSE_PRODUCT.productCode,
      customerAWSAccountId: buyer.customerAWSAccountId,
      licenseArn: buyer.licenseArn,
      freeTrial: true,
      reference: expect.any(String),
      next: null,
    });
    expect(formAnswer.text).not.toContain(buyer.registrationToken);

    const jsonAnswer = await fetch(`${running().api.url}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ [TOKEN_FIELD]: buyer.registrationToken }),
    });
    expect(jsonAnswer.status).toBe(200);
    expect((await jsonAnswer.json()).customerKey).toBe(licenseKey(buyer));
    expect((await onlyItemOf(buyer)).registrationCount).toBe(2);

    const details = await fetch(`${running().api.url}/register/details`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ reference: body.reference, company: 'Acme', name: 'Ada', email: 'ada@example.com' }),
    });
    expect(details.status).toBe(200);
    expect(await details.json()).toEqual({ customerKey: licenseKey(buyer), productUrl: 'https://app.example.com/' });

    const invalid = await register('unknown-token', { accept: 'application/json' });
    expect(invalid.status).toBe(400);
    expect(invalid.json()).toEqual({ error: 'InvalidRegistrationToken', message: expect.stringContaining('AWS Marketplace') });
  });

  test('GET /register: 200 page; other methods 405; too large 413; other content types 415', async () => {
    const get = await fetch(`${running().api.url}/register`, { headers: { accept: BROWSER_ACCEPT } });
    expect(get.status).toBe(200);
    expect(await get.text()).toContain('AWS Marketplace');
    expect((await fetch(`${running().api.url}/register`, { method: 'PUT' })).status).toBe(405);

    const big = await postForm('/register', { [TOKEN_FIELD]: 'x'.repeat(17 * 1024) });
    expect(big.status).toBe(413);
    const text = await fetch(`${running().api.url}/register`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: `${TOKEN_FIELD}=abc`,
    });
    expect(text.status).toBe(415);
    expect(await resolveCalls()).toEqual([]);
  });
});
