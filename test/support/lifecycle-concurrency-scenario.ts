/**
 * Harness for test/integration/lifecycle-concurrency.test.ts: the subscription ending while
 * usage flows. Several ingest "containers" at once (SQS twins, redeliveries, DynamoDB jitter, as in
 * concurrency-scenario.ts, plus stray same-count duplicates delivered minutes later), metering runs (one at a time, every 5 virtual minutes, and at once when
 * the lifecycle asks for it) that seal and fold hours and flush final usage early, and lifecycle
 * changes at random moments driven through the real path: the simulator's admin API changes the
 * buyer's subscription, the simulator POSTs the EventBridge / SNS notification to the local
 * lifecycle route (createLocalLifecycle: the lifecycle handler, LifecycleService and its DynamoDB
 * ports), which writes the Customers table and schedules the final usage flush in the journal.
 *
 * Property (checkOutcomes), per distinct usage event sent (a power-of-two quantity, unique in its
 * customer x dimension, so every billed record says which events it holds): billed exactly once, or
 * dead-lettered with a reason (usage or metering dead-letter queue, per event or in a dead-lettered
 * bucket; letters may repeat), never both, never neither; per customer x dimension x hour at most one
 * billed record and no DuplicateRecord; every letter's reason justified by the customer's lifecycle
 * (hour-already-billed only after a flush of that customer, customer-not-subscribed only for a
 * customer whose access ended); no bucket left unmetered or counting an event twice. "Both" is judged
 * per copy (message id + position): a copy one delivery journaled (and no fold refused) but another
 * dead-lettered, or a billed event whose every copy, or whose bucket, was dead-lettered. A resend of
 * a billed event in another message (same eventId) refused when it came is counted apart, not a
 * problem: ingestion judges each message's events (customer-not-subscribed, timestamp windows)
 * before eventIds are de-duplicated, at the fold.
 */
