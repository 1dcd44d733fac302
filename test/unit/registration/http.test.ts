import type { APIGatewayProxyEvent } from 'aws-lambda';
import { RegistrationService, ResolveCustomerFailure } from '../../../lambda/core/registration/registration-service';
import { verifyRegistrationReference } from '../../../lambda/core/registration/registration-reference';
import { handleRegistrationRequest, RegistrationLog } from '../../../lambda/registration/http';
import { FakePorts, LICENSE_ID, NASTY_TOKEN, NOW, PRODUCTS, SECRET } from './fake-ports';

const FORM = 'application/x-www-form-urlencoded';
const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
const EMAIL = 'ada.lovelace@example.com';
const CONTACT = { company: 'Analytical Engines Ltd', name: 'Ada Lovelace', email: EMAIL, phone: '+44 20 7946 0958' };

interface Request {
  method?: string;
  resource?: string;
  /** The path the browser sees (stage included). */
  path?: string;
  headers?: Record<string, string>;
  body?: string | null;
  base64?: boolean;
}

/** An API Gateway REST proxy event, as API Gateway builds it (a form body base64-encoded unless told otherwise). */
function event(request: Request): APIGatewayProxyEvent {
  const resource = request.resource ?? '/register';
  const path = request.path ?? `/prod${resource}`;
  const base64 = request.base64 ?? true;
  const body = request.body ?? null;
  return {
    resource,
    path: resource,
    httpMethod: request.method ?? 'POST',
    headers: withDefaultAccept(request.headers ?? {}),
    multiValueHeaders: {},
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    body: body !== null && base64 ? Buffer.from(body).toString('base64') : body,
    isBase64Encoded: body !== null && base64,
    requestContext: { path, stage: 'prod', resourcePath: resource, httpMethod: request.method ?? 'POST' } as APIGatewayProxyEvent['requestContext'],
  };
}

/** A browser's Accept header unless the request names its own (in any letter case). */
function withDefaultAccept(headers: Record<string, string>): Record<string, string> {
  return Object.keys(headers).some((name) => name.toLowerCase() === 'accept') ? headers : { accept: BROWSER_ACCEPT, ...headers };
}

const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
const postForm = (fields: Record<string, string>, extra: Partial<Request> = {}) =>
  event({ ...extra, body: form(fields), headers: { 'Content-Type': FORM, ...extra.headers } });

/** A logger that keeps every call, to check what reached the logs. */
function capturingLog() {
  const calls: { level: string; message: string; attributes: Record<string, unknown> }[] = [];
  const log: RegistrationLog = {
    info: (message, attributes) => calls.push({ level: 'info', message, attributes }),
    error: (message, attributes) => calls.push({ level: 'error', message, attributes }),
  };
  return { log, calls, text: () => JSON.stringify(calls) };
}

function setup() {
  const ports = new FakePorts();
  const service = new RegistrationService(ports, { products: PRODUCTS, referenceSecret: SECRET });
  const logs = capturingLog();
  const handle = (e: APIGatewayProxyEvent, maxBodyBytes = 16 * 1024) => handleRegistrationRequest(e, service, logs.log, { maxBodyBytes });
  return { ports, service, logs, handle };
}

/** Whatever was logged holds none of the buyer's secrets or personal data, in any encoding. */
function expectNothingSensitiveIn(text: string, values: string[]): void {
  for (const value of values) {
    for (const form of new Set([value, encodeURIComponent(value), new URLSearchParams({ v: value }).toString().slice(2)])) {
      expect(text).not.toContain(form);
    }
  }
}

