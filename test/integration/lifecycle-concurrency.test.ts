/**
 * The subscription ending while usage flows: several ingest containers at once (SQS twins and
 * redeliveries), metering runs every 5 virtual minutes (and when the lifecycle asks) that flush a
 * leaving customer's final usage early, and lifecycle changes at random moments through the real
 * lifecycle path (simulator notification -> lifecycle handler -> Customers table and final usage
 * schedule): Agreement Ended / License Deprovisioned for licence buyers, unsubscribe-pending,
 * subscribe-success (a re-subscribe) and unsubscribe-success for legacy buyers.
 *
 * Property (test/support/lifecycle-concurrency-scenario.ts, checkOutcomes), per distinct event sent:
 * billed exactly once, or dead-lettered with a reason its customer's lifecycle justifies
 * (hour-already-billed after a flush of that customer, customer-not-subscribed /
 * CustomerNotSubscribed once its access ended), never both, never neither; per customer x dimension
 * x hour at most one billed record, no DuplicateRecord; every bucket metered or dead-lettered.
 * Allowed and counted, not a failure: a resend of a billed event (another message, same eventId)
 * refused when it came (ingestion judges a message's events before eventIds are de-duplicated).
 *
 * LIFECYCLE_CONCURRENCY_SEED=<n> runs another first seed;
 * LIFECYCLE_CONCURRENCY_EXPLORE='{"from":1,"count":40,"options":{...},"trace":false}' (or '{"seeds":[...]}') runs many
 * (options as LifecycleScenarioOptions; start and end as ISO 8601 texts).
 */
import {
  billAgain,
  deadLetterToo,
  deliveryAfterFinalFlush,
  describeRun,
  hourTurnAcrossFinalFlush,
  lastCallAfterTheHourTurn,
  LifecycleScenarioOptions,
  MIN_MS,
  overlapAcrossFinalFlush,
  runLifecycleScenario,
  Services,
  Unit,
  unitName,
} from '../support/lifecycle-concurrency-scenario';
import { requireJava, useDynamoDbLocal, useLocalSqs } from '../support/local-services';

requireJava();
jest.setTimeout(120_000);
const dynamoDb = useDynamoDbLocal();
const sqs = useLocalSqs();

const SEED = Number(process.env.LIFECYCLE_CONCURRENCY_SEED ?? 20261201);
const EXPLORE = process.env.LIFECYCLE_CONCURRENCY_EXPLORE ? JSON.parse(process.env.LIFECYCLE_CONCURRENCY_EXPLORE) : undefined;

const services = (): Services => ({ dynamoDbEndpoint: dynamoDb.endpoint, dynamoDb: dynamoDb.client, sqsEndpoint: sqs.endpoint });

/** 09:40 to 12:35 (virtual): three hour turns while usage arrives and buyers leave. */
const BASE: Omit<LifecycleScenarioOptions, 'seed'> = {
  start: new Date('2026-11-02T09:40:00.000Z'),
  end: new Date('2026-11-02T12:35:00.000Z'),
};

const log = (text: string) => console.log(text); // eslint-disable-line no-console

/** Exploration options from JSON: `start` and `end` come as ISO 8601 texts. */
const exploreOptions = (options: Record<string, unknown> = {}): Partial<LifecycleScenarioOptions> => ({
  ...options,
  ...(typeof options.start === 'string' ? { start: new Date(options.start) } : {}),
  ...(typeof options.end === 'string' ? { end: new Date(options.end) } : {}),
});

