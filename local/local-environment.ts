import { LocalDynamoDb, LocalSqs, startDynamoDbLocal, startLocalSqs } from './services';
import { RunningSimulator, startMarketplaceSimulator } from './simulator';

/**
 * Everything the local flow runs on, started together and stopped together: the AWS Marketplace
 * simulator, DynamoDB Local and a local SQS. Used by `npm start` and by end-to-end tests.
 */

export interface LocalEnvironmentOptions {
  /** Simulator port. @default 3001 (0: a free port) */
  readonly simulatorPort?: number;
  /** The product the simulator offers at start. @default DEMO_PRODUCT */
  readonly product?: typeof DEMO_PRODUCT;
  /** Keep DynamoDB Local's data in `.local-data/` between runs. @default false */
  readonly persistData?: boolean;
}

export interface LocalEnvironment {
  readonly simulator: RunningSimulator;
  readonly dynamoDb: LocalDynamoDb;
  readonly sqs: LocalSqs;
  stop(): Promise<void>;
}

/** The product `npm start` lists on the simulator's buyer page. */
export const DEMO_PRODUCT = {
  productCode: 'demo-saas-product',
  title: 'Demo SaaS product',
  identityMode: 'license' as 'license' | 'legacy',
  dimensions: ['requests', 'storage_gb'],
  fulfillmentUrl: undefined as string | undefined,
};

export async function startLocalEnvironment(options: LocalEnvironmentOptions = {}): Promise<LocalEnvironment> {
  const started: { stop(): Promise<void> }[] = [];
  const stopAll = async () => {
    // Reverse order, and every one of them even if one fails.
    const results = await Promise.allSettled(started.reverse().map((s) => s.stop()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  };
  try {
    const [dynamoDb, sqs] = await Promise.all([
      startDynamoDbLocal({ inMemory: !options.persistData }).then((s) => (started.push(s), s)),
      startLocalSqs().then((s) => (started.push(s), s)),
    ]);
    const product = options.product ?? DEMO_PRODUCT;
    const simulator = await startMarketplaceSimulator({
      port: options.simulatorPort ?? 3001,
      seed: { products: [product] },
    });
    started.push(simulator);
    return { simulator, dynamoDb, sqs, stop: stopAll };
  } catch (error) {
    await stopAll().catch(() => undefined);
    throw error;
  }
}
