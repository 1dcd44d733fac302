import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { MarketplaceState } from './state';

/**
 * The simulator's state kept in a file between runs (`npm start` with PERSIST_DATA=true keeps the
 * tables in DynamoDB Local; without this the simulator would no longer know the licences of the
 * customers kept there, and refuse their usage). Kept: products, customers with their entitlements,
 * registration tokens, billed records, and where the clock stood. Not kept: the API call log, the
 * notifications history, pending faults and the behaviour settings (each run sets its own).
 */

const date = z.iso.datetime({ offset: true }).transform((text) => new Date(text));
const optionalDate = date.optional();

const snapshotSchema = z.object({
  version: z.literal(1),
  /** Real time when saved, and the simulator's clock then: a moved clock stays moved. */
  savedAt: date,
  clockNow: date,
  products: z.array(
    z.object({
      productCode: z.string(),
      title: z.string(),
      dimensions: z.array(z.string()),
      identityMode: z.enum(['license', 'legacy']),
      fulfillmentUrl: z.string().optional(),
    }),
  ),
  customers: z.array(
    z.object({
      productCode: z.string(),
      customerAWSAccountId: z.string(),
      licenseArn: z.string(),
      licenseId: z.string(),
      customerIdentifier: z.string().optional(),
      agreementId: z.string(),
      freeTrial: z.boolean(),
      state: z.enum(['pending', 'subscribed', 'unsubscribe-pending', 'unsubscribed']),
      createdAt: date,
      subscribedAt: optionalDate,
      unsubscribedAt: optionalDate,
      unsubscribePendingAt: optionalDate,
      entitlements: z.array(
        z.object({
          dimension: z.string(),
          value: z.object({ IntegerValue: z.number().optional(), DoubleValue: z.number().optional(), BooleanValue: z.boolean().optional(), StringValue: z.string().optional() }),
          expirationDate: optionalDate,
        }),
      ),
    }),
  ),
  tokens: z.array(z.object({ token: z.string(), licenseId: z.string(), expiresAt: date })),
  billedRecords: z.array(
    z.object({
      meteringRecordId: z.string(),
      productCode: z.string(),
      licenseArn: z.string().optional(),
      customerAWSAccountId: z.string().optional(),
      customerIdentifier: z.string().optional(),
      dimension: z.string(),
      hour: date,
      timestamp: date,
      quantity: z.number(),
      allocations: z.array(z.unknown()).optional(),
      billedAt: date,
      deduplicationKey: z.string(),
    }),
  ),
});

export type SimulatorSnapshot = z.input<typeof snapshotSchema>;

/** The state as JSON-ready data (dates as ISO 8601 text). */
export function snapshotOf(state: MarketplaceState, savedAt = new Date()): SimulatorSnapshot {
  // JSON turns the Dates into ISO text and leaves out undefined fields.
  return JSON.parse(
    JSON.stringify({
      version: 1,
      savedAt,
      clockNow: state.clock.now(),
      products: [...state.products.values()],
      customers: [...state.customers.values()],
      tokens: [...state.tokens.values()],
      billedRecords: state.billedRecords,
    }),
  ) as SimulatorSnapshot;
}

/**
 * Puts a snapshot's products, customers, tokens and billed records into `state` (what it held of
 * them before is replaced). A clock that stood ahead of real time is moved ahead again, by as much.
 */
export function restoreSnapshot(state: MarketplaceState, data: unknown, now = new Date()): void {
  const parsed = snapshotSchema.safeParse(data);
  if (!parsed.success) throw new Error(`not a simulator state file (version 1): ${z.prettifyError(parsed.error)}`);
  const snapshot = parsed.data;
  state.products.clear();
  state.customers.clear();
  state.tokens.clear();
  state.billedRecords.length = 0;
  state.billedByKey.clear();
  for (const product of snapshot.products) state.products.set(product.productCode, product);
  for (const customer of snapshot.customers) state.customers.set(customer.licenseId, customer);
  for (const token of snapshot.tokens) state.tokens.set(token.token, token);
  for (const record of snapshot.billedRecords) {
    state.billedRecords.push(record);
    state.billedByKey.set(record.deduplicationKey, record);
  }
  const aheadMs = snapshot.clockNow.getTime() - snapshot.savedAt.getTime();
  if (aheadMs > 0 && state.clock.now().getTime() < now.getTime() + aheadMs) state.clock.set(new Date(now.getTime() + aheadMs));
}

/** A state file: loaded at start, saved shortly after each change and when the simulator stops. */
export class SimulatorStateFile {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly file: string,
    private readonly state: MarketplaceState,
    /** How long a change waits to be saved, so a burst of calls is one write. */
    private readonly delayMs = 200,
  ) {}

  /** Restores the file's state; false when there is no file yet. */
  load(): boolean {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw error;
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      throw new Error(`${this.file} is not JSON: delete it to start the simulator empty`);
    }
    try {
      restoreSnapshot(this.state, data);
    } catch (error) {
      throw new Error(`${this.file}: ${(error as Error).message}; delete it to start the simulator empty`);
    }
    return true;
  }

  /** Saves soon (one write for the changes of the next `delayMs`). */
  changed(): void {
    this.timer ??= setTimeout(() => this.save(), this.delayMs);
  }

  /** Saves now: written to a temporary file and renamed, so a crash never leaves half a file. */
  save(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    mkdirSync(path.dirname(this.file), { recursive: true });
    const temporary = `${this.file}.${process.pid}.tmp`;
    writeFileSync(temporary, JSON.stringify(snapshotOf(this.state)));
    renameSync(temporary, this.file);
  }
}