describe('handleRegistrationRequest: routes', () => {
  it('GET /register: 200 page that explains how to subscribe', async () => {
    const { handle } = setup();
    const response = await handle(event({ method: 'GET' }));
    expect(response.statusCode).toBe(200);
    expect(response.headers?.['Content-Type']).toBe('text/html; charset=utf-8');
    expect(response.headers?.['Content-Security-Policy']).toContain("default-src 'none'");
    expect(response.body).toContain('AWS Marketplace');
  });

  it.each([
    ['PUT', '/register'],
    ['DELETE', '/register'],
    ['PATCH', '/register/details'],
    ['GET', '/register/details'],
  ])('%s %s: 405', async (method, resource) => {
    const { handle, ports } = setup();
    const response = await handle(event({ method, resource, body: form({ 'x-amzn-marketplace-token': 'x' }) }));
    expect(response.statusCode).toBe(405);
    expect(ports.resolvedTokens).toEqual([]);
  });

  it('POST /register, form base64-encoded by API Gateway: the token resolved exactly once-decoded, 200 form page posting to the details route', async () => {
    const { handle, ports, logs } = setup();
    ports.licenseBuyer(NASTY_TOKEN);
    const response = await handle(postForm({ 'x-amzn-marketplace-token': NASTY_TOKEN }));
    expect(ports.resolvedTokens).toEqual([NASTY_TOKEN]);
    expect(response.statusCode).toBe(200);
    // The stage is part of the path the browser sees: the form posts back through it.
    expect(response.body).toContain('<form method="post" action="/prod/register/details"');
    expectNothingSensitiveIn(response.body, [NASTY_TOKEN]);
    expect(logs.calls).toEqual([
      {
        level: 'info',
        message: 'registered',
        attributes: { customerKey: `license#${LICENSE_ID}`, productCode: 'prod-license', firstRegistration: true, freeTrial: false },
      },
    ]);
  });

  it('POST /register, plain (not base64) form body and a trailing slash in the path', async () => {
    const { handle, ports } = setup();
    ports.licenseBuyer(NASTY_TOKEN);
    const response = await handle(postForm({ 'x-amzn-marketplace-token': NASTY_TOKEN }, { base64: false, path: '/register/' }));
    expect(ports.resolvedTokens).toEqual([NASTY_TOKEN]);
    expect(response.statusCode).toBe(200);
    expect(response.body).toContain('action="/register/details"');
  });

  it('POST /register with JSON asking for JSON: 200 JSON with the reference', async () => {
    const { handle, ports } = setup();
    ports.licenseBuyer(NASTY_TOKEN);
    const response = await handle(
      event({
        body: JSON.stringify({ 'x-amzn-marketplace-token': NASTY_TOKEN }),
        headers: { 'content-type': 'application/json', Accept: 'application/json' },
      }),
    );
    expect(response.statusCode).toBe(200);
    const json = JSON.parse(response.body);
    expect(json.customerKey).toBe(`license#${LICENSE_ID}`);
    expect(verifyRegistrationReference(json.reference, SECRET, NOW).valid).toBe(true);
  });

  it('POST /register without a token: 400', async () => {
    const { handle } = setup();
    expect((await handle(postForm({}))).statusCode).toBe(400);
  });

  it('413 for a body over the limit, 415 for another content type, 400 for bad JSON', async () => {
    const { handle, ports } = setup();
    const big = await handle(postForm({ 'x-amzn-marketplace-token': 'x'.repeat(200) }), 100);
    expect(big.statusCode).toBe(413);
    const text = await handle(event({ body: 'x-amzn-marketplace-token=abc', headers: { 'content-type': 'text/plain' } }));
    expect(text.statusCode).toBe(415);
    const bad = await handle(event({ body: '{', headers: { 'content-type': 'application/json' } }));
    expect(bad.statusCode).toBe(400);
    expect(ports.resolvedTokens).toEqual([]);
  });

  it('finds headers whatever their case', async () => {
    const { handle, ports } = setup();
    ports.licenseBuyer('abc');
    const response = await handle(event({ body: 'x-amzn-marketplace-token=abc', headers: { 'CONTENT-TYPE': FORM, ACCEPT: 'application/json' } }));
    expect(response.statusCode).toBe(200);
    expect(response.headers?.['Content-Type']).toBe('application/json');
  });

  it('POST /register for a product with an onboarding URL: 303 there with the reference', async () => {
    const { handle, ports } = setup();
    ports.tokens.set('t', { productCode: 'prod-onboarding', customerAWSAccountId: '111122223333', licenseArn: 'arn:aws:license-manager::111122223333:license:l-onb' });
    const response = await handle(postForm({ 'x-amzn-marketplace-token': 't' }));
    expect(response.statusCode).toBe(303);
    const location = new URL(String(response.headers?.Location));
    expect(verifyRegistrationReference(location.searchParams.get('reference')!, SECRET, NOW)).toMatchObject({
      valid: true,
      reference: { customerKey: 'license#l-onb' },
    });
  });

  it('ResolveCustomer outcomes become their statuses', async () => {
    const { handle, ports } = setup();
    const cases: [ResolveCustomerFailure, number][] = [
      [new ResolveCustomerFailure('invalid-token', 'InvalidTokenException'), 400],
      [new ResolveCustomerFailure('expired-token', 'ExpiredTokenException'), 400],
      [new ResolveCustomerFailure('throttled', 'ThrottlingException'), 503],
      [new ResolveCustomerFailure('unavailable', 'InternalServiceErrorException'), 503],
      [new ResolveCustomerFailure('disabled', 'DisabledApiException'), 500],
    ];
    for (const [failure, status] of cases) {
      ports.tokens.set('t', failure);
      const response = await handle(postForm({ 'x-amzn-marketplace-token': 't' }));
      expect({ kind: failure.kind, status: response.statusCode }).toEqual({ kind: failure.kind, status });
      if (status === 503) expect(response.headers?.['Retry-After']).toBe('5');
    }
    ports.tokens.set('t', { productCode: 'not-ours', customerAWSAccountId: '111122223333', licenseArn: 'arn:aws:license-manager::111122223333:license:l-x' });
    const unknown = await handle(postForm({ 'x-amzn-marketplace-token': 't' }));
    expect(unknown.statusCode).toBe(403);
    expect(unknown.body).not.toContain('not-ours');
    expect(ports.customers.size).toBe(0);
  });
});

