import { createHash } from 'node:crypto';
import { ProductConfig } from '../../../lambda/core/product-config';
import { messagePage, pageHeaders, registrationPage, thankYouPage } from '../../../lambda/core/registration/pages';
import { verifyRegistrationReference } from '../../../lambda/core/registration/registration-reference';
import {
  DetailsOutcome,
  RegistrationOutcome,
  RegistrationService,
  RETRY_AFTER_SECONDS,
} from '../../../lambda/core/registration/registration-service';
import {
  detailsResponse,
  HttpResponse,
  prefersJson,
  registrationResponse,
  ResponseContext,
  unavailable,
} from '../../../lambda/core/registration/responses';
import { FakePorts, LICENSE_ID, LICENSE_PRODUCT, NASTY_TOKEN, NOW, ONBOARDING_PRODUCT, PRODUCTS, SECRET } from './fake-ports';

const HTML: ResponseContext = { wantsJson: false, detailsAction: '/register/details' };
const JSON_CONTEXT: ResponseContext = { wantsJson: true, detailsAction: '/register/details' };

const XSS = `<script>alert(1)</script>"><img src=x onerror=alert(2)>'\``;

const ALLOWED_TAGS = new Set(['!doctype', 'html', 'head', 'meta', 'title', 'style', 'body', 'main', 'h1', 'p', 'form', 'input', 'label', 'button', 'a']);

/**
 * No element, event handler or script URL came from the values: every tag in the page is one the
 * templates write, no tag has an on* attribute outside quoted values, and the markup the values
 * carried is shown as text.
 */
