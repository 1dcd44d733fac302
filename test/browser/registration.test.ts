/**
 * Buyer registration in a real browser (Debian's Chromium through playwright-core) against the real
 * local environment: the AWS Marketplace simulator's buyer page form-POSTs the token to our
 * /register (behind the local API Gateway stand-in), the buyer fills the contact form, and the
 * Customers table in DynamoDB Local is read back.
 */
import { accessSync, constants } from 'node:fs';
import { MarketplaceMeteringClient, ResolveCustomerCommand } from '@aws-sdk/client-marketplace-metering';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startLocalEnvironment, type LocalEnvironment } from '../../local/local-environment';
import { localClientConfig } from '../../local/services';
import { CHROMIUM_PATH, requireChromium, requireJava } from '../support/local-services';

requireChromium();
requireJava(); // DynamoDB Local

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
const isExecutable = (path: string) => {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};
const TOKEN_FIELD = 'x-amzn-marketplace-token';
const OFFER_TYPE_FIELD = 'x-amzn-marketplace-offer-type';

let env: LocalEnvironment | undefined;
let browser: Browser | undefined;
let metering: MarketplaceMeteringClient | undefined;

beforeAll(async () => {
  // Without the browser, requireChromium() has already failed the suite with the install hint.
  if (!isExecutable(CHROMIUM_PATH)) return;
  const [started, launched] = await Promise.allSettled([
    startLocalEnvironment({ apiPort: 0, simulatorPort: 0 }),
    chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS }),
  ]);
  if (started.status === 'fulfilled') env = started.value;
  if (launched.status === 'fulfilled') browser = launched.value;
  if (started.status === 'rejected') throw started.reason;
  if (launched.status === 'rejected') throw launched.reason;
  metering = new MarketplaceMeteringClient(localClientConfig(env!.simulator.url));
}, 120_000);

afterAll(async () => {
  metering?.destroy();
  await Promise.allSettled([browser?.close(), env?.stop()]);
}, 60_000);

const environment = (): LocalEnvironment => {
  if (!env || !browser) throw new Error('The local environment or Chromium did not start (see beforeAll)');
  return env;
};

// ---------------------------------------------------------------------------------------------
// A browser tab that records what a buyer would not see: console messages, dialogs, page errors
// ---------------------------------------------------------------------------------------------

interface ConsoleProblem {
  readonly type: string;
  readonly text: string;
  /** The page shown when it was logged. */
  readonly pageUrl: string;
  /** The resource it is about, when there is one (a failed load, a script). */
  readonly resourceUrl: string;
}

interface Tab {
  readonly page: Page;
  readonly context: BrowserContext;
  /** Console messages of type error or warning. */
  readonly consoleProblems: ConsoleProblem[];
  readonly dialogs: string[];
  readonly pageErrors: string[];
  /** Form fields of every POST the browser sent to /register, in order. */
  readonly registerPosts: URLSearchParams[];
}

const tabs: Tab[] = [];

async function openTab(): Promise<Tab> {
  environment();
  const context = await browser!.newContext();
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  const tab: Tab = { page, context, consoleProblems: [], dialogs: [], pageErrors: [], registerPosts: [] };
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') {
      tab.consoleProblems.push({ type: message.type(), text: message.text(), pageUrl: page.url(), resourceUrl: message.location().url });
    }
  });
  page.on('dialog', (dialog) => {
    tab.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    void dialog.dismiss();
  });
  page.on('pageerror', (error) => tab.pageErrors.push(error.message));
  page.on('request', (request) => {
    if (request.method() === 'POST' && request.url() === env!.registrationUrl) {
      tab.registerPosts.push(new URLSearchParams(request.postData() ?? ''));
    }
  });
  tabs.push(tab);
  return tab;
}

afterEach(async () => {
  await Promise.allSettled(tabs.splice(0).map((t) => t.context.close()));
});

const productName = () => environment().product.displayName ?? environment().product.productCode;
const cspViolations = (tab: Tab) => tab.consoleProblems.filter((m) => /Content Security Policy/i.test(m.text));
/**
 * Console errors and warnings about our pages. (The simulator's pages are not ours: Chromium logs
 * a 404 for the simulator's missing favicon.ico, for example.)
 */