import { DeleteTableCommand } from '@aws-sdk/client-dynamodb';
import { BatchMeterUsageCommand, MarketplaceMeteringClient } from '@aws-sdk/client-marketplace-metering';
import { DeleteQueueCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { paginateScan, PutCommand } from '@aws-sdk/lib-dynamodb';
import { CustomerSubscriptions } from '../../lambda/adapters/customer-directory';
import { DeadLetterQueue } from '../../lambda/adapters/dead-letter-queue';
import { sdkMeteringApi } from '../../lambda/adapters/metering-api';
import { DynamoDbMeteringLedger } from '../../lambda/adapters/metering-ledger';
import { decodeUsage } from '../../lambda/adapters/journal-usage-codec';
import { legacyCustomerKey, licenseCustomerKey } from '../../lambda/core/customer';
import { MeteringPorts, MeteringReport } from '../../lambda/core/metering/metering-run';
import { ProductConfig } from '../../lambda/core/product-config';
import { HOUR_MS, utcHourStart } from '../../lambda/core/utc-hour';
import { meteringDeadLetters, meterNow } from '../../lambda/metering/metering-job';
import { startLocalApiServer } from '../../local/api-gateway-server';
import { createLocalLifecycle } from '../../local/local-lifecycle';
import { localClientConfig } from '../../local/services';
import { SimulatorClock, startMarketplaceSimulator } from '../../local/simulator';
import { LAMBDA_TIMEOUT_MS, LEGACY, LICENSE, MIN_MS, PRODUCTS, scenarioResources, Services, takeAll, VirtualClock } from './concurrency-scenario';
import { FleetOptions, FleetStats, JournalGate, newFleetStats, sleep, startIngestionFleet, tracedIngest } from './ingestion-fleet';
import { simulatorAdmin } from './metering-environment';
import { Copy, customerItemOf, PlannedMessage, planUsage, ScenarioCustomer, scenarioCustomerOf, Series, seriesOf, UsagePlanOptions, UsageUnit as Unit } from './usage-plan';

export type { Copy, PlannedMessage, Series, Unit };
import { seededRandom } from '../unit/lifecycle/event-history';

export { MIN_MS, LAMBDA_TIMEOUT_MS };
export type { Services };

// ---------------------------------------------------------------------------------------------
// The plan: customers, usage, lifecycle changes

/** The scenario's customers: three licence customers, two legacy ones. */
export const CUSTOMER_NAMES = [
  ['L1', LICENSE],
  ['L2', LICENSE],
  ['L3', LICENSE],
  ['G1', LEGACY],
  ['G2', LEGACY],
] as const;

export type SubscriptionState = 'subscribed' | 'unsubscribe-pending' | 'unsubscribed';

/** A change of a buyer's subscription on AWS Marketplace (the simulator), at a virtual time. */
export interface PlannedChange {
  readonly customer: string;
  readonly state: SubscriptionState;
  readonly at: number;
}

/**
 * The fleet's options (ingestion-fleet.ts), with these defaults here: twinChance 0.3,
 * strayDuplicateChance 0.05 (a standard queue's at-least-once duplicate, from a server that missed
 * the delete), dynamoPauseChance 0.02; the usage planned (usage-plan.ts; defaults: 20 units per
 * series, 25% without eventId, 20% of eventId events sent again, 12% late, 25% slow); and the
 * lifecycle.
 */
export interface LifecycleScenarioOptions extends FleetOptions, UsagePlanOptions {
  /** @default 45 s / 25 ms */
  readonly tickVirtualMs?: number;
  readonly tickRealMs?: number;
  /** The lifecycle's final usage delay. @default 300, as the stack */
  readonly finalUsageDelaySeconds?: number;
  /** The lifecycle changes; default: planLifecycle(seed). */
  readonly lifecycle?: readonly PlannedChange[];
  /** Harness self-check: this message is deleted from the queue unread, as if lost. */
  readonly dropMessage?: (messages: readonly PlannedMessage[]) => PlannedMessage | undefined;
  /** Harness self-check: runs after everything settled, before the outcomes are read. */
  readonly tamper?: (context: TamperContext) => Promise<void>;
}

export interface TamperContext {
  readonly changes: readonly PlannedChange[];
  readonly units: readonly Unit[];
  readonly series: readonly Series[];
  readonly messages: readonly PlannedMessage[];
  readonly marketplace: MarketplaceMeteringClient;
  readonly sqs: SQSClient;
  readonly usageDeadLettersUrl: string;
  readonly billed: () => Promise<BilledRecord[]>;
}

export interface BilledRecord {
  readonly licenseArn?: string;
  readonly customerIdentifier?: string;
  readonly dimension: string;
  readonly hour: string;
  readonly quantity: number;
}

/** The lifecycle changes of a seed: who leaves, when, and who comes back (legacy buyers only). */
export function planLifecycle(seed: number, start: Date, end: Date): PlannedChange[] {
  const rand = seededRandom(seed ^ 0x11fec7c1);
  const changes: PlannedChange[] = [];
  const from = start.getTime() + 20 * MIN_MS;
  const last = end.getTime() - 2 * MIN_MS;
  const between = (a: number, b: number) => a + Math.floor(rand() * Math.max(0, b - a));
  const add = (customer: string, state: SubscriptionState, at: number) => {
    if (at <= last) changes.push({ customer, state, at });
    return at;
  };
  const shuffled = <T>(items: readonly T[]) => items.map((item) => ({ item, r: rand() })).sort((a, b) => a.r - b.r).map(({ item }) => item);
  const [leaves, endsOrLeaves, stays] = shuffled(['L1', 'L2', 'L3']);
  void stays; // the control: never leaves
  // Agreement ended (unsubscribe-pending), often followed by License Deprovisioned (unsubscribed).
  let t = add(leaves, 'unsubscribe-pending', between(from, last - 20 * MIN_MS));
  if (rand() < 0.6) add(leaves, 'unsubscribed', t + between(2 * MIN_MS, 55 * MIN_MS));
  // License Deprovisioned alone, or an agreement that ends (then, sometimes, deprovisioned).
  t = between(from, last - 10 * MIN_MS);
  if (rand() < 0.5) add(endsOrLeaves, 'unsubscribed', t);
  else {
    add(endsOrLeaves, 'unsubscribe-pending', t);
    if (rand() < 0.4) add(endsOrLeaves, 'unsubscribed', t + between(2 * MIN_MS, 60 * MIN_MS));
  }
  const [comesBack, leavesForGood] = shuffled(['G1', 'G2']);
  // unsubscribe-pending, then subscribe-success (a re-subscribe) around when the flush is due, maybe leaving again later.
  t = add(comesBack, 'unsubscribe-pending', between(from, last - 45 * MIN_MS));
  t = add(comesBack, 'subscribed', t + between(1 * MIN_MS, 12 * MIN_MS));
  if (rand() < 0.6) {
    t = add(comesBack, 'unsubscribe-pending', t + between(6 * MIN_MS, 40 * MIN_MS));
    if (rand() < 0.5) add(comesBack, 'unsubscribed', t + between(3 * MIN_MS, 55 * MIN_MS));
  }
  // unsubscribe-pending, then often unsubscribe-success (no more metering).
  t = add(leavesForGood, 'unsubscribe-pending', between(from, last - 15 * MIN_MS));
  if (rand() < 0.6) add(leavesForGood, 'unsubscribed', t + between(3 * MIN_MS, 65 * MIN_MS));
  return changes.sort((a, b) => a.at - b.at);
}

// ---------------------------------------------------------------------------------------------
// The checker (pure)

/** A dead letter as read from a queue. */
export interface Letter {
  readonly queue: 'usage' | 'metering';
  readonly reason: string;
  readonly body: any;
}

export interface LedgerBucket {
  readonly bucketKey: string;
  readonly customerKey: string;
  readonly dimension: string;
  readonly hourStart: string;
  readonly quantity: number;
  readonly usageEvents: number;
  readonly status: string;
  readonly outcome?: string;
}

export interface Observed {
  readonly series: readonly Series[];
  readonly units: readonly Unit[];
  readonly messages: readonly PlannedMessage[];
  readonly billed: readonly BilledRecord[];
  readonly letters: readonly Letter[];
  readonly buckets: readonly LedgerBucket[];
  /** Early meterings recorded in the journal (`flush#<hour>` items): customer and hour. */
  readonly flushes: readonly { customerKey: string; hourStart: string }[];
  /** Customers whose access ended at some point (unsubscribe-pending or unsubscribed). */
  readonly ended: ReadonlySet<string>;
  /** Copies (`<sqs message id>@<position>`) some delivery wrote in a journal entry (counted by it). */
  readonly journaled: ReadonlySet<string>;
}

/** What happened to one event, as the checker found it. */
export interface UnitOutcome {
  readonly unit: Unit;
  readonly billedIn: string[];
  readonly letters: { readonly reason: string; readonly queue: string; readonly copy?: string }[];
}

export interface CheckResult {
  readonly problems: string[];
  readonly outcomes: readonly UnitOutcome[];
  /** Events billed once, events dead-lettered only, by reason. */
  readonly billedOnce: number;
  readonly refusedOnly: Record<string, number>;
  /** Events billed once whose resend (another message, same eventId) was refused, by reason. */
  readonly resendsRefused: Record<string, number>;
  readonly resendNotes: readonly string[];
}

const popcount = (n: number) => {
  let c = 0;
  for (let v = n; v > 0; v = Math.floor(v / 2)) c += v % 2;
  return c;
};
const bitsOf = (n: number): number[] => {
  const bits: number[] = [];
  for (let k = 0, v = n; v > 0; k++, v = Math.floor(v / 2)) if (v % 2 === 1) bits.push(2 ** k);
  return bits;
};

const copyNameOf = (copy: Copy) => `m${copy.message}@${copy.position}`;

/** Reasons ingestion may refuse a resend of an event another message had billed: they depend on when it comes. */
const RESEND_REASONS = new Set(['customer-not-subscribed', 'timestamp-out-of-window', 'timestamp-in-future']);

/** Reasons an event may be refused for while its customer's subscription ends. */
const LIFECYCLE_REASONS: Record<string, 'flush' | 'ended'> = {
  'hour-already-billed': 'flush',
  'customer-not-subscribed': 'ended',
  CustomerNotSubscribed: 'ended',
};

/** How problem lines name an event: customer, dimension, quantity, eventId. */
export function unitName(series: readonly Series[], u: Unit): string {
  return `${series[u.series].customer.name} ${series[u.series].dimension} 2^${Math.log2(u.quantity)}${u.eventId ? ` (${u.eventId})` : ' (no eventId)'}`;
}

export function checkOutcomes(observed: Observed): CheckResult {
  const { series, units, messages } = observed;
  const problems: string[] = [];
  const seriesByKey = new Map(series.map((s) => [s.key, s]));
  const unitOf = new Map<string, Unit>();
  for (const u of units) unitOf.set(`${u.series}|${u.quantity}`, u);
  const outcomes = new Map<Unit, UnitOutcome>(units.map((u) => [u, { unit: u, billedIn: [], letters: [] }]));
  const nameOf = (u: Unit) => unitName(series, u);
  const flushedCustomers = new Set(observed.flushes.map((f) => f.customerKey));
  const copyName = (messageId: unknown, position: unknown): string => {
    const m = messages.find((x) => x.sqsMessageId === messageId);
    return `${m ? `m${m.index}` : String(messageId)}@${String(position)}`;
  };
  /** Copies a delivery counted (journaled) and no fold refused: their event counted, if it was not a repeat. */
  const refusedByFold = new Set<string>();
  for (const letter of observed.letters) if (letter.queue === 'metering' && letter.body?.kind === 'usage-event') refusedByFold.add(copyName(letter.body.messageId, letter.body.position));
  const counted = new Set([...observed.journaled].map((c) => copyName(c.split('@')[0], c.split('@')[1])).filter((c) => !refusedByFold.has(c)));

  // Billed: each record's quantity says which events it holds.
  const perHour = new Map<string, number>();
  for (const r of observed.billed) {
    const s = series.find((x) => x.dimension === r.dimension && (x.customer.identityMode === 'license' ? x.customer.licenseArn === r.licenseArn : x.customer.customerIdentifier === r.customerIdentifier));
    if (!s) {
      problems.push(`BILLED UNKNOWN ${JSON.stringify(r)}`);
      continue;
    }
    const hourKey = `${s.customer.name}|${s.dimension}|${r.hour}`;
    perHour.set(hourKey, (perHour.get(hourKey) ?? 0) + 1);
    for (const q of bitsOf(r.quantity)) {
      const u = unitOf.get(`${s.index}|${q}`);
      if (!u) problems.push(`BILLED UNKNOWN EVENT ${s.customer.name} ${s.dimension} ${q} in ${r.hour} (record quantity ${r.quantity})`);
      else outcomes.get(u)!.billedIn.push(r.hour);
    }
  }
  for (const [hourKey, count] of perHour) if (count > 1) problems.push(`BILLED TWICE IN ONE HOUR ${hourKey}: ${count} records`);

  // Dead letters: per event (usage queue, or a usage event the fold refused), or a whole bucket.
  for (const letter of observed.letters) {
    const b = letter.body ?? {};
    if (letter.reason === 'DuplicateRecord') problems.push(`DUPLICATE RECORD ${JSON.stringify(b.bucket ?? b).slice(0, 300)}`);
    let customerKey: string | undefined;
    let found: { unit: Unit; copy?: string }[] = [];
    if (letter.queue === 'usage') {
      const e = b.event ?? {};
      customerKey = e.licenseArn ? licenseCustomerKey(e.licenseArn) : e.customerIdentifier ? legacyCustomerKey(e.productCode, e.customerIdentifier) : undefined;
      const u = unitOf.get(`${seriesByKey.get(`${customerKey}|${e.dimension}`)?.index}|${e.quantity}`);
      if (u) found = [{ unit: u, copy: copyName(b.messageId, b.position) }];
    } else if (b.kind === 'usage-event') {
      customerKey = b.customerKey;
      const u = unitOf.get(`${seriesByKey.get(`${b.customerKey}|${b.dimension}`)?.index}|${b.quantity}`);
      if (u) found = [{ unit: u, copy: copyName(b.messageId, b.position) }];
    } else if (b.bucket) {
      customerKey = b.bucket.customerKey;
      const s = seriesByKey.get(`${b.bucket.customerKey}|${b.bucket.dimension}`);
      for (const q of bitsOf(Number(b.bucket.quantity))) {
        const u = s && unitOf.get(`${s.index}|${q}`);
        if (u) found.push({ unit: u, copy: `bucket ${String(b.bucket.hourStart).slice(11, 16)}` });
        else problems.push(`LETTER FOR AN UNKNOWN EVENT ${letter.reason} ${JSON.stringify(b.bucket).slice(0, 200)}`);
      }
    }
    if (found.length === 0 && !(b.bucket && Number(b.bucket.quantity) === 0)) {
      problems.push(`LETTER FOR AN UNKNOWN EVENT (${letter.queue} queue) ${letter.reason}: ${JSON.stringify(b).slice(0, 300)}`);
      continue;
    }
    for (const { unit, copy } of found) outcomes.get(unit)!.letters.push({ reason: letter.reason, queue: letter.queue, copy });
    // The reason must follow from the customer's lifecycle.
    const needs = LIFECYCLE_REASONS[letter.reason];
    const justified = needs === 'flush' ? flushedCustomers.has(customerKey ?? '') : needs === 'ended' ? observed.ended.has(customerKey ?? '') : false;
    if (!justified) {
      for (const { unit, copy } of found) problems.push(`UNJUSTIFIED LETTER ${letter.reason} (${letter.queue} queue) for ${nameOf(unit)} [${copy}]`);
    }
  }

  let billedOnce = 0;
  const refusedOnly: Record<string, number> = {};
  const resendsRefused: Record<string, number> = {};
  const resendNotes: string[] = [];
  for (const o of outcomes.values()) {
    const detail = () =>
      `billed in [${o.billedIn.map((h) => h.slice(11, 16)).join(', ')}], letters [${o.letters.map((l) => `${l.reason}/${l.queue} ${l.copy ?? ''}`).join(', ')}], ` +
      `copies [${o.unit.copies.map((c) => `m${c.message}@${c.position} (${messages[c.message].sqsMessageId})`).join(', ')}], happened ${new Date(o.unit.happenedAt).toISOString().slice(11, 19)}`;
    const copiesLettered = new Set(o.letters.map((l) => l.copy));
    if (o.billedIn.length > 1) problems.push(`DOUBLE ${nameOf(o.unit)}: ${detail()}`);
    else if (o.billedIn.length === 0 && o.letters.length === 0) problems.push(`LOST ${nameOf(o.unit)}: ${detail()}`);
    else if (o.billedIn.length === 1 && o.letters.length > 0) {
      // Billed, and refused: a copy (message id + position) one delivery counted and another refused
      // (or a fold refused after it was counted), the event's only copy, every copy, or its bucket
      // (a bucket letter names no copy: it refuses what was counted).
      const countedAndRefused = o.letters.some((l) => l.queue === 'usage' && l.copy !== undefined && counted.has(l.copy));
      const everyCopy = o.letters.some((l) => l.copy?.startsWith('bucket')) || o.unit.copies.every((c) => copiesLettered.has(copyNameOf(c)));
      // hour-already-billed is the fold's, which drops a repeated eventId as a duplicate instead.
      const notByIngestion = o.letters.some((l) => !RESEND_REASONS.has(l.reason));
      if (countedAndRefused || everyCopy || notByIngestion) problems.push(`BILLED AND REFUSED ${nameOf(o.unit)}: ${detail()}`);
      else {
        // Another message repeating a billed eventId, refused when it came: ingestion judges each
        // message's events by the time it comes, before eventIds are de-duplicated (when the hour is folded).
        billedOnce++;
        for (const reason of new Set(o.letters.map((l) => l.reason))) resendsRefused[reason] = (resendsRefused[reason] ?? 0) + 1;
        resendNotes.push(`${nameOf(o.unit)}: ${detail()}`);
      }
    } else if (o.billedIn.length === 1) billedOnce++;
    else for (const reason of new Set(o.letters.map((l) => l.reason))) refusedOnly[reason] = (refusedOnly[reason] ?? 0) + 1;
  }

  // The ledger: every bucket metered or dead-lettered, none counting an event twice (a carry in
  // the sum of powers of two would hide it in the billed quantity).
  for (const b of observed.buckets) {
    if (b.status !== 'metered' && b.status !== 'failed') problems.push(`BUCKET NOT METERED ${b.bucketKey}: ${b.status} ${b.outcome ?? ''}`);
    if (b.usageEvents !== popcount(b.quantity)) problems.push(`BUCKET COUNTS AN EVENT TWICE ${b.bucketKey}: ${b.usageEvents} events, quantity ${b.quantity}`);
  }
  return { problems, outcomes: [...outcomes.values()], billedOnce, refusedOnly, resendsRefused, resendNotes };
}

// ---------------------------------------------------------------------------------------------
// The scenario

export interface LifecycleScenarioStats extends FleetStats {
  messages: number;
  unitsDistinct: number;
  unitsSent: number;
  meteringRuns: number;
  meteringRunsAsked: number;
  finalUsageFlushed: number;
  finalUsageWithdrawn: number;
  finalUsageFailed: number;
  usageRejectedByFold: number;
  lifecycleChanges: string[];
  lettersByReason: Record<string, number>;
  billedOnce: number;
  refusedOnly: Record<string, number>;
  resendsRefused: Record<string, number>;
  hourTurnsDuringIngestion: number;
  virtualEnd: string;
  realMs: number;
}

export interface LifecycleScenarioResult {
  readonly seed: number;
  readonly problems: string[];
  readonly stats: LifecycleScenarioStats;
  readonly check: CheckResult;
  readonly trace: readonly string[];
  readonly dropped?: PlannedMessage;
  readonly series: readonly Series[];
}

export async function runLifecycleScenario(services: Services, options: LifecycleScenarioOptions): Promise<LifecycleScenarioResult> {
  const startedAt = Date.now();
  const rand = seededRandom(options.seed);
  const jitterRand = seededRandom(options.seed ^ 0x5eed);
  const problems: string[] = [];
  const trace: string[] = [];
  const t = () => `${((Date.now() - startedAt) / 1000).toFixed(3)}s`;
  const stats: LifecycleScenarioStats = {
    ...newFleetStats(),
    messages: 0,
    unitsDistinct: 0,
    unitsSent: 0,
    meteringRuns: 0,
    meteringRunsAsked: 0,
    finalUsageFlushed: 0,
    finalUsageWithdrawn: 0,
    finalUsageFailed: 0,
    usageRejectedByFold: 0,
    lifecycleChanges: [],
    lettersByReason: {},
    billedOnce: 0,
    refusedOnly: {},
    resendsRefused: {},
    hourTurnsDuringIngestion: 0,
    virtualEnd: '',
    realMs: 0,
  };

  // --- Tables, queues, simulator, lifecycle route -----------------------------------------------
  let clock!: VirtualClock;
  /** The lifecycle asked for a metering run now (a flush already due: the stack invokes the metering function). */
  let meteringAsked = false;
  const subscribedAt = new Date(options.start.getTime() - 4 * HOUR_MS);
  const world = await createWorld(services, {
    simulatorStart: subscribedAt,
    now: () => (clock ? clock.now() : subscribedAt.getTime()),
    finalUsageDelaySeconds: options.finalUsageDelaySeconds,
    onMeteringAsked: () => (meteringAsked = true),
    trace: (line) => trace.push(`${t()} ${line}`),
  });
  const { customersTable, journalTable, ledgerTable, sqs, usageQueueUrl, usageDeadLettersUrl, meteringDeadLettersUrl, documents, simClock, admin, marketplace } = world;
  let fleet: ReturnType<typeof startIngestionFleet> | undefined;

  try {
    const customers: ScenarioCustomer[] = [];
    for (const [name, product] of CUSTOMER_NAMES) customers.push(await world.addCustomer(name, product));
    const series = seriesOf(customers, PRODUCTS);
    const { units, messages } = planUsage(options, { unitsPerSeries: 20, noEventIdShare: 0.25, resendShare: 0.2, lateShare: 0.12, slowShare: 0.25 }, series, rand);
    stats.messages = messages.length;
    stats.unitsDistinct = units.length;
    stats.unitsSent = units.reduce((sum, u) => sum + u.copies.length, 0);
    const dropped = options.dropMessage?.(messages);
    const changes = options.lifecycle ?? planLifecycle(options.seed, options.start, options.end);
    const customerByName = new Map(customers.map((c) => [c.name, c]));

    // --- Clock ---------------------------------------------------------------------------------
    clock = new VirtualClock(options.start, (now) => simClock.set(now));
    let ingesting = true;
    let stopping = false;
    const stopClock = clock.startTicking(options.tickVirtualMs ?? 45_000, options.tickRealMs ?? 25, () => {
      if (ingesting) stats.hourTurnsDuringIngestion++;
    });
    const vt = () => new Date(clock.now()).toISOString().slice(11, 19);

    // --- Ingestion containers --------------------------------------------------------------------
    fleet = startIngestionFleet({
      dynamoDbEndpoint: services.dynamoDbEndpoint,
      sqsEndpoint: services.sqsEndpoint,
      resources: { sqs, usageQueueUrl, usageDeadLettersUrl, customersTable, journalTable },
      products: PRODUCTS,
      clock,
      rand,
      jitterRand,
      options: {
        ...options,
        twinChance: options.twinChance ?? 0.3,
        strayDuplicateChance: options.strayDuplicateChance ?? 0.05,
        dynamoPauseChance: options.dynamoPauseChance ?? 0.02,
      },
      stats,
      problems,
      trace: (line) => trace.push(`${t()} ${vt()} ${line}`),
      log: (name) => ({ info: () => undefined, warn: (message, attributes) => trace.push(`${t()} ${vt()} ${name} ${message} ${JSON.stringify(attributes)}`) }),
      droppedBody: dropped?.body,
    });

    // --- Metering: every 5 virtual minutes, and when the lifecycle asks; one run at a time ---------
    const { meteringPorts } = world;
    const meterLog = {
      info: () => undefined,
      error: (message: string, attributes: Record<string, unknown>) => {
        // A flush that failed is tried again next run (counted); anything else is a problem.
        if (attributes.finalUsageFailed && !attributes.stoppedBy && !attributes.stoppedProducts) return;
        problems.push(`metering: ${message} ${JSON.stringify(attributes).slice(0, 300)}`);
      },
    };
    const meter = async (now: Date, why: string): Promise<MeteringReport> => {
      stats.meteringRuns++;
      const report = await meterNow(meteringPorts, meterLog, { now, deadline: new Date(Date.now() + 60_000) });
      stats.finalUsageFlushed += report.finalUsage;
      stats.finalUsageWithdrawn += report.finalUsageWithdrawn;
      stats.finalUsageFailed += report.finalUsageFailed?.length ?? 0;
      stats.usageRejectedByFold += report.usageRejected;
      if (report.finalUsage + report.finalUsageWithdrawn + report.usageRejected + (report.finalUsageFailed?.length ?? 0) > 0 || report.deadLettered > 0) {
        const { calls: _calls, ...shown } = report;
        trace.push(`${t()} ${now.toISOString().slice(11, 19)} metering (${why}) ${JSON.stringify(shown)}`);
      }
      return report;
    };
    let nextMeterAt = Math.ceil(options.start.getTime() / (5 * MIN_MS)) * 5 * MIN_MS;
    const meteringLoop = (async () => {
      while (!stopping) {
        const asked = meteringAsked;
        if (clock.now() < nextMeterAt && !asked) {
          await sleep(5);
          continue;
        }
        meteringAsked = false;
        if (asked) stats.meteringRunsAsked++;
        const now = new Date(clock.now());
        if (now.getTime() >= nextMeterAt) nextMeterAt = Math.floor(now.getTime() / (5 * MIN_MS)) * 5 * MIN_MS + 5 * MIN_MS;
        try {
          await meter(now, asked ? 'asked by the lifecycle' : 'schedule');
        } catch (error) {
          problems.push(`metering run at ${now.toISOString()} threw: ${String(error)}`);
        }
      }
    })();

    // --- Lifecycle: the buyers' subscriptions change on AWS Marketplace ---------------------------
    const lifecycleLoop = (async () => {
      for (const change of changes) {
        while (clock.now() < change.at) await sleep(3);
        const customer = customerByName.get(change.customer)!;
        stats.lifecycleChanges.push(`${vt()} ${change.customer} ${change.state}`);
        trace.push(`${t()} ${vt()} simulator: ${change.customer} (${customer.customerKey}) -> ${change.state}`);
        await world.setSubscription(customer, change.state);
      }
    })();

    // --- Producer, then drain --------------------------------------------------------------------
    await fleet.produce(messages);
    await lifecycleLoop;
    await fleet.drain();
    ingesting = false;
    stopping = true;
    await Promise.all([fleet.stop(), stopClock(), meteringLoop]);

    // --- Settle: the schedule keeps running (every 5 virtual minutes) until every hour is billed ----
    const finalNow = utcHourStart(new Date(clock.now())).getTime() + HOUR_MS + 15 * MIN_MS;
    for (let at = Math.ceil(clock.now() / (5 * MIN_MS)) * 5 * MIN_MS; at <= finalNow; at += 5 * MIN_MS) {
      clock.advanceTo(at);
      await meter(new Date(clock.now()), 'settle');
    }
    for (let run = 0; run < 3; run++) {
      const report = await meter(new Date(clock.now()), 'settle');
      if (report.sealed + report.metered + report.deferred + report.held + report.deadLettered === 0) break;
    }
    stats.virtualEnd = new Date(clock.now()).toISOString();

    const { billed } = world;
    await options.tamper?.({ changes, units, series, messages, marketplace, sqs, usageDeadLettersUrl, billed });

    // --- What happened -----------------------------------------------------------------------------
    const letters: Letter[] = [
      ...(await takeAll(sqs, usageDeadLettersUrl)).map((l) => ({ reason: l.reason ?? '(no reason)', body: l.body, queue: 'usage' as const })),
      ...(await takeAll(sqs, meteringDeadLettersUrl)).map((l) => ({ reason: l.reason ?? '(no reason)', body: l.body, queue: 'metering' as const })),
    ];
    for (const l of letters) stats.lettersByReason[l.reason] = (stats.lettersByReason[l.reason] ?? 0) + 1;
    const buckets: LedgerBucket[] = [];
    for await (const page of paginateScan({ client: documents }, { TableName: ledgerTable, ConsistentRead: true })) {
      for (const item of page.Items ?? []) {
        if (!String(item.pk).startsWith('bucket#')) continue;
        buckets.push({
          bucketKey: String(item.bucketKey),
          customerKey: String(item.customerKey),
          dimension: String(item.dimension),
          hourStart: String(item.hourStart),
          quantity: Number(item.quantity),
          usageEvents: Number(item.usageEvents),
          status: String(item.status),
          outcome: item.outcome as string | undefined,
        });
      }
    }
    const flushes: { customerKey: string; hourStart: string }[] = [];
    const journaled = new Set<string>();
    for await (const page of paginateScan({ client: documents }, { TableName: journalTable, ConsistentRead: true })) {
      for (const item of page.Items ?? []) {
        if (String(item.pk).startsWith('flush#')) flushes.push({ customerKey: String(item.customerKey), hourStart: String(item.hourStart) });
        if (typeof item.usage === 'string') for (const e of decodeUsage(item.usage).events) journaled.add(`${String(item.messageId)}@${e.p}`);
      }
    }
    const ended = new Set(changes.filter((c) => c.state !== 'subscribed').map((c) => customerByName.get(c.customer)!.customerKey));
    const check = checkOutcomes({ series, units, messages, billed: await billed(), letters, buckets, flushes, ended, journaled });
    problems.push(...check.problems);
    stats.billedOnce = check.billedOnce;
    stats.refusedOnly = check.refusedOnly;
    stats.resendsRefused = check.resendsRefused;
    // Every notification reached the lifecycle handler.
    for (const entry of (await admin<{ notifications: { delivery: string; notification: unknown }[] }>('GET', '/_admin/notifications')).notifications) {
      if (entry.delivery !== 'delivered') problems.push(`LIFECYCLE NOTIFICATION NOT HANDLED: ${entry.delivery}`);
    }
    stats.realMs = Date.now() - startedAt;
    return { seed: options.seed, problems, stats, check, trace, dropped, series };
  } finally {
    fleet?.destroy();
    await world.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// The world: tables, queues, simulator, lifecycle route, metering ports

export interface WorldOptions {
  /** The simulator's (frozen) clock at first; customers subscribe then. */
  readonly simulatorStart: Date;
  /** Virtual now (ms), for the lifecycle handler. */
  readonly now: () => number;
  readonly finalUsageDelaySeconds?: number;
  /** The lifecycle found a flush already due: the stack invokes the metering function (asynchronously). */
  readonly onMeteringAsked?: () => void;
  readonly trace?: (line: string) => void;
}

let worldCount = 0;

/**
 * A scenario's own tables and queues, the simulator (a frozen clock the scenario moves) delivering
 * its lifecycle notifications to the local lifecycle route, and the metering run's ports.
 */
export async function createWorld(services: Services, options: WorldOptions) {
  const n = ++worldCount;
  const { customersTable, journalTable, ledgerTable, sqs, queue, usageDeadLettersUrl, meteringDeadLettersUrl, documents } = await scenarioResources(
    services,
    n,
    { VisibilityTimeout: '2' },
    'Rlc',
  );
  const usageQueueUrl = await queue('rlc-usage');
  const simClock = new SimulatorClock({ start: options.simulatorStart, frozen: true });
  const simulator = await startMarketplaceSimulator({ port: 0, clock: simClock, config: { rateLimitPerSecond: 0 } });
  const admin = <T = any>(method: string, path: string, body?: unknown) => simulatorAdmin<T>(simulator.url, method, path, body);
  const marketplace = new MarketplaceMeteringClient({ ...localClientConfig(simulator.url), maxAttempts: 1 });
  const ledger = new DynamoDbMeteringLedger(documents, ledgerTable, journalTable);
  const lifecycle = createLocalLifecycle({
    documents,
    customersTableName: customersTable,
    ledger,
    simulatorUrl: simulator.url,
    products: PRODUCTS,
    meterNow: async () => options.onMeteringAsked?.(),
    now: () => new Date(options.now()),
    finalUsageDelaySeconds: options.finalUsageDelaySeconds,
    publish: async () => undefined,
    log: { info: (message, attributes) => options.trace?.(`lifecycle ${message} ${JSON.stringify(attributes)}`) },
  });
  const lifecycleApi = await startLocalApiServer({ routes: lifecycle.routes });
  await admin('POST', '/_admin/config', { notificationUrl: `${lifecycleApi.url}/_local/lifecycle` });
  for (const p of PRODUCTS) await admin('POST', '/_admin/products', { productCode: p.productCode, identityMode: p.identityMode, dimensions: p.dimensions });

  /**
   * A buyer: created pending on the simulator, registered (the Customers item registration writes),
   * then subscribed: the notifications reach the lifecycle handler, which stores the status and the agreement.
   */
  const addCustomer = async (name: string, product: ProductConfig): Promise<ScenarioCustomer> => {
    const created = await admin('POST', '/_admin/customers', { productCode: product.productCode, subscribed: false });
    const customer = scenarioCustomerOf(name, product, created);
    await documents.send(new PutCommand({ TableName: customersTable, Item: { ...customerItemOf(customer), firstRegisteredAt: simClock.now().toISOString() } }));
    await admin('POST', '/_admin/customers/subscription', { ...refOf(customer), state: 'subscribed' });
    return customer;
  };
  /** Changes the buyer's subscription on AWS Marketplace; the notification is handled before this returns. */
  const setSubscription = (customer: ScenarioCustomer, state: SubscriptionState) => admin('POST', '/_admin/customers/subscription', { ...refOf(customer), state });
  const meteringPorts: MeteringPorts = {
    ledger,
    subscriptions: new CustomerSubscriptions(documents, customersTable),
    deadLetters: meteringDeadLetters(new DeadLetterQueue(sqs, meteringDeadLettersUrl)),
    api: sdkMeteringApi(marketplace),
    clock: { now: () => Date.now(), sleep },
  };
  const billed = async () => (await admin<{ records: BilledRecord[] }>('GET', '/_admin/metering-records')).records;
  const dispose = async () => {
    marketplace.destroy();
    await lifecycleApi.stop();
    await simulator.stop();
    await Promise.allSettled([customersTable, journalTable, ledgerTable].map((TableName) => services.dynamoDb.send(new DeleteTableCommand({ TableName }))));
    await Promise.allSettled([usageQueueUrl, usageDeadLettersUrl, meteringDeadLettersUrl].map((QueueUrl) => sqs.send(new DeleteQueueCommand({ QueueUrl }))));
    documents.destroy();
    sqs.destroy();
  };
  return {
    customersTable,
    journalTable,
    ledgerTable,
    sqs,
    usageQueueUrl,
    usageDeadLettersUrl,
    meteringDeadLettersUrl,
    documents,
    simClock,
    simulator,
    admin,
    marketplace,
    ledger,
    meteringPorts,
    addCustomer,
    setSubscription,
    billed,
    dispose,
  };
}

export type World = Awaited<ReturnType<typeof createWorld>>;

const refOf = (customer: ScenarioCustomer) => (customer.identityMode === 'license' ? { licenseArn: customer.licenseArn } : { customerIdentifier: customer.customerIdentifier });

/** Self-check helpers: bill a unit a second time (another hour), or dead-letter a billed one. */
export async function billAgain(context: TamperContext, unit: Unit, hour: Date): Promise<void> {
  const { customer, dimension } = context.series[unit.series];
  const record =
    customer.identityMode === 'license'
      ? { CustomerAWSAccountId: customer.customerAWSAccountId, LicenseArn: customer.licenseArn }
      : { CustomerIdentifier: customer.customerIdentifier };
  const answer = await context.marketplace.send(
    new BatchMeterUsageCommand({
      ...(customer.identityMode === 'legacy' ? { ProductCode: customer.productCode } : {}),
      UsageRecords: [{ ...record, Dimension: dimension, Quantity: unit.quantity, Timestamp: hour }],
    }),
  );
  if (answer.Results?.[0]?.Status !== 'Success') throw new Error(`harness: the extra record was not billed: ${JSON.stringify(answer.Results)}`);
}

export async function deadLetterToo(context: TamperContext, unit: Unit): Promise<void> {
  const { customer, dimension } = context.series[unit.series];
  const message = context.messages[unit.copies[0].message];
  const identity = customer.identityMode === 'license' ? { licenseArn: customer.licenseArn } : { productCode: customer.productCode, customerIdentifier: customer.customerIdentifier };
  const letter = {
    reason: 'hour-already-billed',
    message: 'injected by the harness self-check',
    messageId: message.sqsMessageId,
    position: unit.copies[0].position,
    event: { ...identity, dimension, quantity: unit.quantity, timestamp: new Date(unit.happenedAt).toISOString() },
  };
  await context.sqs.send(
    new SendMessageCommand({ QueueUrl: context.usageDeadLettersUrl, MessageBody: JSON.stringify(letter), MessageAttributes: { reason: { DataType: 'String', StringValue: 'hour-already-billed' } } }),
  );
}

/** A readable summary of a run. */
export function describeRun(result: LifecycleScenarioResult): string {
  const s = result.stats;
  return [
    `seed ${result.seed}: ${s.messages} messages, ${s.unitsDistinct} distinct events (${s.unitsSent} sent), until ${s.virtualEnd}, ${s.realMs} ms`,
    `lifecycle: ${s.lifecycleChanges.join('; ')}`,
    `${s.invocations} invocations (${s.twinInvocations} twins, ${s.strayDuplicates} stray duplicates later), ${s.lostDeletes} lost deletes, ${s.batchItemFailures} batch item failures, ${s.hourTurnsDuringIngestion} hour turns`,
    `${s.meteringRuns} metering runs (${s.meteringRunsAsked} asked by the lifecycle): final usage flushed ${s.finalUsageFlushed}, withdrawn ${s.finalUsageWithdrawn}, failed ${s.finalUsageFailed}; ${s.usageRejectedByFold} events refused by folds`,
    `events billed once ${s.billedOnce}, dead-lettered only ${JSON.stringify(s.refusedOnly)}; letters ${JSON.stringify(s.lettersByReason)}; ` +
      `billed events whose resend was refused ${JSON.stringify(s.resendsRefused)}`,
    ...(result.problems.length === 0 ? ['no problem'] : result.problems.map((p) => `PROBLEM ${p}`)),
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Focused cases: a message's event counted by the final usage flush, then refused as
// hour-already-billed by another delivery of the same message (or by the hour's fold)

export interface FocusedResult {
  /** Quantity billed for the customer's `requests`, per hour. */
  readonly billed: Record<string, number>;
  /** Dead letters of the message's events: reason, queue, position. */
  readonly letters: readonly { reason: string; queue: 'usage' | 'metering'; position: number }[];
  /** Each delivery's `usage message ingested` counts. */
  readonly deliveries: Record<string, { counted: number; duplicates: number; rejected: number }>;
  readonly trace: readonly string[];
}

const at = (hhmm: string) => Date.parse(`2026-11-02T${hhmm}:00.000Z`);

/**
 * A focused case's world on a clock the case sets: `ingest(name)` is one container (the ingest
 * handler on its own customer cache, tracing its journal calls, held by `gate`); `meterAt` runs
 * metering at a time, `setAt` changes a buyer's subscription at a time; `outcome` reads what was
 * billed and dead-lettered for the customer.
 */
async function focusedScene(services: Services) {
  let now = at('08:00');
  const trace: string[] = [];
  const deliveries: FocusedResult['deliveries'] = {};
  const world = await createWorld(services, { simulatorStart: new Date(now), now: () => now });
  const moveTo = (ms: number) => {
    now = ms;
    world.simClock.set(new Date(now));
  };
  return {
    world,
    trace,
    now: () => now,
    moveTo,
    ingest: (name: string, containerNow: () => number = () => now, gate?: JournalGate) =>
      tracedIngest(world, name, {
        now: containerNow,
        trace: (line) => trace.push(line.replaceAll('usage-message-', '')),
        gate,
        products: PRODUCTS,
        log: {
          info: (message, attributes) => {
            if (message !== 'usage message ingested') return;
            deliveries[name] = { counted: Number(attributes.counted), duplicates: Number(attributes.duplicates), rejected: Number(attributes.rejected) };
            trace.push(`${name} ingested ${JSON.stringify(deliveries[name])}`);
          },
          warn: () => undefined,
        },
      }),
    meterAt: async (hhmm: string) => {
      moveTo(at(hhmm));
      const report = await meterNow(world.meteringPorts, { info: () => undefined, error: () => undefined }, { now: new Date(now), deadline: new Date(Date.now() + 60_000) });
      trace.push(`${hhmm} metering: finalUsage ${report.finalUsage}, metered ${report.metered}, usageRejected ${report.usageRejected}`);
    },
    setAt: async (hhmm: string, state: SubscriptionState, customer: ScenarioCustomer) => {
      moveTo(at(hhmm));
      await world.setSubscription(customer, state);
    },
    outcome: (customer: ScenarioCustomer) => focusedOutcome(world, customer, trace, deliveries),
  };
}

/** What was billed for the customer's first dimension, per hour, and the dead letters of the message's events. */
async function focusedOutcome(world: World, customer: ScenarioCustomer, trace: string[], deliveries: FocusedResult['deliveries']): Promise<FocusedResult> {
  const billed: Record<string, number> = {};
  const dimension = customer.identityMode === 'license' ? 'requests' : 'seats';
  const mine = (r: BilledRecord) => (customer.identityMode === 'license' ? r.licenseArn === customer.licenseArn : r.customerIdentifier === customer.customerIdentifier);
  for (const r of await world.billed()) if (mine(r) && r.dimension === dimension) billed[r.hour] = (billed[r.hour] ?? 0) + r.quantity;
  const letters = [
    ...(await takeAll(world.sqs, world.usageDeadLettersUrl)).map((l) => ({ reason: l.reason ?? '(no reason)', queue: 'usage' as const, position: Number((l.body as any).position) })),
    ...(await takeAll(world.sqs, world.meteringDeadLettersUrl)).map((l) => ({ reason: l.reason ?? '(no reason)', queue: 'metering' as const, position: Number((l.body as any).position) })),
  ];
  return { billed, letters, deliveries, trace };
}

/**
 * SQS hands a message to a second container after the final usage flush counted its event.
 * 11:19 the buyer's agreement ends (unsubscribe-pending: flush due 11:24). 11:21 container A takes
 * message M = [1 unit at 11:12] (ApproximateReceiveCount 1) and writes it to the journal. 11:25 the
 * metering run flushes the buyer's final usage: 11:00 is billed with M's unit. 11:26 SQS delivers M
 * again (`receiveCount`: 1, the at-least-once duplicate a standard queue may deliver; 2, a
 * redelivery), to container B, whose cache knows the buyer is leaving. 12:15 the run folds 11:00.
 * With `unsubscribeSuccessAt`, a legacy buyer, whose unsubscribe-success comes then (before B):
 * its final window closes at once, so B would refuse M's unit as customer-not-subscribed.
 */
export async function deliveryAfterFinalFlush(services: Services, receiveCount: number, options: { unsubscribeSuccessAt?: string } = {}): Promise<FocusedResult> {
  const scene = await focusedScene(services);
  try {
    // A legacy buyer when it leaves for good later (unsubscribe-success: no more metering at all).
    const legacy = options.unsubscribeSuccessAt !== undefined;
    const customer = await scene.world.addCustomer('C', legacy ? LEGACY : LICENSE);
    const identity = legacy ? { productCode: customer.productCode, customerIdentifier: customer.customerIdentifier } : { licenseArn: customer.licenseArn };
    const body = JSON.stringify([{ ...identity, dimension: legacy ? 'seats' : 'requests', quantity: 1, timestamp: '2026-11-02T11:12:00.000Z' }]);
    await scene.setAt('11:19', 'unsubscribe-pending', customer);
    scene.moveTo(at('11:21'));
    await scene.ingest('A')(body, 1);
    await scene.meterAt('11:25');
    if (options.unsubscribeSuccessAt !== undefined) {
      await scene.setAt(options.unsubscribeSuccessAt, 'unsubscribed', customer);
      scene.moveTo(scene.now() + MIN_MS);
    }
    scene.moveTo(Math.max(scene.now(), at('11:26')));
    await scene.ingest('B')(body, receiveCount);
    await scene.meterAt('12:15');
    return await scene.outcome(customer);
  } finally {
    await scene.world.dispose();
  }
}

/**
 * A redelivery running alongside the delivery before it, across the final usage flush (the fold's
 * side). M = [1 unit at 11:12, 2 units at 10:50], no eventIds; 10:00 is sealed at 11:15.
 * 11:18 container A (receive count 1; the buyer is subscribed in its cache) writes M's on-time entry;
 * its late entry (rolled from 10:00 into 11:00) is slow to land. 11:19 the agreement ends (flush due
 * 11:24). 11:20 container B (receive count 2) reads what earlier deliveries stored (position 0),
 * writes position 1 in a supplement entry rolled into 11:00. 11:25 the flush bills 11:00 with both
 * units (the supplement holds position 1). Then A's late entry lands, holding position 1 again.
 * 12:15 the run folds 11:00.
 */
export async function overlapAcrossFinalFlush(services: Services): Promise<FocusedResult> {
  const scene = await focusedScene(services);
  try {
    const customer = await scene.world.addCustomer('C', LICENSE);
    await scene.meterAt('11:15');
    const body = JSON.stringify([
      { licenseArn: customer.licenseArn, dimension: 'requests', quantity: 1, timestamp: '2026-11-02T11:12:00.000Z' },
      { licenseArn: customer.licenseArn, dimension: 'requests', quantity: 2, timestamp: '2026-11-02T10:50:00.000Z' },
    ]);
    let releaseA!: () => void;
    const aMayGoOn = new Promise<void>((resolve) => (releaseA = resolve));
    scene.moveTo(at('11:18'));
    const aNow = scene.now();
    const first = scene.ingest('A', () => aNow, async (call, appendsBefore) => {
      if (call === 'append' && appendsBefore === 1) await aMayGoOn;
    })(body, 1);
    for (let i = 0; i < 300 && !scene.trace.some((line) => line.startsWith('A append')); i++) await sleep(10);
    await scene.setAt('11:19', 'unsubscribe-pending', customer);
    scene.moveTo(at('11:20'));
    await scene.ingest('B')(body, 2);
    await scene.meterAt('11:25');
    releaseA();
    await first;
    await scene.meterAt('12:15');
    return await scene.outcome(customer);
  } finally {
    await scene.world.dispose();
  }
}

/**
 * Two deliveries of a message on either side of an hour turn, across the final usage flush.
 * L's agreement ends at 11:52 (flush due 11:57); L has usage in 11:00. M = [1 unit at 10:47], its
 * hour sealed at 11:15. 11:59:10 container A (receive count 1) takes M: 10:00 is sealed, so the unit
 * is late, for A's current hour, 11:00; A is held up before its next journal call. 12:00:05 the
 * metering run flushes L's final usage through the hour of the ending: 11:00 is billed. 12:00:30 container B (receive count 2, SQS handing M over again) finds nothing
 * stored and rolls the unit into its current hour, 12:00, not metered early: written. A goes on.
 * 12:04 the licence is deprovisioned (flush due 12:09); 12:10 the run flushes L's 12:00 and bills
 * it; 13:15 the run folds 11:00 and 12:00.
 */
export async function hourTurnAcrossFinalFlush(services: Services): Promise<FocusedResult> {
  const scene = await focusedScene(services);
  try {
    const customer = await scene.world.addCustomer('L', LICENSE);
    await scene.meterAt('11:15');
    scene.moveTo(at('11:30'));
    const other = JSON.stringify([{ licenseArn: customer.licenseArn, dimension: 'requests', quantity: 1, timestamp: '2026-11-02T11:30:00.000Z' }]);
    await scene.ingest('X')(other, 1, 'usage-message-X');
    await scene.setAt('11:52', 'unsubscribe-pending', customer);

    const body = JSON.stringify([{ licenseArn: customer.licenseArn, dimension: 'requests', quantity: 2, timestamp: '2026-11-02T10:47:00.000Z' }]);
    let releaseA!: () => void;
    const aMayGoOn = new Promise<void>((resolve) => (releaseA = resolve));
    let aHeld = false;
    const aNow = Date.parse('2026-11-02T11:59:10.000Z');
    const first = scene.ingest('A', () => aNow, async (call, appendsBefore) => {
      // Once its first append has landed (10:00 sealed: the unit is late), A is held up.
      if (appendsBefore === 1 && !aHeld) {
        aHeld = true;
        scene.trace.push(`A held before ${call}`);
        await aMayGoOn;
      }
    })(body, 1);
    for (let i = 0; i < 300 && !aHeld; i++) await sleep(10);
    await scene.meterAt('12:00');
    scene.moveTo(at('12:00') + 30_000);
    await scene.ingest('B')(body, 2);
    releaseA();
    await first;
    await scene.setAt('12:04', 'unsubscribed', customer);
    await scene.meterAt('12:10');
    await scene.meterAt('13:15');
    return await scene.outcome(customer);
  } finally {
    await scene.world.dispose();
  }
}

/**
 * The last call for the hour after the ending. 11:40 the agreement ends (unsubscribe-pending: the
 * final window closes 12:40). 11:42 usage of 11:00 (1 unit); 11:45 the first flush bills 11:00.
 * 12:05 usage of 12:00 (2 units), inside the window; 12:10 the last call (half an hour before the
 * window closes) bills 12:00. 12:20 more usage of 12:00 (4 units): written, and refused as
 * hour-already-billed when 12:00 is folded (13:15). Without the last call, 12:00 would be folded
 * only after the window closed: both dead-lettered CustomerNotSubscribed.
 */
export async function lastCallAfterTheHourTurn(services: Services): Promise<FocusedResult> {
  const scene = await focusedScene(services);
  try {
    const customer = await scene.world.addCustomer('C', LICENSE);
    const usage = (quantity: number, hhmm: string) => JSON.stringify([{ licenseArn: customer.licenseArn, dimension: 'requests', quantity, timestamp: new Date(at(hhmm)).toISOString() }]);
    await scene.setAt('11:40', 'unsubscribe-pending', customer);
    scene.moveTo(at('11:42'));
    await scene.ingest('A')(usage(1, '11:41'), 1, 'usage-message-A');
    await scene.meterAt('11:45');
    scene.moveTo(at('12:05'));
    await scene.ingest('B')(usage(2, '12:04'), 1, 'usage-message-B');
    await scene.meterAt('12:10');
    scene.moveTo(at('12:20'));
    await scene.ingest('C')(usage(4, '12:19'), 1, 'usage-message-C');
    await scene.meterAt('13:15');
    return await scene.outcome(customer);
  } finally {
    await scene.world.dispose();
  }
}
