import { PerformanceObserver } from 'node:perf_hooks';
import { foldHour } from '../lambda/core/metering/fold';
import { licenseCustomerKey } from '../lambda/core/customer';
import { ProductConfig } from '../lambda/core/product-config';
import { customerKeysOf, EventResult, journalMessage, KnownCustomer } from '../lambda/core/usage/ingest';
import { messageEventsOf, Rejection } from '../lambda/core/usage/usage-event';
import { JournalEntry } from '../lambda/core/usage/usage-journal';
import { bareLoop } from './aggregation-yardsticks';
import { percentile, printFigures } from './figures';

/**
 * Usage aggregation on one core: ingestion's per-event work and the metering run's fold of an
 * hour's journal into buckets, without I/O, through the production functions. metering.bench.ts
 * runs this file bundled by esbuild, in a process of its own, as the Lambda functions run the code.
 */

// ---------------------------------------------------------------------------------------------
// Validate and bucket, on one core
// ---------------------------------------------------------------------------------------------

const AGGREGATION_EVENTS = 1_000_000;
const AGGREGATION_WARM_UP = 100_000;
const AGGREGATION_ROUNDS = 5;
const EVENTS_PER_MESSAGE = 25; // the producer client's default

export async function benchAggregation(): Promise<void> {
  const product: ProductConfig = { productCode: 'bench-product', identityMode: 'license', dimensions: ['requests', 'storage_gb'] };
  const now = new Date();
  const writtenAt = now.toISOString();
  const settings = { products: [product] };
  const licenses = Array.from({ length: 1000 }, (_, i) => `arn:aws:license-manager::${String(100000000000 + i)}:license:l-${i.toString(16).padStart(16, '0')}`);
  let seed = 42;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const event = (i: number) => {
    const quantity = 1 + Math.floor(random() * 100);
    const tagged = i % 10 < 3; // 30% with allocations
    return {
      eventId: `evt-${i}`,
      licenseArn: licenses[i % licenses.length],
      dimension: product.dimensions[i % 2],
      quantity,
      timestamp: new Date(now.getTime() - Math.floor(random() * 50 * 60_000)).toISOString(),
      ...(tagged
        ? { allocations: [{ quantity: quantity - 1, tags: { team: `team-${i % 7}` } }, { quantity: 1, tags: { team: 'shared', env: 'prod' } }] }
        : {}),
    };
  };
  const bodies = (count: number, offset: number) => {
    const result: string[] = [];
    for (let i = 0; i < count; i += EVENTS_PER_MESSAGE) {
      result.push(JSON.stringify(Array.from({ length: EVENTS_PER_MESSAGE }, (_, j) => event(offset + i + j))));
    }
    return result;
  };
  const warmUp = bodies(AGGREGATION_WARM_UP, 0);

  const customers = new Map<string, KnownCustomer>(
    licenses.map((licenseArn, i) => {
      const customerKey = licenseCustomerKey(licenseArn);
      return [customerKey, { customerKey, productCode: product.productCode, identityMode: 'license', customerAWSAccountId: String(100000000000 + i), licenseArn }];
    }),
  );
  /**
   * Validate and bucket without I/O, in the production functions, for messages already parsed
   * from JSON: ingestion's per-event work (customerKeysOf: the schema and each event's customer;
   * journalMessage: customer, product and time checks, the message's entries), then the fold of
   * each hour's entries into hour buckets (foldHour).
   */
  const aggregate = (messages: readonly unknown[]) => {
    const started = performance.now();
    let rejected = 0;
    const entriesByHour = new Map<string, JournalEntry[]>();
    messages.forEach((message, m) => {
      const events = messageEventsOf(message);
      if (!Array.isArray(events)) throw new Error((events as Rejection).message);
      const results: EventResult[] = new Array(events.length);
      const entries = journalMessage(`message-${m}`, events, customerKeysOf(events), customers, settings, now, writtenAt, results);
      for (const result of results) if (result) rejected++;
      for (const entry of entries) {
        let list = entriesByHour.get(entry.hourStart);
        if (!list) entriesByHour.set(entry.hourStart, (list = []));
        list.push(entry);
      }
    });
    const ingested = performance.now();
    let buckets = 0;
    let quantity = 0;
    for (const [hourStart, entries] of entriesByHour) {
      for (const bucket of foldHour({ hourStart, entries }).buckets) {
        buckets++;
        quantity += bucket.quantity;
      }
    }
    const ingestSeconds = (ingested - started) / 1000;
    return { buckets, quantity, rejected, ingestSeconds, foldSeconds: (performance.now() - ingested) / 1000 };
  };
  const jsonOnly = (bodies: readonly string[]) => bodies.map((body) => JSON.parse(body) as unknown);

  const warmUpMessages = jsonOnly(warmUp);
  const yardstickInput = { licenses, dimensions: product.dimensions, now };
  aggregate(warmUpMessages);
  bareLoop(yardstickInput, warmUpMessages);
  // Each timed part starts on a collected heap (metering.bench.ts runs this with --expose-gc): the
  // garbage of making and parsing a million events is not collected inside another part's time.
  const collect = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
  const time = <T>(fn: () => T): { result: T; seconds: number; started: number; ended: number } => {
    collect();
    const started = performance.now();
    const result = fn();
    const ended = performance.now();
    return { result, seconds: (ended - started) / 1000, started, ended };
  };
  // V8's own record of its collections (pauses on this thread), to tell how much of the figure is
  // memory management: delivered after the rounds, attributed to each round's timed part by time.
  const collections: { start: number; end: number }[] = [];
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) collections.push({ start: entry.startTime, end: entry.startTime + entry.duration });
  });
  observer.observe({ entryTypes: ['gc'] });
  // A few rounds, each on new events: this machine's speed swings with load, so the median and the
  // spread are printed, with JSON.parse of the same bodies in the same round as a yardstick.
  const rounds: { aggregate: number; ingest: number; fold: number; json: number; bare: number; buckets: number; timed: { started: number; ended: number } }[] = [];
  for (let round = 0; round < AGGREGATION_ROUNDS; round++) {
    const measured = bodies(AGGREGATION_EVENTS, AGGREGATION_WARM_UP + round * AGGREGATION_EVENTS);
    const json = time(() => jsonOnly(measured));
    const full = time(() => aggregate(json.result));
    if (full.result.rejected !== 0) throw new Error(`${full.result.rejected} events rejected: the generated events should all be valid`);
    const expectedQuantity = json.result.flat().reduce((n: number, e) => n + (e as { quantity: number }).quantity, 0);
    if (full.result.quantity !== expectedQuantity) throw new Error(`the buckets hold ${full.result.quantity}, the events ${expectedQuantity}`);
    // Each yardstick gets its own parse of the bodies: strings keep the hash a lookup computed, and
    // the production run has looked up every licence ARN of `json.result` already.
    const yardstick = (run: (input: typeof yardstickInput, messages: readonly unknown[]) => number, name: string) => {
      const input = jsonOnly(measured);
      const timed = time(() => run(yardstickInput, input));
      if (timed.result !== expectedQuantity) throw new Error(`the ${name}'s buckets hold ${timed.result}, the events ${expectedQuantity}`);
      return AGGREGATION_EVENTS / timed.seconds;
    };
    const bare = yardstick(bareLoop, 'bare loop');
    rounds.push({
      aggregate: AGGREGATION_EVENTS / full.seconds,
      ingest: full.result.ingestSeconds / AGGREGATION_EVENTS,
      fold: full.result.foldSeconds / AGGREGATION_EVENTS,
      json: AGGREGATION_EVENTS / json.seconds,
      bare,
      buckets: full.result.buckets,
      timed: full,
    });
  }
  const median = (values: number[]) => percentile(values, 50);
  const rates = rounds.map((r) => r.aggregate);
  // The entries come on timers after the collections: wait until no more arrive.
  for (let seen = -1; seen !== collections.length; ) {
    seen = collections.length;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  observer.disconnect();
  const gcShares = rounds.map(({ timed: { started, ended } }) => {
    let paused = 0;
    for (const { start, end } of collections) paused += Math.max(0, Math.min(end, ended) - Math.max(start, started));
    return paused / (ended - started);
  });

  printFigures(
    `Validate and bucket on one core (esbuild bundle, as the Lambda functions run it): ingestion's per-event work (schema, customer and product checks, journal entries) and the fold of each hour's entries into buckets, ${AGGREGATION_EVENTS.toLocaleString('en')} events in messages of ${EVENTS_PER_MESSAGE}, 30% with 2 allocations, all with an eventId, 1000 customers; ${AGGREGATION_ROUNDS} rounds`,
    {
      'validate + bucket (messages parsed from JSON): events/s, median': median(rates),
      'validate + bucket: events/s, slowest and fastest round': `${Math.round(Math.min(...rates))} - ${Math.round(Math.max(...rates))}`,
      'validate + bucket: microseconds/event, median': 1e6 / median(rates),
      "of which ingestion's part (schema, customer and rules, journal entries): microseconds/event, median": 1e6 * median(rounds.map((r) => r.ingest)),
      "of which the metering run's fold (eventId de-duplication, bucket sums): microseconds/event, median": 1e6 * median(rounds.map((r) => r.fold)),
      'of which V8 garbage collection pauses (scavenges of the garbage made per event, and marking): share, median': `${Math.round(100 * median(gcShares))}%`,
      'JSON.parse of the same message bodies: events/s, median': median(rounds.map((r) => r.json)),
      'validate + bucket against JSON.parse, same round: median ratio': median(rounds.map((r) => r.aggregate / r.json)),
      'yardstick: a bare one-pass loop, no schema library, no journal (see bareLoop): events/s, median': median(rounds.map((r) => r.bare)),
      'validate + bucket against the bare loop, same round: median ratio': median(rounds.map((r) => r.aggregate / r.bare)),
      'hour buckets folded per round': rounds[0].buckets,
      'target (events/s)': 500_000,
    },
  );
}

if (require.main === module) {
  benchAggregation().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