const problemsOnOurPages = (tab: Tab) => {
  const ours = (url: string) => url.startsWith(`${environment().api.url}/`);
  return tab.consoleProblems.filter((m) => ours(m.pageUrl) || ours(m.resourceUrl));
};

// ---------------------------------------------------------------------------------------------
// What the buyer does
// ---------------------------------------------------------------------------------------------

/** From the simulator's buyer page, subscribes to the demo product and lands on our registration page. */
async function subscribeOnBuyerPage(tab: Tab, button: 'Subscribe' | 'Start free trial'): Promise<URLSearchParams> {
  const { page } = tab;
  const e = environment();
  await page.goto(`${e.simulator.url}/`);
  const product = page.locator('section.product', {
    has: page.getByRole('heading', { name: productName(), exact: true }),
  });
  await product.getByRole('button', { name: button, exact: true }).click();
  await page.waitForURL(e.registrationUrl);
  await expectRegistrationPage(page);
  expect(tab.registerPosts).toHaveLength(1);
  return tab.registerPosts[0];
}

async function expectRegistrationPage(page: Page): Promise<void> {
  const e = environment();
  expect(page.url()).toBe(e.registrationUrl);
  await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe(`Welcome to ${productName()}`);
  expect(await page.title()).toBe(`Set up your ${productName()} account`);
}

interface Contact {
  company: string;
  name: string;
  email: string;
  phone?: string;
}

async function fillContactForm(page: Page, contact: Contact): Promise<void> {
  await page.getByLabel('Company').fill(contact.company);
  await page.getByLabel('Your name').fill(contact.name);
  await page.getByLabel('Work e-mail').fill(contact.email);
  await page.getByLabel('Phone (optional)').fill(contact.phone ?? '');
  await page.getByRole('button', { name: 'Create my account' }).click();
  await page.waitForURL(`${environment().registrationUrl}/details`);
}

async function expectThankYouPage(page: Page): Promise<void> {
  await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Thank you');
  await expect(page.locator('main').textContent()).resolves.toContain(
    `Your ${productName()} account is being set up.`,
  );
}

/** Posts a registration token to our fulfillment URL the way AWS Marketplace does: a form POST from another page. */
async function postTokenThroughPage(tab: Tab, token: string): Promise<void> {
  const e = environment();
  await tab.page.goto(`${e.simulator.url}/`);
  await tab.page.evaluate(
    ({ action, field, value }) => {
      const form = document.createElement('form');
      form.method = 'post';
      form.action = action;
      const input = document.createElement('input');
      input.type = 'hidden';
      input.name = field;
      input.value = value;
      form.append(input);
      document.body.append(form);
      form.submit();
    },
    { action: e.registrationUrl, field: TOKEN_FIELD, value: token },
  );
  await tab.page.waitForURL(e.registrationUrl);
}

// ---------------------------------------------------------------------------------------------
// What was stored
// ---------------------------------------------------------------------------------------------

type CustomerItem = Record<string, unknown> & { contact?: Record<string, unknown> };

