/**
 * Crash-point harness for usage ingestion: every I/O the ingest path makes goes through a
 * CrashPlan that counts the calls and, on the k-th one, fails before the real call or after it
 * succeeded (the write landed). Two failure models:
 * - `throw`: the call throws; the handler goes on (what it catches it catches) and reports its
 *   batch item failures; the same Lambda container (caches kept) handles the redelivery.
 * - `kill`: the Lambda process dies at that point: nothing more it starts lands (calls already in
 *   flight finish), the invocation fails, so SQS redelivers every message of the batch, to a fresh
 *   container.
 */
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { CachedCustomerDirectory } from '../../lambda/adapters/customer-directory';
import { DeadLetter, DeadLetterQueue } from '../../lambda/adapters/dead-letter-queue';
import { DynamoDbUsageJournal } from '../../lambda/adapters/usage-journal';
import { eventSeenKeyOf, foldHour } from '../../lambda/core/metering/fold';
import { ProductConfig } from '../../lambda/core/product-config';
import { CustomerDirectory } from '../../lambda/core/usage/ingest';
import { UsageJournal } from '../../lambda/core/usage/usage-journal';
import { createIngestHandler } from '../../lambda/ingest/ingest-batch';

export type When = 'before' | 'after';
export type Mode = 'throw' | 'kill';

export class InjectedCrash extends Error {
  override readonly name = 'InjectedCrash';
}

/** Counts I/O calls (every layer: ports, then the SDK clients under them) and crashes the k-th. */
export class CrashPlan {
  readonly calls: string[] = [];
  fired?: string;
  killed = false;

  constructor(
    readonly k: number | undefined,
    readonly when: When,
    readonly mode: Mode,
  ) {}

  static none(): CrashPlan {
    return new CrashPlan(undefined, 'before', 'throw');
  }

  async call<T>(point: string, real: () => Promise<T>): Promise<T> {
    if (this.killed) throw new InjectedCrash(`${point}: the process is dead`);
    const n = this.calls.push(point);
    const mine = n === this.k;
    if (mine && this.when === 'before') this.fire(n, point);
    let result: T;
    try {
      result = await real();
    } catch (error) {
      // The process died once the call came back (with its error).
      if (mine && this.when === 'after') this.fire(n, point);
      throw error;
    }
    if (mine && this.when === 'after') this.fire(n, point);
    return result;
  }

  private fire(n: number, point: string): never {
    this.fired = `#${n} ${point} (${this.when}, ${this.mode})`;
    if (this.mode === 'kill') this.killed = true;
    throw new InjectedCrash(`injected crash ${this.fired}`);
  }
}

/** Where the current plan is read from: clients are shared, plans change per delivery. */
export interface PlanHolder {
  plan: CrashPlan;
}

/** Wraps every SDK call of a client (DynamoDB document client or SQS client) in the plan. */
export function instrumentClient(client: DynamoDBDocumentClient | SQSClient, prefix: string, holder: PlanHolder): void {
  (client.middlewareStack as DynamoDBDocumentClient['middlewareStack']).add(
    (next, context) => async (args) => holder.plan.call(`${prefix}.${context.commandName}`, () => next(args)),
    { step: 'initialize', name: `crashPoints-${prefix}`, priority: 'high' },
  );
}

function wrapJournal(journal: UsageJournal, holder: PlanHolder): UsageJournal {
  return {
    append: (entries) => holder.plan.call('journal.append', () => journal.append(entries)),
    storedPositions: (messageId, hours) => holder.plan.call('journal.storedPositions', () => journal.storedPositions(messageId, hours)),
    recordRefused: (messageId, refused, at) => holder.plan.call('journal.recordRefused', () => journal.recordRefused(messageId, refused, at)),
    refusedPositions: (messageId) => holder.plan.call('journal.refusedPositions', () => journal.refusedPositions(messageId)),
  };
}

function wrapDirectory(directory: CustomerDirectory, holder: PlanHolder): CustomerDirectory {
  return { find: (keys) => holder.plan.call('customers.find', () => directory.find(keys)) };
}

function wrapDeadLetters(queue: DeadLetterQueue, holder: PlanHolder): Pick<DeadLetterQueue, 'send'> {
  return { send: (letters: readonly DeadLetter[]) => holder.plan.call('deadLetters.send', () => queue.send(letters)) };
}

export interface ContainerOptions {
  readonly holder: PlanHolder;
  /** Instrumented clients (their SDK calls go through the plan). */
  readonly documents: DynamoDBDocumentClient;
  readonly sqs: SQSClient;
  readonly journalTable: string;
  readonly customersTable: string;
  readonly deadLetterQueueUrl: string;
  readonly products: readonly ProductConfig[];
  readonly now: () => Date;
}

/** A Lambda container: the ingest handler with its own caches, every I/O under the plan. */
export function ingestContainer(options: ContainerOptions): (event: SQSEvent) => Promise<SQSBatchResponse> {
  const { holder } = options;
  return createIngestHandler({
    ports: {
      journal: wrapJournal(new DynamoDbUsageJournal(options.documents, options.journalTable), holder),
      customers: wrapDirectory(new CachedCustomerDirectory(options.documents, options.customersTable), holder),
      products: options.products,
      now: options.now,
    },
    deadLetters: wrapDeadLetters(new DeadLetterQueue(options.sqs, options.deadLetterQueueUrl), holder),
    log: { info: () => undefined, warn: () => undefined },
  });
}

export interface BucketCount {
  quantity: number;
  usageEvents: number;
}

/**
 * The journal's content as the metering run would fold it, without sealing anything: each hour's
 * entries through the core fold (eventIds de-duplicated; a late event checked against what the
 * hours before saw, as seenBeforeLookup does), keyed `customerKey|dimension|hourStart`.
 */
export async function foldJournal(journal: DynamoDbUsageJournal, hours: readonly string[]): Promise<Map<string, BucketCount>> {
  const seen = new Set<string>();
  const out = new Map<string, BucketCount>();
  for (const hourStart of hours) {
    const entries = await journal.entries(hourStart);
    const result = foldHour({ hourStart, entries, seenBefore: (key) => seen.has(key) });
    for (const b of result.buckets) out.set(`${b.customerKey}|${b.dimension}|${b.hourStart}`, { quantity: b.quantity, usageEvents: b.usageEvents });
    for (const entry of entries) {
      for (const event of entry.events) {
        seen.add(eventSeenKeyOf(entry.rolledFrom ?? hourStart, entry, event));
      }
    }
  }
  return out;
}

/** Differences between folded and expected buckets: LOST (less than expected) or DOUBLE (more). */
export function bucketProblems(actual: ReadonlyMap<string, BucketCount>, expected: ReadonlyMap<string, BucketCount>): string[] {
  const problems: string[] = [];
  for (const key of new Set([...expected.keys(), ...actual.keys()])) {
    const want = expected.get(key) ?? { quantity: 0, usageEvents: 0 };
    const got = actual.get(key) ?? { quantity: 0, usageEvents: 0 };
    if (got.quantity === want.quantity && got.usageEvents === want.usageEvents) continue;
    const kind = got.quantity < want.quantity ? 'LOST' : 'DOUBLE';
    problems.push(`${kind} ${key}: quantity ${got.quantity} (expected ${want.quantity}), events ${got.usageEvents} (expected ${want.usageEvents})`);
  }
  return problems;
}