function expectInert(page: string): void {
  const tags = [...page.matchAll(/<\/?([a-zA-Z!][a-zA-Z0-9]*)([^>]*)>/g)];
  expect(tags.length).toBeGreaterThan(5);
  for (const [, name, attributes] of tags) {
    expect(ALLOWED_TAGS).toContain(name.toLowerCase());
    const outsideQuotes = attributes.replace(/"[^"]*"/g, '""');
    expect(outsideQuotes).not.toMatch(/\son[a-z]+\s*=/i);
    expect(outsideQuotes).not.toMatch(/'/);
  }
  expect(page).not.toMatch(/<script/i);
  expect(page).not.toMatch(/href="\s*javascript:/i);
  expect(page).toContain('&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(2)&gt;&#39;&#96;');
}

const IDENTITY = {
  customerKey: 'license#l-0123456789abcdef',
  identityMode: 'license' as const,
  productCode: LICENSE_PRODUCT.productCode,
  customerAWSAccountId: '111122223333',
  licenseArn: 'arn:aws:license-manager::111122223333:license:l-0123456789abcdef',
};
const REFERENCE = 'eyJjdXN0b21lcktleSI6ImxpY2Vuc2UjbC0wMTIzIn0.c2lnbmF0dXJl-_';
const registered = (product: ProductConfig, overrides: Partial<Extract<RegistrationOutcome, { kind: 'registered' }>> = {}) =>
  ({ kind: 'registered', product, identity: IDENTITY, reference: REFERENCE, firstRegistration: true, freeTrial: false, ...overrides }) as const;

const parseJson = (response: HttpResponse) => {
  expect(response.headers['Content-Type']).toBe('application/json');
  return JSON.parse(response.body);
};

describe('pages', () => {
  describe('Content-Security-Policy', () => {
    const csp = pageHeaders()['Content-Security-Policy'];

    it('is strict: nothing by default, no inline script or style, no framing, forms only to us', () => {
      const directives = Object.fromEntries(csp.split(';').map((d) => d.trim().split(/\s+/)).map(([name, ...v]) => [name, v]));
      expect(directives['default-src']).toEqual(["'none'"]);
      expect(directives['form-action']).toEqual(["'self'"]);
      expect(directives['frame-ancestors']).toEqual(["'none'"]);
      expect(directives['base-uri']).toEqual(["'none'"]);
      expect(directives['script-src']).toBeUndefined(); // falls back to default-src 'none'
      expect(csp).not.toContain('unsafe-inline');
      expect(csp).not.toContain('unsafe-eval');
      expect(csp).not.toContain('*');
    });

    it('allows exactly the page’s own stylesheet, by its hash', () => {
      const page = registrationPage({ productName: 'P', reference: 'r', action: '/a' });
      const styles = [...page.matchAll(/<style>([\s\S]*?)<\/style>/g)].map((m) => m[1]);
      expect(styles).toHaveLength(1);
      const hash = createHash('sha256').update(styles[0]).digest('base64');
      expect(csp).toContain(`style-src 'sha256-${hash}'`);
      // No other inline style can sneak in.
      expect(page).not.toMatch(/\sstyle=/i);
    });

    it('comes with the other protective headers', () => {
      expect(pageHeaders()).toMatchObject({
        'Content-Type': 'text/html; charset=utf-8',
        'Cache-Control': 'no-store',
        'Referrer-Policy': 'no-referrer',
        'X-Content-Type-Options': 'nosniff',
        'X-Frame-Options': 'DENY',
      });
    });
  });

  it('registration page: every interpolated value is escaped', () => {
    const page = registrationPage({
      productName: XSS,
      reference: XSS,
      action: XSS,
      values: { company: XSS, name: XSS, email: XSS, phone: XSS },
      errors: { company: XSS, name: XSS, email: XSS, phone: XSS },
    });
    expectInert(page);
    // The attribute values stay inside their quotes.
    expect(page).toContain(`<form method="post" action="&lt;script&gt;`);
    expect(page).toMatch(/<input type="hidden" name="reference" value="&lt;script&gt;[^"]*">/);
  });

  it('registration page: accessible form (labels, autocomplete, errors tied to fields, language)', () => {
    const page = registrationPage({
      productName: 'Widget',
      reference: 'ref',
      action: '/register/details',
      values: { company: 'Acme', email: 'bad' },
      errors: { email: 'is not a valid e-mail address' },
    });
    expect(page).toContain('<html lang="en">');
    for (const field of ['company', 'name', 'email', 'phone']) {
      expect(page).toContain(`<label for="${field}">`);
      expect(page).toMatch(new RegExp(`<input id="${field}" name="${field}"`));
    }
    expect(page).toContain('type="email" autocomplete="email" value="bad" required aria-invalid="true" aria-describedby="email-error"');
    expect(page).toContain('<p class="error" id="email-error">Work e-mail is not a valid e-mail address.</p>');
    expect(page).toContain('role="alert"');
    expect(page).toContain('value="Acme"');
    expect(page).not.toMatch(/id="phone"[^>]*required/);
  });

  it('thank-you page: escapes the product name and link', () => {
    const page = thankYouPage({ productName: XSS, productUrl: `https://example.com/?q=${XSS}` });
    expectInert(page);
  });

  it('message page: escapes the title and paragraphs', () => {
    const page = messagePage({ title: XSS, paragraphs: [XSS, 'second'] });
    expectInert(page);
    expect(page).toContain('<p>second</p>');
  });
});

describe('prefersJson', () => {
  it.each([
    ['application/json', true],
    ['application/json; charset=utf-8', true],
    ['Application/JSON', true],
    ['application/json, text/html', true],
    ['text/html, application/json', false],
    ['text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', false],
    ['*/*', false],
    ['', false],
    [undefined, false],
    ['text/html;q=0.5, application/json', true],
    ['application/json;q=0.1, text/html', false],
    ['application/json;q=0', false],
  ])('%s -> %s', (accept, expected) => {
    expect(prefersJson(accept)).toBe(expected);
  });
});

describe('registrationResponse', () => {
  it('registered: 200 with the contact form that posts to the details route and carries the reference', () => {
    const response = registrationResponse(registered(LICENSE_PRODUCT), HTML);
    expect(response.statusCode).toBe(200);
    expect(response.headers['Content-Security-Policy']).toContain("default-src 'none'");
    expect(response.body).toContain(`<input type="hidden" name="reference" value="${REFERENCE}">`);
    expect(response.body).toContain('action="/register/details"');
    expect(response.body).toContain('Welcome to License Product');
  });

  it('registered through the service: the page carries a valid reference and never the token, in any encoding', async () => {
    const ports = new FakePorts();
    ports.licenseBuyer(NASTY_TOKEN);
    const service = new RegistrationService(ports, { products: PRODUCTS, referenceSecret: SECRET });
    const outcome = await service.register({ 'x-amzn-marketplace-token': NASTY_TOKEN });
    for (const context of [HTML, JSON_CONTEXT]) {
      const response = registrationResponse(outcome, context);
      const everything = JSON.stringify(response);
      for (const form of [NASTY_TOKEN, encodeURIComponent(NASTY_TOKEN), new URLSearchParams({ t: NASTY_TOKEN }).toString().slice(2)]) {
        expect(everything).not.toContain(form);
      }
      expect(everything).not.toContain('mpt+AbC');
    }
    const page = registrationResponse(outcome, HTML).body;
    const reference = /name="reference" value="([^"]+)"/.exec(page)?.[1];
    expect(reference).toBeDefined();
    expect(verifyRegistrationReference(reference!, SECRET, NOW)).toMatchObject({ valid: true, reference: { customerKey: `license#${LICENSE_ID}` } });
  });

  it('registered, product with an onboarding URL: 303 there, with the reference as a query parameter', () => {
    const response = registrationResponse(registered(ONBOARDING_PRODUCT), HTML);
    expect(response.statusCode).toBe(303);
    expect(response.body).toBe('');
    expect(response.headers['Cache-Control']).toBe('no-store');
    const location = new URL(response.headers.Location);
    expect(location.origin + location.pathname).toBe('https://app.example.com/onboard');
    expect(location.searchParams.get('source')).toBe('marketplace'); // the seller's own parameters are kept
    expect(location.searchParams.get('reference')).toBe(REFERENCE);
  });

  it('a reference with URL-special characters survives the redirect exactly', () => {
    const reference = 'a+b/c=d&e#f%2B';
    const response = registrationResponse(registered(ONBOARDING_PRODUCT, { reference }), HTML);
    expect(new URL(response.headers.Location).searchParams.get('reference')).toBe(reference);
  });

  it('registered, JSON: identifiers, free-trial flag, reference and where to go next', () => {
    const json = parseJson(registrationResponse(registered(LICENSE_PRODUCT, { freeTrial: true }), JSON_CONTEXT));
    expect(json).toEqual({
      customerKey: IDENTITY.customerKey,
      productCode: IDENTITY.productCode,
      customerAWSAccountId: IDENTITY.customerAWSAccountId,
      licenseArn: IDENTITY.licenseArn,
      freeTrial: true,
      reference: REFERENCE,
      next: null,
    });
    const withNext = parseJson(registrationResponse(registered(ONBOARDING_PRODUCT), JSON_CONTEXT));
    expect(new URL(withNext.next).searchParams.get('reference')).toBe(REFERENCE);
  });

  const failures: { label: string; outcome: RegistrationOutcome; status: number; code: string; text: RegExp }[] = [
    { label: 'no token', outcome: { kind: 'no-token' }, status: 400, code: 'MissingRegistrationToken', text: /AWS Marketplace/ },
    {
      label: 'invalid token',
      outcome: { kind: 'token-rejected', reason: 'invalid' },
      status: 400,
      code: 'InvalidRegistrationToken',
      text: /Return to AWS Marketplace/,
    },
    {
      label: 'expired token',
      outcome: { kind: 'token-rejected', reason: 'expired' },
      status: 400,
      code: 'ExpiredRegistrationToken',
      text: /Return to AWS Marketplace/,
    },
    {
      label: 'unknown product',
      outcome: { kind: 'unknown-product', productCode: 'secret-internal-code' },
      status: 403,
      code: 'ProductNotServed',
      text: /Return to AWS Marketplace/,
    },
    {
      label: 'configuration error',
      outcome: { kind: 'configuration-error', cause: 'DisabledApiException internal-detail' },
      status: 500,
      code: 'RegistrationUnavailable',
      text: /try again later/,
    },
    {
      label: 'unavailable',
      outcome: { kind: 'unavailable', retryAfterSeconds: 7, cause: 'ThrottlingException internal-detail' },
      status: 503,
      code: 'TryAgain',
      text: /7 seconds/,
    },
  ];

  it.each(failures)('$label: HTML page with status $status', ({ outcome, status, text }) => {
    const response = registrationResponse(outcome, HTML);
    expect(response.statusCode).toBe(status);
    expect(response.headers['Content-Type']).toBe('text/html; charset=utf-8');
    expect(response.headers['Content-Security-Policy']).toBeDefined();
    expect(response.body).toMatch(text);
    expect(response.body).not.toMatch(/<form/);
  });

  it.each(failures)('$label: JSON with status $status and error code $code', ({ outcome, status, code }) => {
    const response = registrationResponse(outcome, JSON_CONTEXT);
    expect(response.statusCode).toBe(status);
    expect(parseJson(response)).toEqual({ error: code, message: expect.any(String) });
  });

  it.each(failures)('$label: names no internal detail', ({ outcome }) => {
    for (const context of [HTML, JSON_CONTEXT]) {
      const body = registrationResponse(outcome, context).body;
      expect(body).not.toContain('secret-internal-code');
      expect(body).not.toContain('internal-detail');
      expect(body).not.toMatch(/Exception/);
    }
  });

  it('expired token: tells the buyer to return to AWS Marketplace', () => {
    const body = registrationResponse({ kind: 'token-rejected', reason: 'expired' }, HTML).body;
    expect(body).toContain('This registration link has expired');
    expect(body).toContain('Return to AWS Marketplace');
  });

  it('unavailable: Retry-After in both HTML and JSON, with the outcome’s delay', () => {
    const outcome: RegistrationOutcome = { kind: 'unavailable', retryAfterSeconds: 7, cause: 'x' };
    expect(registrationResponse(outcome, HTML).headers['Retry-After']).toBe('7');
    expect(registrationResponse(outcome, JSON_CONTEXT).headers['Retry-After']).toBe('7');
    const page = registrationResponse(outcome, HTML);
    expect(page.headers['Content-Security-Policy']).toBeDefined(); // the Retry-After header did not replace the page headers
  });

  it('unavailable() defaults to the service’s retry delay', () => {
    const response = unavailable(HTML);
    expect(response.statusCode).toBe(503);
    expect(response.headers['Retry-After']).toBe(String(RETRY_AFTER_SECONDS));
  });
});

