/**
 * The buyer page: GET / lists the products with Subscribe / Start free trial; submitting creates a
 * customer and a token and answers a page whose form POSTs `x-amzn-marketplace-token` (and, for a
 * trial, `x-amzn-marketplace-offer-type=free-trial`) to the product's fulfillmentUrl, as AWS
 * Marketplace does. The HTML is read with regular expressions; the browser's form submission is
 * reproduced with fetch against a small local fulfillment server.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ResolveCustomerCommand } from '@aws-sdk/client-marketplace-metering';
import { useSimulator, type Customer } from './helpers';

// ---------------------------------------------------------------------------------------------
// Minimal HTML form reading
// ---------------------------------------------------------------------------------------------

function decodeEntities(text: string): string {
  return text
    .replace(/&#x([0-9a-f]+);/gi, (_, hex: string) => String.fromCodePoint(parseInt(hex, 16)))
    .replace(/&#(\d+);/g, (_, dec: string) => String.fromCodePoint(parseInt(dec, 10)))
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function attributes(tag: string): Record<string, string> {
  const result: Record<string, string> = {};
  const pattern = /([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
  const inner = tag.replace(/^<\s*[a-zA-Z]+/, '').replace(/\/?>$/, '');
  for (const match of inner.matchAll(pattern)) {
    result[match[1].toLowerCase()] = decodeEntities(match[2] ?? match[3] ?? match[4] ?? '');
  }
  return result;
}

const textOf = (html: string) => decodeEntities(html.replace(/<[^>]*>/g, ' ')).replace(/\s+/g, ' ').trim();

interface SubmitButton {
  label: string;
  name?: string;
  value?: string;
}

interface HtmlForm {
  outerHtml: string;
  action: string;
  method: string;
  enctype: string;
  /** Named non-button inputs, in document order. */
  fields: [string, string][];
  buttons: SubmitButton[];
}

function formsOf(html: string): HtmlForm[] {
  return [...html.matchAll(/<form\b[^>]*>[\s\S]*?<\/form>/gi)].map(([outerHtml]) => {
    const formAttributes = attributes(/<form\b[^>]*>/i.exec(outerHtml)?.[0] ?? '');
    const fields: [string, string][] = [];
    const buttons: SubmitButton[] = [];
    for (const [tag] of outerHtml.matchAll(/<input\b[^>]*>/gi)) {
      const a = attributes(tag);
      const type = (a.type ?? 'text').toLowerCase();
      if (type === 'submit') buttons.push({ label: a.value ?? '', name: a.name, value: a.value });
      else if (a.name && type !== 'button' && type !== 'reset') fields.push([a.name, a.value ?? '']);
    }
    for (const match of outerHtml.matchAll(/<button\b([^>]*)>([\s\S]*?)<\/button>/gi)) {
      const a = attributes(`<button${match[1]}>`);
      if ((a.type ?? 'submit').toLowerCase() === 'submit') buttons.push({ label: textOf(match[2]), name: a.name, value: a.value });
    }
    return {
      outerHtml,
      action: formAttributes.action ?? '',
      method: (formAttributes.method ?? 'get').toLowerCase(),
      enctype: (formAttributes.enctype ?? 'application/x-www-form-urlencoded').toLowerCase(),
      fields,
      buttons,
    };
  });
}

/** What a browser sends when `button` of `form` is clicked. */
function submission(form: HtmlForm, button?: SubmitButton): URLSearchParams {
  const body = new URLSearchParams();
  for (const [name, value] of form.fields) body.append(name, value);
  if (button?.name) body.append(button.name, button.value ?? '');
  return body;
}

// ---------------------------------------------------------------------------------------------
// A local "seller" fulfillment endpoint that records what the browser posts
// ---------------------------------------------------------------------------------------------

interface Received {
  contentType: string;
  body: string;
}