async function allCustomers(): Promise<CustomerItem[]> {
  const { documents, tableName } = environment().registration;
  const items: CustomerItem[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await documents.send(new ScanCommand({ TableName: tableName, ExclusiveStartKey: start, ConsistentRead: true }));
    items.push(...((page.Items ?? []) as CustomerItem[]));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

/** The licence a token was issued for, as AWS Marketplace (the simulator) resolves it. */
async function licenceOf(token: string): Promise<string> {
  const resolved = await metering!.send(new ResolveCustomerCommand({ RegistrationToken: token }));
  if (!resolved.LicenseArn) throw new Error('the simulator resolved the token without a LicenseArn');
  return resolved.LicenseArn;
}

async function customersOfLicence(licenseArn: string): Promise<CustomerItem[]> {
  return (await allCustomers()).filter((c) => c.licenseArn === licenseArn);
}

let sequence = 0;
const uniqueEmail = (who: string) => `${who}.${Date.now()}.${++sequence}@example.com`;

// ---------------------------------------------------------------------------------------------

describe('buyer registration in Chromium', () => {
  test('Subscribe on the buyer page, fill the contact form, and exactly one customer is stored with the details', async () => {
    const tab = await openTab();
    const posted = await subscribeOnBuyerPage(tab, 'Subscribe');
    const token = posted.get(TOKEN_FIELD);
    expect(token).toBeTruthy();
    expect(posted.get(OFFER_TYPE_FIELD)).toBeNull();

    const contact = { company: 'Example Corp', name: 'Ana Buyer', email: uniqueEmail('ana'), phone: '+1 (555) 010-0000' };
    await fillContactForm(tab.page, contact);
    await expectThankYouPage(tab.page);

    const licenseArn = await licenceOf(token!);
    const stored = (await allCustomers()).filter((c) => c.contact?.email === contact.email);
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({
      licenseArn,
      productCode: environment().product.productCode,
      identityMode: 'license',
      freeTrial: false,
      registrationCount: 1,
      contact,
    });
    expect(await customersOfLicence(licenseArn)).toHaveLength(1);

    expect(tab.dialogs).toEqual([]);
    expect(tab.pageErrors).toEqual([]);
    expect(cspViolations(tab)).toEqual([]);
    expect(problemsOnOurPages(tab)).toEqual([]);
  });

  test('the same customer registering again (same token, then a new token for the licence) stays one customer', async () => {
    const tab = await openTab();
    const token = (await subscribeOnBuyerPage(tab, 'Subscribe')).get(TOKEN_FIELD)!;
    const licenseArn = await licenceOf(token);
    const first = { company: 'Repeat Ltd', name: 'Bo Again', email: uniqueEmail('bo') };
    await fillContactForm(tab.page, first);
    await expectThankYouPage(tab.page);
    const [afterFirst] = await customersOfLicence(licenseArn);

    // The buyer comes back with the very same token (AWS Marketplace posts it again).
    await postTokenThroughPage(tab, token);
    await expectRegistrationPage(tab.page);
    const second = { ...first, name: 'Bo Again-Renamed', phone: '+44 20 7946 0000' };
    await fillContactForm(tab.page, second);
    await expectThankYouPage(tab.page);

    // ... and later with a new token for the same licence ("Set up your account" chosen again).
    const response = await fetch(`${environment().simulator.url}/_admin/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ licenseArn }),
    });
    expect(response.status).toBe(201);
    const { registrationToken } = (await response.json()) as { registrationToken: string };
    expect(registrationToken).not.toBe(token);
    await postTokenThroughPage(tab, registrationToken);
    await expectRegistrationPage(tab.page);

    const stored = await customersOfLicence(licenseArn);
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ registrationCount: 3, contact: second, firstRegisteredAt: afterFirst.firstRegisteredAt });
    expect((await allCustomers()).filter((c) => c.contact?.email === first.email)).toHaveLength(1);
    expect(tab.registerPosts.map((p) => p.get(TOKEN_FIELD))).toEqual([token, token, registrationToken]);
    expect(cspViolations(tab)).toEqual([]);
    expect(problemsOnOurPages(tab)).toEqual([]);
  });

  test('markup in contact fields stays inert text when the form is shown again with an error', async () => {
    const scriptPayload = '<script>window.__pwned=1</script>';
    const attributePayload = '"><img src=x onerror="window.__pwned=2">';
    const tab = await openTab();
    const token = (await subscribeOnBuyerPage(tab, 'Subscribe')).get(TOKEN_FIELD)!;
    const licenseArn = await licenceOf(token);
    const { page } = tab;

    await page.getByLabel('Company').fill(scriptPayload);
    await page.getByLabel('Your name').fill(attributePayload);
    await page.getByLabel('Work e-mail').fill('not-an-e-mail');
    const [response] = await Promise.all([
      page.waitForResponse(`${environment().registrationUrl}/details`),
      page.getByRole('button', { name: 'Create my account' }).click(),
    ]);
    expect(response.status()).toBe(400);
    await page.getByRole('alert').waitFor();

    // The error page, with the buyer's values back in the inputs, as text.
    await expect(page.getByRole('alert').textContent()).resolves.toBe('Please correct the fields marked below.');
    await expect(page.locator('#email-error').textContent()).resolves.toBe('Work e-mail is not a valid e-mail address.');
    expect(await page.getByLabel('Work e-mail').getAttribute('aria-invalid')).toBe('true');
    await expect(page.getByLabel('Company').inputValue()).resolves.toBe(scriptPayload);
    await expect(page.getByLabel('Your name').inputValue()).resolves.toBe(attributePayload);
    await expect(page.getByLabel('Work e-mail').inputValue()).resolves.toBe('not-an-e-mail');

    // Nothing the buyer typed became markup: no script ran, no element was injected.
    expect(await page.evaluate(() => (window as unknown as { __pwned?: unknown }).__pwned)).toBeUndefined();
    expect(await page.locator('script').count()).toBe(0);
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.locator('form input').evaluateAll((inputs) => inputs.map((i) => i.getAttribute('name')))).toEqual([
      'reference',
      'company',
      'name',
      'email',
      'phone',
    ]);
    expect(tab.dialogs).toEqual([]);
    expect(tab.pageErrors).toEqual([]);
    expect(cspViolations(tab)).toEqual([]);
    expect((await customersOfLicence(licenseArn))[0].contact).toBeUndefined();

    // Corrected, the same values are stored verbatim, as data.
    const email = uniqueEmail('markup');
    await page.getByLabel('Work e-mail').fill(email);
    const [corrected] = await Promise.all([
      page.waitForResponse(`${environment().registrationUrl}/details`),
      page.getByRole('button', { name: 'Create my account' }).click(),
    ]);
    expect(corrected.status()).toBe(200);
    await page.getByRole('heading', { name: 'Thank you' }).waitFor();
    await expectThankYouPage(page);
    const [stored] = await customersOfLicence(licenseArn);
    expect(stored.contact).toEqual({ company: scriptPayload, name: attributePayload, email });
    expect(await page.evaluate(() => (window as unknown as { __pwned?: unknown }).__pwned)).toBeUndefined();
    expect(tab.dialogs).toEqual([]);
    expect(cspViolations(tab)).toEqual([]);
    // Chromium logs the 400 status of the error page itself; nothing else.
    expect(problemsOnOurPages(tab).map((m) => `${m.resourceUrl}: ${m.text}`)).toEqual([
      `${environment().registrationUrl}/details: Failed to load resource: the server responded with a status of 400 (Bad Request)`,
    ]);
  });

  test('the pages\' Content-Security-Policy blocks inline script, and the console check sees the violation', async () => {
    // Guards the CSP assertions above: if violations were not reported to the console listener,
    // "no CSP violations" would prove nothing.
    const tab = await openTab();
    await subscribeOnBuyerPage(tab, 'Subscribe');
    expect(cspViolations(tab)).toEqual([]);
    await tab.page.evaluate(() => {
      const script = document.createElement('script');
      script.textContent = 'window.__injected = 1';
      document.body.append(script);
    });
    for (let waited = 0; cspViolations(tab).length === 0 && waited < 2_000; waited += 50) await tab.page.waitForTimeout(50);
    expect(cspViolations(tab)[0].text).toMatch(/inline script/i);
    expect(await tab.page.evaluate(() => (window as unknown as { __injected?: unknown }).__injected)).toBeUndefined();
  });

  test('"Start free trial" records the customer with freeTrial true', async () => {
    const tab = await openTab();
    const posted = await subscribeOnBuyerPage(tab, 'Start free trial');
    expect(posted.get(OFFER_TYPE_FIELD)).toBe('free-trial');
    const licenseArn = await licenceOf(posted.get(TOKEN_FIELD)!);

    const contact = { company: 'Trial Co', name: 'Cy Trial', email: uniqueEmail('cy') };
    await fillContactForm(tab.page, contact);
    await expectThankYouPage(tab.page);

    const stored = await customersOfLicence(licenseArn);
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ freeTrial: true, registrationCount: 1, contact });
    expect(cspViolations(tab)).toEqual([]);
    expect(problemsOnOurPages(tab)).toEqual([]);
  });
});