describe('detailsResponse', () => {
  it('saved: 200 thank-you page linking to the product', () => {
    const response = detailsResponse({ kind: 'details-saved', product: ONBOARDING_PRODUCT, customerKey: 'k' }, HTML);
    expect(response.statusCode).toBe(200);
    expect(response.body).toContain('Thank you');
    expect(response.body).toContain('<a href="https://app.example.com/">');
  });

  it('saved, JSON', () => {
    const response = detailsResponse({ kind: 'details-saved', product: LICENSE_PRODUCT, customerKey: 'k' }, JSON_CONTEXT);
    expect(response.statusCode).toBe(200);
    expect(parseJson(response)).toEqual({ customerKey: 'k', productUrl: null });
  });

  const invalid: DetailsOutcome = {
    kind: 'details-invalid',
    product: LICENSE_PRODUCT,
    reference: REFERENCE,
    values: { company: XSS, email: 'not-an-email' },
    errors: { email: 'is not a valid e-mail address', name: 'is required' },
  };

  it('invalid: 400 with the form again, the values kept (escaped), the reference kept and the errors shown', () => {
    const response = detailsResponse(invalid, HTML);
    expect(response.statusCode).toBe(400);
    expectInert(response.body);
    expect(response.body).toContain('value="not-an-email"');
    expect(response.body).toContain(`name="reference" value="${REFERENCE}"`);
    expect(response.body).toContain('Your name is required.');
  });

  it('invalid, JSON: 400 with the fields in error', () => {
    const response = detailsResponse(invalid, JSON_CONTEXT);
    expect(response.statusCode).toBe(400);
    expect(parseJson(response)).toEqual({
      error: 'InvalidContactDetails',
      fields: { email: 'is not a valid e-mail address', name: 'is required' },
    });
  });

  it('reference rejected: 400 telling the buyer to start again from AWS Marketplace', () => {
    const response = detailsResponse({ kind: 'reference-rejected', reason: 'expired' }, HTML);
    expect(response.statusCode).toBe(400);
    expect(response.body).toContain('AWS Marketplace');
  });

  it('unknown product: 403 without naming it', () => {
    const response = detailsResponse({ kind: 'unknown-product', productCode: 'secret-internal-code' }, HTML);
    expect(response.statusCode).toBe(403);
    expect(response.body).not.toContain('secret-internal-code');
  });
});
