import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { REGISTERED_EVENT } from '../../lambda/core/registration/registration-service';
import { LocalApiServer, startLocalApiServer } from '../../local/api-gateway-server';
import { createLocalRegistration, LocalRegistration } from '../../local/local-registration';
import { RunningSimulator, startMarketplaceSimulator } from '../../local/simulator';
import { requireJava, useDynamoDbLocal } from '../support/local-services';

/**
 * Contract products: a customer's entitlements are read with GetEntitlements when it registers, stored
 * on the customer and carried by the provisioning event; other products do not call it.
 */

requireJava();
const dynamoDb = useDynamoDbLocal();

let simulator: RunningSimulator;
let registration: LocalRegistration;
let api: LocalApiServer;
const contract = { productCode: 'contract-product', identityMode: 'license' as const, dimensions: ['seats'], contract: true };
const usageOnly = { productCode: 'usage-product', identityMode: 'license' as const, dimensions: ['requests'] };

beforeAll(async () => {
  simulator = await startMarketplaceSimulator({
    port: 0,
    config: { rateLimitPerSecond: 0 },
    seed: { products: [contract, usageOnly].map(({ productCode, identityMode, dimensions }) => ({ productCode, identityMode, dimensions })) },
  });
  registration = await createLocalRegistration({
    simulatorUrl: simulator.url,
    dynamoDbEndpoint: dynamoDb.endpoint,
    products: [contract, usageOnly],
    tableName: 'ContractCustomers',
    referenceSecret: 'a-test-secret-that-is-long-enough-for-hmac',
  });
  api = await startLocalApiServer({ routes: registration.routes });
});

afterAll(async () => {
  await api?.stop();
  await simulator?.stop();
});

async function admin(path: string, body: unknown) {
  const response = await fetch(`${simulator.url}${path}`, { method: 'POST', body: JSON.stringify(body) });
  expect(response.ok).toBe(true);
  return response.json() as Promise<any>;
}

async function register(token: string) {
  const response = await fetch(`${api.url}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({ 'x-amzn-marketplace-token': token }),
  });
  expect(response.status).toBe(200);
  return response.json() as Promise<{ customerKey: string }>;
}

const entitlementCalls = async () =>
  ((await (await fetch(`${simulator.url}/_admin/calls?operation=GetEntitlements`)).json()) as { calls: unknown[] }).calls.length;

it('stores a contract customer\'s entitlements at registration and announces them', async () => {
  const customer = await admin('/_admin/customers', { productCode: contract.productCode });
  await admin('/_admin/entitlements', {
    licenseArn: customer.licenseArn,
    entitlements: [{ dimension: 'seats', integerValue: 25, expirationDate: '2027-11-01T00:00:00Z' }],
  });

  const { customerKey } = await register(customer.registrationToken);

  const { Item } = await registration.documents.send(new GetCommand({ TableName: registration.tableName, Key: { customerKey } }));
  expect(Item?.entitlements).toEqual([{ dimension: 'seats', value: { IntegerValue: 25 }, expirationDate: '2027-11-01T00:00:00.000Z' }]);
  const event = registration.events.filter((e) => e.detailType === REGISTERED_EVENT).pop();
  expect(event?.detail).toMatchObject({ customerKey, entitlements: [expect.objectContaining({ dimension: 'seats' })] });
});

it('does not call GetEntitlements for a product that is not a contract', async () => {
  const before = await entitlementCalls();
  const customer = await admin('/_admin/customers', { productCode: usageOnly.productCode });
  const { customerKey } = await register(customer.registrationToken);
  expect(await entitlementCalls()).toBe(before);
  const { Item } = await registration.documents.send(new GetCommand({ TableName: registration.tableName, Key: { customerKey } }));
  expect(Item?.entitlements).toBeUndefined();
});
