import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { ProductConfig } from '../lambda/core/product-config';
import { ProvisioningEvent } from '../lambda/core/registration/registration-service';
import { RegistrationLog } from '../lambda/registration/http';
import { LocalApiServer, startLocalApiServer } from './api-gateway-server';
import { LocalClock } from './local-clock';
import { createLocalRegistration, LocalRegistration } from './local-registration';
import { createLocalUsage, LocalUsage } from './local-usage';
import { createLocalLifecycle } from './local-lifecycle';
import { LifecycleLog } from '../lambda/lifecycle/lifecycle-dispatch';
import { IngestLog } from '../lambda/ingest/ingest-batch';
import { MeteringLog } from '../lambda/metering/metering-job';
import { MeteringSettings } from '../lambda/core/metering/metering-run';
import { LocalDynamoDb, LocalSqs, startDynamoDbLocal, startLocalSqs } from './services';
import { RunningSimulator, startMarketplaceSimulator } from './simulator';

/**
 * Everything the local flow runs on, started together and stopped together: the AWS Marketplace
 * simulator, DynamoDB Local, a local SQS, and our handlers behind a local API Gateway. Used by
 * `npm start` and by end-to-end and browser tests.
 */

export interface LocalEnvironmentOptions {
  /** Local API port. @default 3000 (0: a free port) */
  readonly apiPort?: number;
  /** Simulator port. @default 3001 (0: a free port) */
  readonly simulatorPort?: number;
  /** The product the simulator offers and the stack serves. @default DEMO_PRODUCT */
  readonly product?: ProductConfig;
  /**
   * Keep the data between runs: DynamoDB Local's tables and the simulator's state (its customers,
   * what it billed, its clock), in `dataDirectory`. @default false
   */
  readonly persistData?: boolean;
  /** Where persistData keeps them. @default `.local-data/` in the repository */
  readonly dataDirectory?: string;
  /** @default a random secret for this run */
  readonly referenceSecret?: string;
  /** @default silent */
  readonly log?: RegistrationLog;
  readonly onEvent?: (event: ProvisioningEvent) => void;
  /** Seconds between scheduled metering runs; 0: only on `POST /_local/metering/run`. @default 0 */
  readonly meteringIntervalSeconds?: number;
  readonly meteringSettings?: Partial<MeteringSettings>;
  /** @default silent */
  readonly usageLog?: IngestLog & MeteringLog;
  /** @default silent */
  readonly lifecycleLog?: LifecycleLog;
  /**
   * How long after a customer's access ends its final usage is sealed and metered (by the next
   * metering run from then). @default 300, as the stack
   */
  readonly finalUsageDelaySeconds?: number;
}

export interface LocalEnvironment {
  readonly simulator: RunningSimulator;
  readonly dynamoDb: LocalDynamoDb;
  readonly sqs: LocalSqs;
  readonly api: LocalApiServer;
  readonly registration: LocalRegistration;
  readonly usage: LocalUsage;
  readonly product: ProductConfig;
  /** The fulfillment URL AWS Marketplace (the simulator) posts buyers to. */
  readonly registrationUrl: string;
  readonly referenceSecret: string;
  stop(): Promise<void>;
}

const DEFAULT_DATA_DIRECTORY = path.resolve(__dirname, '..', '.local-data');

/** The product `npm start` lists on the simulator's buyer page. */
export const DEMO_PRODUCT: ProductConfig = {
  productCode: 'demo-saas-product',
  displayName: 'Demo SaaS product',
  identityMode: 'license',
  dimensions: ['requests', 'storage_gb'],
};