describe('subscriptions ending while usage flows: concurrent ingestion, final usage flushes, metering', () => {
  if (EXPLORE) {
    test('explore seeds', async () => {
      const seeds: number[] = EXPLORE.seeds ?? Array.from({ length: EXPLORE.count ?? 20 }, (_, i) => (EXPLORE.from ?? 1) + i);
      const found: string[] = [];
      for (const seed of seeds) {
        const result = await runLifecycleScenario(services(), { ...BASE, ...exploreOptions(EXPLORE.options), seed });
        log(describeRun(result));
        if (result.problems.length > 0) {
          found.push(`seed ${seed}: ${result.problems.join(' | ')}`);
          if (EXPLORE.trace) log(result.trace.join('\n'));
        }
      }
      expect(found).toEqual([]);
    }, 3_600_000);
    return;
  }

  // Two fixed seeds (which interleavings happen also depends on timing, so more than one run).
  test.each([SEED, SEED + 1])(
    'randomized (seed %i): each event billed once or dead-lettered with a justified reason, never both, never neither; no hour billed twice',
    async (seed) => {
      const result = await runLifecycleScenario(services(), { ...BASE, seed });
      log(describeRun(result));
      if (result.problems.length > 0) log(result.trace.join('\n'));
      // The run exercised what it is about.
      expect(result.stats.finalUsageFlushed).toBeGreaterThan(0);
      expect(result.stats.lettersByReason['hour-already-billed']).toBeGreaterThan(0);
      expect(result.stats.lifecycleChanges.some((c) => c.endsWith(' subscribed'))).toBe(true);
      expect(result.stats.twinInvocations).toBeGreaterThan(0);
      expect(result.stats.lostDeletes).toBeGreaterThan(0);
      expect(result.stats.billedOnce).toBeGreaterThan(result.stats.unitsDistinct / 2);
      expect(result.problems).toEqual([]);
    },
  );

  test('harness self-check: a lost message, an event billed twice and a billed event also dead-lettered are reported', async () => {
    const tampered: { doubled?: Unit; refused?: Unit } = {};
    const result = await runLifecycleScenario(services(), {
      ...BASE,
      seed: SEED,
      // Shorter and calmer: every event in one message, no twins or redeliveries.
      end: new Date('2026-11-02T11:05:00.000Z'),
      unitsPerSeries: 10,
      resendShare: 0,
      twinChance: 0,
      redeliverChance: 0,
      dropMessage: (messages) => messages[Math.floor(messages.length / 3)],
      tamper: async (context) => {
        // Two events billed once, of a licence customer who never left (AWS takes its records).
        const records = await context.billed();
        const stayed = ['L1', 'L2', 'L3'].filter((name) => !context.changes.some((c) => c.customer === name));
        const billedUnits = context.units.filter((u) => {
          const { customer, dimension } = context.series[u.series];
          return stayed.includes(customer.name) && records.some((r) => r.licenseArn === customer.licenseArn && r.dimension === dimension && (r.quantity & u.quantity) !== 0);
        });
        tampered.doubled = billedUnits[0];
        tampered.refused = billedUnits[billedUnits.length - 1];
        // Billed again for an hour with no usage (06:00; the licences started at 05:40).
        await billAgain(context, tampered.doubled, new Date(BASE.start.getTime() - 3 * 60 * MIN_MS - 40 * MIN_MS));
        await deadLetterToo(context, tampered.refused);
      },
    });
    log(describeRun(result));
    const lostUnits = result.dropped!.units.map((u) => unitName(result.series, u)).sort();
    const named = (kind: string) => result.problems.filter((p) => p.startsWith(`${kind} `)).map((p) => p.slice(kind.length + 1).split(':')[0]).sort();
    expect(named('LOST')).toEqual(lostUnits);
    expect(named('DOUBLE')).toEqual([unitName(result.series, tampered.doubled!)]);
    expect(named('BILLED AND REFUSED')).toEqual([unitName(result.series, tampered.refused!)]);
    // Nothing else, but the injected letter's reason, which the customer's lifecycle may not justify.
    expect(result.problems.filter((p) => !/^(LOST|DOUBLE|BILLED AND REFUSED|UNJUSTIFIED LETTER hour-already-billed \(usage queue\) for L\d) /.test(p))).toEqual([]);
  });
});

