import { addCustomer, addProduct, seedSchema } from './admin-api';
import { SimulatorClock } from './clock';
import { SimulatorConfig } from './config';
import { createSimulatorServer } from './server';
import { SimulatorStateFile } from './persistence';
import { MarketplaceState } from './state';
import { listen } from '../services/http-listen';

export { SimulatorClock } from './clock';
export type { SimulatorClockOptions } from './clock';
export type { SimulatorConfig } from './config';
export { DEFAULT_SIMULATOR_CONFIG } from './config';

export interface StartSimulatorOptions {
  /** TCP port; 0 picks a free one. @default 0 */
  readonly port?: number;
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** The simulator's clock; keep a reference to move it from a test. @default a clock running in real time */
  readonly clock?: SimulatorClock;
  /** Behaviour switches. @default DEFAULT_SIMULATOR_CONFIG */
  readonly config?: Partial<SimulatorConfig>;
  /** Products and customers to create at start, in the admin API's shapes. @default none */
  readonly seed?: { readonly products?: unknown[]; readonly customers?: unknown[] };
  /**
   * A file the state is kept in between runs: loaded at start when it exists (before `seed`), saved
   * after each change and when the simulator stops (persistence.ts says what is kept).
   * @default none: the state lives in memory only
   */
  readonly stateFile?: string;
}

export interface SeededCustomer {
  readonly productCode: string;
  readonly customerAWSAccountId: string;
  readonly licenseArn: string;
  readonly customerIdentifier?: string;
  readonly registrationToken: string;
}

export interface RunningSimulator {
  /** `http://HOST:PORT`: the endpoint for the SDK clients and the admin API. */
  readonly url: string;
  readonly port: number;
  readonly clock: SimulatorClock;
  /** The customers created from `seed`, with their registration tokens. */
  readonly seededCustomers: readonly SeededCustomer[];
  stop(): Promise<void>;
}

/** Starts the AWS Marketplace simulator in this process. */
export async function startMarketplaceSimulator(options: StartSimulatorOptions = {}): Promise<RunningSimulator> {
  const clock = options.clock ?? new SimulatorClock();
  const state = new MarketplaceState(clock, options.config);
  const stateFile = options.stateFile === undefined ? undefined : new SimulatorStateFile(options.stateFile, state);
  stateFile?.load();
  const seed = seedSchema.parse(options.seed ?? {});
  seed.products.forEach((p) => addProduct(state, p));
  const seededCustomers = seed.customers.map((c) => addCustomer(state, c));

  await state.deliverNotifications();
  const listening = await listen(
    createSimulatorServer(state, stateFile && (() => stateFile.changed())),
    options.port,
    options.host,
  );
  if (!stateFile) return { ...listening, clock, seededCustomers };
  stateFile.save();
  return {
    ...listening,
    clock,
    seededCustomers,
    stop: async () => {
      await listening.stop();
      stateFile.save();
    },
  };
}