export async function startLocalEnvironment(options: LocalEnvironmentOptions = {}): Promise<LocalEnvironment> {
  const started: { stop(): Promise<void> }[] = [];
  const keep = <T extends { stop(): Promise<void> }>(service: T) => (started.push(service), service);
  const stopAll = async () => {
    // One at a time in reverse order (the API and the usage poller finish their work before the
    // tables and queues they use go away), and every one of them even if one fails.
    let failure: unknown;
    for (const service of started.splice(0).reverse()) {
      try {
        await service.stop();
      } catch (error) {
        failure ??= error;
      }
    }
    if (failure !== undefined) throw failure;
  };
  try {
    const product = options.product ?? DEMO_PRODUCT;
    const referenceSecret = options.referenceSecret ?? randomBytes(32).toString('hex');
    const dataDirectory = path.resolve(options.dataDirectory ?? DEFAULT_DATA_DIRECTORY);
    const [dynamoDb, sqs, simulator] = await Promise.all([
      startDynamoDbLocal(options.persistData ? { dbPath: path.join(dataDirectory, 'dynamodb') } : { inMemory: true }).then(keep),
      startLocalSqs().then(keep),
      startMarketplaceSimulator({
        port: options.simulatorPort ?? 3001,
        // The simulator keeps its licences with the tables, or it would refuse the kept customers' usage.
        stateFile: options.persistData ? path.join(dataDirectory, 'simulator.json') : undefined,
      }).then(keep),
    ]);
    // One clock for the whole local stack: a demo moves it forward (and the simulator's with it), and
    // a buyer registering after that must be registered at the moved time, as its licence starts.
    const clock = new LocalClock(simulator.url);
    await clock.catchUpWithSimulator();
    const registration = await createLocalRegistration({
      now: () => clock.now(),
      simulatorUrl: simulator.url,
      dynamoDbEndpoint: dynamoDb.endpoint,
      products: [product],
      referenceSecret,
      log: options.log,
      onEvent: options.onEvent,
    });
    const usage = keep(
      await createLocalUsage({
        sqsEndpoint: sqs.endpoint,
        dynamoDbEndpoint: dynamoDb.endpoint,
        simulatorUrl: simulator.url,
        products: [product],
        customersTableName: registration.tableName,
        clock,
        meteringIntervalSeconds: options.meteringIntervalSeconds,
        meteringSettings: options.meteringSettings,
        log: options.usageLog,
      }),
    );
    const lifecycle = createLocalLifecycle({
      documents: registration.documents,
      customersTableName: registration.tableName,
      ledger: usage.ledger,
      simulatorUrl: simulator.url,
      products: [product],
      meterNow: () => usage.meter(),
      now: () => usage.clock.now(),
      finalUsageDelaySeconds: options.finalUsageDelaySeconds,
      publish: async (event) => {
        registration.events.push(event);
        options.onEvent?.(event);
      },
      log: options.lifecycleLog,
    });
    const api = keep(
      await startLocalApiServer({
        routes: [...registration.routes, ...usage.routes, ...lifecycle.routes],
        port: options.apiPort ?? 3000,
      }),
    );
    // The simulator tells us about subscriptions as AWS Marketplace would.
    await fetch(`${simulator.url}/_admin/config`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ notificationUrl: `${api.url}/_local/lifecycle` }),
    });
    const registrationUrl = `${api.url}/register`;
    await offerOnSimulator(simulator.url, product, registrationUrl);
    return { simulator, dynamoDb, sqs, api, registration, usage, product, registrationUrl, referenceSecret, stop: stopAll };
  } catch (error) {
    await stopAll().catch(() => undefined);
    throw error;
  }
}

/** Lists the product on the simulator with our registration endpoint as its fulfillment URL. */
async function offerOnSimulator(simulatorUrl: string, product: ProductConfig, fulfillmentUrl: string): Promise<void> {
  const response = await fetch(`${simulatorUrl}/_admin/products`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      productCode: product.productCode,
      title: product.displayName ?? product.productCode,
      identityMode: product.identityMode,
      dimensions: product.dimensions,
      fulfillmentUrl,
    }),
  });
  if (!response.ok) throw new Error(`The simulator refused the product: ${response.status} ${await response.text()}`);
}