/**
 * Reduced from the randomized test's findings: an event of a message that one delivery wrote and the
 * final usage flush billed must not also be dead-lettered because another delivery of the same
 * message came after the flush: by ingestion (a duplicate delivery refusing it as hour-already-billed
 * or, once the final window closed, customer-not-subscribed; a delivery whose clock rolled it into
 * the hour before, already metered early), or by the hour's fold (an overlapping redelivery's second
 * copy of the same position). Each fails on the code before the fix (the receive count 2 case is the
 * control: a redelivery reads what earlier deliveries wrote first).
 */
describe('a message counted by the final usage flush, delivered again', () => {
  test.each([1, 2])(
    'delivered again after the flush (ApproximateReceiveCount %i): billed once, not dead-lettered',
    async (receiveCount) => {
      const result = await deliveryAfterFinalFlush(services(), receiveCount);
      log(`billed ${JSON.stringify(result.billed)}; letters ${JSON.stringify(result.letters)}\n  ${result.trace.join('\n  ')}`);
      expect({ billed: result.billed, letters: result.letters, again: result.deliveries.B }).toEqual({
        billed: { '2026-11-02T11:00:00.000Z': 1 },
        letters: [],
        again: { counted: 0, duplicates: 1, rejected: 0 },
      });
    },
  );

  test('delivered again (ApproximateReceiveCount 1) after the final window closed (unsubscribe-success): billed once, not also refused customer-not-subscribed', async () => {
    const result = await deliveryAfterFinalFlush(services(), 1, { unsubscribeSuccessAt: '11:30' });
    log(`billed ${JSON.stringify(result.billed)}; letters ${JSON.stringify(result.letters)}\n  ${result.trace.join('\n  ')}`);
    expect({ billed: result.billed, letters: result.letters, again: result.deliveries.B }).toEqual({
      billed: { '2026-11-02T11:00:00.000Z': 1 },
      letters: [],
      again: { counted: 0, duplicates: 1, rejected: 0 },
    });
  });

  test('two deliveries on either side of an hour turn, the flush between them: the late unit is billed once (12:00), not also refused for 11:00', async () => {
    const result = await hourTurnAcrossFinalFlush(services());
    log(`billed ${JSON.stringify(result.billed)}; letters ${JSON.stringify(result.letters)}\n  ${result.trace.join('\n  ')}`);
    expect({ billed: result.billed, letters: result.letters }).toEqual({
      billed: { '2026-11-02T11:00:00.000Z': 1, '2026-11-02T12:00:00.000Z': 2 },
      letters: [],
    });
  });

  test('an overlapping redelivery\'s copy counted by the flush: the other copy, landing after it, is a duplicate, not hour-already-billed', async () => {
    const result = await overlapAcrossFinalFlush(services());
    log(`billed ${JSON.stringify(result.billed)}; letters ${JSON.stringify(result.letters)}\n  ${result.trace.join('\n  ')}`);
    expect({ billed: result.billed, letters: result.letters }).toEqual({ billed: { '2026-11-02T11:00:00.000Z': 3 }, letters: [] });
  });
});

describe('the last call of a leaving customer\'s final usage', () => {
  test('an agreement ended at 11:40: usage of 12:00 sent inside the final window is billed by the last call (12:10); usage after it is refused hour-already-billed, not CustomerNotSubscribed', async () => {
    const result = await lastCallAfterTheHourTurn(services());
    log(`billed ${JSON.stringify(result.billed)}; letters ${JSON.stringify(result.letters)}\n  ${result.trace.join('\n  ')}`);
    expect({ billed: result.billed, letters: result.letters }).toEqual({
      billed: { '2026-11-02T11:00:00.000Z': 1, '2026-11-02T12:00:00.000Z': 2 },
      letters: [{ reason: 'hour-already-billed', queue: 'metering', position: 0 }],
    });
  });
});
