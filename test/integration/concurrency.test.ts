/**
 * Concurrency: several ingest containers at once, SQS duplicates (the same message handed to
 * two containers at the same moment, with the same or the next ApproximateReceiveCount) and
 * redeliveries (lost deletes: receive count > 1), and metering runs (one at a time) sealing, folding
 * and billing hours while ingestion still writes into them, with a virtual clock crossing hour
 * boundaries so events become late and roll into the open hour. See test/support/concurrency-scenario.ts.
 *
 * Property, after draining and metering until every hour is billed: per customer x dimension, what
 * the simulator billed over all hours equals the sum of the distinct valid events sent (quantities
 * are distinct powers of two, so a loss or a double shows); nothing dead-lettered (usage or
 * metering dead-letter queue: no valid event refused, no DuplicateRecord); no customer x dimension
 * x hour billed twice; every bucket metered.
 *
 * CONCURRENCY_SEED=<n> runs another seed; CONCURRENCY_EXPLORE='{"seeds":[...],"options":{...}}' runs many.
 */
import { describe as describeResult, overlappingRedelivery, runScenario, ScenarioOptions, Services } from '../support/concurrency-scenario';
import { requireJava, useDynamoDbLocal, useLocalSqs } from '../support/local-services';

requireJava();
jest.setTimeout(120_000);
const dynamoDb = useDynamoDbLocal();
const sqs = useLocalSqs();

/** Fixed seed (printed); CONCURRENCY_SEED overrides it. */
const SEED = Number(process.env.CONCURRENCY_SEED ?? 20261102);
const EXPLORE = process.env.CONCURRENCY_EXPLORE ? JSON.parse(process.env.CONCURRENCY_EXPLORE) : undefined;

const services = (): Services => ({ dynamoDbEndpoint: dynamoDb.endpoint, dynamoDb: dynamoDb.client, sqsEndpoint: sqs.endpoint });

/** 09:40 to 12:35 (virtual): three hour turns while usage arrives; the last hours are sealed after draining. */
const BASE: Omit<ScenarioOptions, 'seed'> = {
  start: new Date('2026-11-02T09:40:00.000Z'),
  end: new Date('2026-11-02T12:35:00.000Z'),
  instances: 4,
  unitsPerSeries: 24,
  twinChance: 0.5,
  twinNextCountChance: 0.6,
  redeliverChance: 0.15,
  noEventIdShare: 0.3,
  dynamoJitterMs: 6,
  dynamoPauseChance: 0.02,
};

const log = (text: string) => console.log(text); // eslint-disable-line no-console

describe('concurrent ingestion, SQS duplicates and metering across hour turns', () => {
  if (EXPLORE) {
    test('explore seeds', async () => {
      const found: string[] = [];
      for (const seed of EXPLORE.seeds as number[]) {
        const result = await runScenario(services(), { ...BASE, ...EXPLORE.options, seed });
        log(describeResult(result));
        if (result.problems.length > 0) found.push(`seed ${seed}: ${result.problems.join(' | ')}`);
      }
      expect(found).toEqual([]);
    }, 1_800_000);
    return;
  }

  // Three fixed seeds (the schedule of usage, duplicates and redeliveries is the seed's; which
  // interleavings happen also depends on timing, so more than one run).
  test.each([SEED, SEED + 1, SEED + 2])(
    'randomized (seed %i): every distinct valid event billed exactly once, nothing dead-lettered, no hour billed twice',
    async (seed) => {
      const result = await runScenario(services(), { ...BASE, seed });
      log(describeResult(result));
      // The run exercised what it is about.
      expect(result.stats.hourTurnsDuringIngestion).toBeGreaterThanOrEqual(3);
      expect(result.stats.twinsNextCount).toBeGreaterThan(0);
      expect(result.stats.twinsSameCount).toBeGreaterThan(0);
      expect(result.stats.lostDeletes).toBeGreaterThan(0);
      expect(result.stats.eventsRolledIntoOpenHour).toBeGreaterThan(0);
      expect(result.stats.meteringRunsDuringIngestion).toBeGreaterThan(10);
      expect(result.problems).toEqual([]);
    },
  );

  test('harness self-check: a message lost before any container reads it shows as LOST usage', async () => {
    const result = await runScenario(services(), {
      ...BASE,
      seed: SEED,
      // A shorter, calmer run: only the loss is looked for. No resends: every event is in one message.
      end: new Date('2026-11-02T11:05:00.000Z'),
      unitsPerSeries: 12,
      resendShare: 0,
      twinChance: 0,
      redeliverChance: 0,
      dropMessage: (messages) => messages[Math.floor(messages.length / 2)],
    });
    log(describeResult(result));
    // Each series with an event in the dropped message is short by exactly its events there.
    const lostBySeries = new Map<string, number>();
    for (const u of result.dropped!.units) {
      const key = result.series[u.series].key;
      lostBySeries.set(key, (lostBySeries.get(key) ?? 0) + u.quantity);
    }
    const short = new Map([...result.totals].filter(([, t]) => t.billed !== t.expected).map(([key, t]) => [key, t.expected - t.billed]));
    expect(short).toEqual(lostBySeries);
    expect(result.problems.filter((p) => p.startsWith('LOST ')).length).toBe(lostBySeries.size);
    expect(result.problems.filter((p) => !p.startsWith('LOST '))).toEqual([]);
  });
});

/**
 * The violation the randomized test finds, reduced: a redelivery (ApproximateReceiveCount 2) that
 * runs while the delivery before it is still writing. It reads which positions earlier deliveries
 * stored, sees the on-time entry but not the late one still on its way, and writes the late event
 * again in a supplement entry whose id the first delivery never uses, so both land and the event
 * (no eventId: de-duplicated by message id + position only) is billed twice.
 */
describe('a redelivery running alongside the delivery before it', () => {
  test('an event without eventId is billed once, not twice (late entry of the first delivery still in flight)', async () => {
    const result = await overlappingRedelivery(services());
    log(`billed ${JSON.stringify(result.billed)}; journal positions ${JSON.stringify(result.journaled)}\n  ${result.trace.join('\n  ')}`);
    expect({ billed: result.billed, deadLetters: result.deadLetters }).toEqual({ billed: { '2026-11-02T11:00:00.000Z': 3 }, deadLetters: 0 });
  });
});