async function startFulfillmentServer(): Promise<{ server: Server; url: string; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      received.push({ contentType: String(req.headers['content-type'] ?? ''), body });
      res.writeHead(200, { 'content-type': 'text/html' }).end('<p>Welcome</p>');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}/register`, received };
}

// ---------------------------------------------------------------------------------------------

describe('buyer page', () => {
  const ctx = useSimulator();
  let seller: Awaited<ReturnType<typeof startFulfillmentServer>>;

  beforeAll(async () => {
    seller = await startFulfillmentServer();
  });
  afterAll(async () => {
    seller.server.closeAllConnections();
    await new Promise((resolve) => seller.server.close(resolve));
  });

  async function seedProducts() {
    await ctx.admin.createProduct({ productCode: 'prod-widgets', dimensions: ['requests'], identityMode: 'license', fulfillmentUrl: seller.url, title: 'Widget Cloud' });
    await ctx.admin.createProduct({ productCode: 'prod-gadgets', dimensions: ['seats'], identityMode: 'legacy', fulfillmentUrl: seller.url, title: 'Gadget Suite' });
  }

  async function productList(): Promise<string> {
    const response = await fetch(ctx.sim.url + '/');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    return response.text();
  }

  /** The form and button on the product list that subscribe to `productCode` (trial or not). */
  function subscribeControl(html: string, productCode: string, trial: boolean): { form: HtmlForm; button: SubmitButton } {
    const wanted = trial ? /start free trial/i : /^subscribe$/i;
    const candidates = formsOf(html)
      .filter((form) => form.outerHtml.includes(productCode))
      .flatMap((form) => form.buttons.filter((button) => wanted.test(button.label.trim())).map((button) => ({ form, button })));
    if (candidates.length !== 1) throw new Error(`expected one "${wanted}" control for ${productCode}, found ${candidates.length}`);
    return candidates[0];
  }

  /** Clicks the control like a browser (following redirects) and returns the answer page. */
  async function click(control: { form: HtmlForm; button: SubmitButton }): Promise<string> {
    const body = submission(control.form, control.button);
    const target = new URL(control.form.action || '/', ctx.sim.url);
    const response =
      control.form.method === 'post'
        ? await fetch(target, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: body.toString() })
        : await fetch(`${target.toString()}?${body.toString()}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    return response.text();
  }

  /** The form on the answer page that posts to the fulfillment URL. */
  function fulfillmentForm(html: string): HtmlForm {
    const forms = formsOf(html).filter((form) => form.action === seller.url);
    if (forms.length !== 1) throw new Error(`expected one form posting to ${seller.url}, found ${forms.length} in:\n${html}`);
    return forms[0];
  }

  async function newCustomers(before: Customer[]): Promise<Customer[]> {
    const known = new Set(before.map((c) => c.licenseArn));
    return (await ctx.admin.customers()).filter((c) => !known.has(c.licenseArn));
  }

  test('GET / lists every product, each with a Subscribe and a Start free trial control', async () => {
    await seedProducts();
    const html = await productList();
    expect(html).toContain('Widget Cloud');
    expect(html).toContain('Gadget Suite');
    for (const productCode of ['prod-widgets', 'prod-gadgets']) {
      expect(subscribeControl(html, productCode, false).form).toBeDefined();
      expect(subscribeControl(html, productCode, true).form).toBeDefined();
    }
  });

  test('Subscribe creates a customer and a token; the answer page form-POSTs the token to the fulfillmentUrl', async () => {
    await seedProducts();
    const before = await ctx.admin.customers();
    const page = await click(subscribeControl(await productList(), 'prod-widgets', false));

    const created = await newCustomers(before);
    expect(created).toHaveLength(1);
    expect(created[0]).toMatchObject({ productCode: 'prod-widgets', freeTrial: false, state: 'subscribed' });

    const form = fulfillmentForm(page);
    expect(form.method).toBe('post');
    expect(form.enctype).toBe('application/x-www-form-urlencoded');
    const hidden = new Map(form.fields);
    const token = hidden.get('x-amzn-marketplace-token');
    expect(token).toEqual(expect.any(String));
    expect(form.outerHtml).toMatch(/<input\b[^>]*type\s*=\s*["']?hidden[^>]*name\s*=\s*["']?x-amzn-marketplace-token|<input\b[^>]*name\s*=\s*["']?x-amzn-marketplace-token["']?[^>]*type\s*=\s*["']?hidden/i);
    expect(hidden.has('x-amzn-marketplace-offer-type')).toBe(false);

    // The token on the page is the new customer's, and it resolves to that customer.
    const out = await ctx.metering.send(new ResolveCustomerCommand({ RegistrationToken: token ?? '' }));
    expect(out).toMatchObject({ ProductCode: 'prod-widgets', LicenseArn: created[0].licenseArn, CustomerAWSAccountId: created[0].customerAWSAccountId });
  });

  test('Start free trial adds x-amzn-marketplace-offer-type=free-trial and creates a free-trial customer', async () => {
    await seedProducts();
    const before = await ctx.admin.customers();
    const page = await click(subscribeControl(await productList(), 'prod-widgets', true));
    const created = await newCustomers(before);
    expect(created).toHaveLength(1);
    expect(created[0].freeTrial).toBe(true);
    const hidden = new Map(fulfillmentForm(page).fields);
    expect(hidden.get('x-amzn-marketplace-offer-type')).toBe('free-trial');
    expect(hidden.get('x-amzn-marketplace-token')).toEqual(expect.any(String));
  });

  test('a legacy product: the posted token resolves with a CustomerIdentifier', async () => {
    await seedProducts();
    const page = await click(subscribeControl(await productList(), 'prod-gadgets', false));
    const token = new Map(fulfillmentForm(page).fields).get('x-amzn-marketplace-token') ?? '';
    const out = await ctx.metering.send(new ResolveCustomerCommand({ RegistrationToken: token }));
    expect(out.ProductCode).toBe('prod-gadgets');
    expect(out.CustomerIdentifier).toEqual(expect.any(String));
  });

  test('the browser\'s form POST reaches the seller urlencoded, and the token survives one URLSearchParams decode', async () => {
    await seedProducts();
    const page = await click(subscribeControl(await productList(), 'prod-widgets', true));
    const form = fulfillmentForm(page);
    seller.received.length = 0;
    const response = await fetch(form.action, { method: 'POST', headers: { 'content-type': form.enctype }, body: submission(form).toString() });
    expect(response.status).toBe(200);
    expect(seller.received).toHaveLength(1);
    expect(seller.received[0].contentType).toBe('application/x-www-form-urlencoded');
    const posted = new URLSearchParams(seller.received[0].body);
    const token = posted.get('x-amzn-marketplace-token') ?? '';
    expect(posted.get('x-amzn-marketplace-offer-type')).toBe('free-trial');
    // The raw body is percent-encoded (the token's + / = never travel raw) ...
    expect(seller.received[0].body).not.toContain(token);
    // ... and one decode gives back a token that resolves.
    const out = await ctx.metering.send(new ResolveCustomerCommand({ RegistrationToken: token }));
    expect(out.ProductCode).toBe('prod-widgets');
  });

  test('each Subscribe is a new customer with its own token', async () => {
    await seedProducts();
    const html = await productList();
    const pageA = await click(subscribeControl(html, 'prod-widgets', false));
    const pageB = await click(subscribeControl(html, 'prod-widgets', false));
    const tokenA = new Map(fulfillmentForm(pageA).fields).get('x-amzn-marketplace-token');
    const tokenB = new Map(fulfillmentForm(pageB).fields).get('x-amzn-marketplace-token');
    expect(tokenA).not.toBe(tokenB);
    expect(await ctx.admin.customers()).toHaveLength(2);
  });
});