describe('handleRegistrationRequest: contact details', () => {
  async function registered() {
    const context = setup();
    context.ports.licenseBuyer(NASTY_TOKEN);
    const page = await context.handle(postForm({ 'x-amzn-marketplace-token': NASTY_TOKEN }));
    const reference = /name="reference" value="([^"]+)"/.exec(page.body)![1];
    return { ...context, reference };
  }

  it('POST /register/details with the reference from the page: stored, 200 thank-you page', async () => {
    const { handle, ports, reference, logs } = await registered();
    const response = await handle(postForm({ reference, ...CONTACT }, { resource: '/register/details' }));
    expect(response.statusCode).toBe(200);
    expect(response.body).toContain('Thank you');
    expect(ports.customers.get(`license#${LICENSE_ID}`)?.contact).toEqual(CONTACT);
    expect(logs.calls.at(-1)).toEqual({
      level: 'info',
      message: 'contact details',
      attributes: { route: 'POST /register/details', outcome: 'details-saved', customerKey: `license#${LICENSE_ID}` },
    });
    expectNothingSensitiveIn(logs.text(), [NASTY_TOKEN, ...Object.values(CONTACT)]);
  });

  it('invalid details: 400, the form again posting to itself, only the names of the bad fields logged', async () => {
    const { handle, reference, logs } = await registered();
    const response = await handle(postForm({ reference, ...CONTACT, email: 'ada at example' }, { resource: '/register/details' }));
    expect(response.statusCode).toBe(400);
    expect(response.body).toContain('action="/prod/register/details"');
    expect(response.body).toContain('value="ada at example"');
    expect(logs.calls.at(-1)?.attributes).toEqual({ route: 'POST /register/details', outcome: 'details-invalid', invalidFields: ['email'] });
    expectNothingSensitiveIn(logs.text(), [NASTY_TOKEN, 'ada at example', CONTACT.name, CONTACT.company, CONTACT.phone]);
  });

  it('a forged reference: 400, nothing stored', async () => {
    const { handle, ports, reference } = await registered();
    const [payload] = reference.split('.');
    const response = await handle(postForm({ reference: `${payload}.AAAA`, ...CONTACT }, { resource: '/register/details' }));
    expect(response.statusCode).toBe(400);
    expect(ports.customers.get(`license#${LICENSE_ID}`)?.contact).toBeUndefined();
  });
});

describe('handleRegistrationRequest: a failing port', () => {
  /** Errors as an SDK might word them, echoing what they were given. */
  const leaky = (what: string) => new Error(`request failed: ${what} (token ${NASTY_TOKEN}, contact ${EMAIL})`);

  it.each([
    ['the resolver throws an unexpected error', (p: FakePorts) => p.tokens.set(NASTY_TOKEN, leaky('resolve'))],
    ['the resolver fails with a modelled error', (p: FakePorts) => p.tokens.set(NASTY_TOKEN, new ResolveCustomerFailure('throttled', `Rate exceeded for ${NASTY_TOKEN}`))],
    ['the table refuses the registration', (p: FakePorts) => ((p.failSave = leaky('UpdateItem')), p.licenseBuyer(NASTY_TOKEN))],
    ['EventBridge refuses the event', (p: FakePorts) => ((p.failPublish = leaky('PutEvents')), p.licenseBuyer(NASTY_TOKEN))],
  ])('POST /register when %s: 503 with Retry-After, the token never logged', async (_label, arrange) => {
    const { handle, ports, logs } = setup();
    arrange(ports);
    const response = await handle(postForm({ 'x-amzn-marketplace-token': NASTY_TOKEN, ...CONTACT }));
    expect(response.statusCode).toBe(503);
    expect(response.headers?.['Retry-After']).toBe('5');
    expect(response.body).not.toContain('request failed');
    expect(logs.calls.some((c) => c.level === 'error')).toBe(true);
    expectNothingSensitiveIn(logs.text(), [NASTY_TOKEN, EMAIL]);
    expectNothingSensitiveIn(response.body, [NASTY_TOKEN, EMAIL]);
  });

  it('POST /register/details when the table fails: 503 with Retry-After, neither token nor e-mail logged', async () => {
    const { handle, ports, logs } = setup();
    ports.licenseBuyer(NASTY_TOKEN);
    const page = await handle(postForm({ 'x-amzn-marketplace-token': NASTY_TOKEN }));
    const reference = /name="reference" value="([^"]+)"/.exec(page.body)![1];
    // This request carries the contact details (the token is not in it): the error echoes those.
    ports.failContact = new Error(`UpdateItem failed for ${JSON.stringify(CONTACT)}`);
    const response = await handle(postForm({ reference, ...CONTACT }, { resource: '/register/details', headers: { accept: 'application/json' } }));
    expect(response.statusCode).toBe(503);
    expect(response.headers?.['Retry-After']).toBe('5');
    expect(JSON.parse(response.body)).toMatchObject({ error: 'TryAgain' });
    const failure = logs.calls.find((c) => c.level === 'error');
    expect(failure).toMatchObject({ message: 'registration request failed', attributes: { route: 'POST /register/details' } });
    // The operator still learns what failed.
    expect(JSON.stringify(failure)).toContain('UpdateItem');
    expectNothingSensitiveIn(logs.text(), [NASTY_TOKEN, EMAIL, CONTACT.name, CONTACT.phone]);
  });
});
