import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { LocalEnvironment, LocalEnvironmentOptions, startLocalEnvironment } from '../../local/local-environment';
import {
  checkJava,
  JAVA_INSTALL_HINT,
  JavaUnavailableError,
  localClientConfig,
  startDynamoDbLocal,
  startLocalSqs,
  type DynamoDbLocalOptions,
  type LocalDynamoDb,
  type LocalSqs,
  type LocalSqsOptions,
} from '../../local/services';

/**
 * Jest helpers for suites that need real local services or machine components.
 *
 * A missing component fails the suite with a message saying how to install it; it is never
 * skipped, in CI or not, so a green run always means the tests really ran.
 */

/** Starting a cold JVM on a busy CI machine can take a while. */
const START_TIMEOUT_MS = 120_000;

export const CHROMIUM_PATH = '/usr/bin/chromium';
export const CHROMIUM_INSTALL_HINT =
  'Install Debian\'s Chromium: `apt-get install -y --no-install-recommends chromium` (or run `.ci/run` as root, which does it).';

/**
 * Checks that a component is present; throws an Error naming it and saying how to install it when
 * it is not. `check` returns false, or throws (its message is kept), when the component is missing.
 */
export async function assertComponent(
  name: string,
  check: () => boolean | Promise<boolean>,
  installHint: string,
): Promise<void> {
  let detail = '';
  let present: boolean;
  try {
    present = await check();
  } catch (error) {
    present = false;
    detail = ` (${error instanceof Error ? error.message : String(error)})`;
  }
  if (!present) {
    throw new Error(`${name} is required by these tests but is not available${detail}.\nHow to install it: ${installHint}`);
  }
}

/**
 * Declares that the tests of the enclosing `describe` (or file) need a component: when it is
 * missing, each of them fails with the install hint. Call at describe level, not inside a test.
 */
export function requireComponent(name: string, check: () => boolean | Promise<boolean>, installHint: string): void {
  beforeAll(() => assertComponent(name, check, installHint));
}

/** Java 17+ on PATH, for DynamoDB Local. */
export function requireJava(): void {
  requireComponent(
    'Java 17+',
    async () => {
      try {
        await checkJava();
        return true;
      } catch (error) {
        // Keep the reason (missing, too old); the hint is added once by assertComponent.
        throw error instanceof JavaUnavailableError ? new Error(error.reason) : error;
      }
    },
    JAVA_INSTALL_HINT,
  );
}

/** Debian's Chromium at /usr/bin/chromium, for the browser tests. */
export function requireChromium(): void {
  requireComponent(
    `Chromium at ${CHROMIUM_PATH}`,
    () => access(CHROMIUM_PATH, constants.X_OK).then(
      () => true,
      () => false,
    ),
    CHROMIUM_INSTALL_HINT,
  );
}

/** A local service started for a suite, with a ready client. */
export interface LocalServiceFixture<S, C> {
  readonly endpoint: string;
  readonly port: number;
  /** A client for the running service, with the local credentials and region. */
  readonly client: C;
  readonly service: S;
}
export type DynamoDbLocalFixture = LocalServiceFixture<LocalDynamoDb, DynamoDBClient>;
export type LocalSqsFixture = LocalServiceFixture<LocalSqs, SQSClient>;

/**
 * Starts a local service before the suite's tests and stops it after. Read the returned object's
 * properties inside tests or hooks, not at describe time: they exist only once it runs.
 */
function useLocalService<S extends { endpoint: string; port: number; stop(): Promise<void> }, C extends { destroy(): void }>(
  name: string,
  start: () => Promise<S>,
  clientFor: (endpoint: string) => C,
): LocalServiceFixture<S, C> {
  let running: { service: S; client: C } | undefined;
  beforeAll(async () => {
    const service = await start();
    running = { service, client: clientFor(service.endpoint) };
  }, START_TIMEOUT_MS);
  afterAll(async () => {
    running?.client.destroy();
    await running?.service.stop();
    running = undefined;
  }, START_TIMEOUT_MS);
  const current = (): NonNullable<typeof running> => {
    if (running === undefined) throw new Error(`${name} is not running: its beforeAll failed or has not run yet`);
    return running;
  };
  return {
    get endpoint() {
      return current().service.endpoint;
    },
    get port() {
      return current().service.port;
    },
    get client() {
      return current().client;
    },
    get service() {
      return current().service;
    },
  };
}

/** DynamoDB Local (in memory) for the suite. */
export function useDynamoDbLocal(options: DynamoDbLocalOptions = {}): DynamoDbLocalFixture {
  return useLocalService('DynamoDB Local', () => startDynamoDbLocal(options), (endpoint) => new DynamoDBClient(localClientConfig(endpoint)));
}

/** The local SQS (fauxqs) for the suite. */
export function useLocalSqs(options: LocalSqsOptions = {}): LocalSqsFixture {
  return useLocalService('The local SQS', () => startLocalSqs(options), (endpoint) => new SQSClient(localClientConfig(endpoint)));
}

/**
 * The whole local environment (`npm start`'s: simulator, DynamoDB Local, fauxqs, our handlers) on
 * free ports, started before the file's tests and stopped after them. Call the returned function
 * inside a test.
 */
export function useLocalEnvironment(options: LocalEnvironmentOptions): () => LocalEnvironment {
  requireJava();
  let env: LocalEnvironment | undefined;
  beforeAll(async () => {
    env = await startLocalEnvironment({ apiPort: 0, simulatorPort: 0, ...options });
  }, 120_000);
  afterAll(async () => {
    await env?.stop();
  }, 60_000);
  return () => {
    if (!env) throw new Error('the local environment did not start');
    return env;
  };
}

/** A new buyer on the simulator who subscribes to the product and registers at our endpoint, as the buyer page does. */
export async function subscribeAndRegister(env: LocalEnvironment, productCode: string): Promise<{ licenseArn: string; registrationToken: string; customerAWSAccountId: string }> {
  const created = await fetch(`${env.simulator.url}/_admin/customers`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ productCode }) });
  if (!created.ok) throw new Error(`the simulator did not create the buyer: ${created.status} ${await created.text()}`);
  const buyer = (await created.json()) as { licenseArn: string; registrationToken: string; customerAWSAccountId: string };
  const registered = await fetch(env.registrationUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({ 'x-amzn-marketplace-token': buyer.registrationToken }).toString(),
  });
  if (registered.status !== 200) throw new Error(`registration answered ${registered.status}: ${await registered.text()}`);
  return buyer;
}

/**
 * For a test whose steps must fall in one UTC hour of the real clock (the local environment's clock
 * starts at real time): near the end of an hour, waits for the next one to begin (`marginMs` at
 * most, plus a second). Give the test a timeout that allows for it.
 */
export async function awayFromTheHourEnd(marginMs = 45_000): Promise<void> {
  const left = 3_600_000 - (Date.now() % 3_600_000);
  if (left < marginMs) await new Promise((resolve) => setTimeout(resolve, left + 1000));
}
