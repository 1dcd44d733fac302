/**
 * Systematic crash points of usage ingestion (DynamoDB Local + fauxqs, the real ingest
 * handler, journal adapter and dead-letter queue adapter).
 *
 * Each scenario: a prior message counts eventId `x` on time in H0, then H0 is sealed. A batch of 7
 * messages (3 customers, one legacy; hours H0 (sealed: late events), H1 and HC (current); eventIds
 * repeated across messages, on time and late; an invalid event; an unknown customer; an unknown
 * dimension; a message that is not JSON) is received from SQS and ingested with a crash at the k-th
 * I/O call (before it, or after it succeeded), for k = 1, 2, ... until the ingest no longer reaches
 * k. The messages the handler reports failed (all of them if the process died) are redelivered
 * through SQS (ApproximateReceiveCount 2, 3 ...) without crashes until none fails. Then:
 * - the journal, folded as the metering run folds it, holds each valid event exactly once
 *   (quantities are distinct powers of two, so any loss or double count shows);
 * - each event that cannot be counted has at least one dead letter with its reason, and nothing
 *   else was dead-lettered;
 * - two more deliveries of every message (SQS at-least-once: one counted as a first receive, one as
 *   a later one) add nothing;
 * - the metering run's own fold (seal + fold into sealed buckets) gives the expected buckets.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  ChangeMessageVisibilityBatchCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { DynamoDbMeteringLedger } from '../../lambda/adapters/metering-ledger';
import { DynamoDbUsageJournal } from '../../lambda/adapters/usage-journal';
import { ProductConfig } from '../../lambda/core/product-config';
import { createCustomersTable, createMeteringTable, createUsageJournalTable } from '../../local/local-tables';
import { localClientConfig } from '../../local/services';
import { sqsRecordOf } from '../../local/sqs-record';
import { requireJava, useDynamoDbLocal, useLocalSqs } from '../support/local-services';
import {
  bucketProblems,
  BucketCount,
  CrashPlan,
  foldJournal,
  ingestContainer,
  instrumentClient,
  Mode,
  PlanHolder,
  When,
} from '../support/ingest-crash-points';

requireJava();
jest.setTimeout(120_000);
const dynamoDb = useDynamoDbLocal();
const sqsService = useLocalSqs();

const HOUR_MS = 3_600_000;
const H0 = '2026-11-02T10:00:00.000Z';
const H1 = '2026-11-02T11:00:00.000Z';
const HC = '2026-11-02T12:00:00.000Z';
const HOURS = [H0, H1, HC];
/** Ingestion's clock: 20 minutes into HC. */
const NOW = new Date('2026-11-02T12:20:00.000Z');
const at = (hour: string, minutes: number) => new Date(Date.parse(hour) + minutes * 60_000).toISOString();

const PRODUCTS: ProductConfig[] = [
  { productCode: 'crash-prod', identityMode: 'license', dimensions: ['requests', 'storage'] },
  { productCode: 'crash-legacy', identityMode: 'legacy', dimensions: ['requests'] },
];
const licence = (id: string) => `arn:aws:license-manager::111100000001:license:${id}`;
const A = { key: 'license#l-crashA', ident: { licenseArn: licence('l-crashA') } };
const B = { key: 'license#l-crashB', ident: { licenseArn: licence('l-crashB') } };
const C = { key: 'legacy#crash-legacy#cust-C', ident: { productCode: 'crash-legacy', customerIdentifier: 'cust-C' } };
const CUSTOMER_ITEMS = [
  { customerKey: A.key, productCode: 'crash-prod', identityMode: 'license', customerAWSAccountId: '111100000001', licenseArn: licence('l-crashA') },
  { customerKey: B.key, productCode: 'crash-prod', identityMode: 'license', customerAWSAccountId: '111100000002', licenseArn: licence('l-crashB') },
  { customerKey: C.key, productCode: 'crash-legacy', identityMode: 'legacy', customerAWSAccountId: '111100000003', customerIdentifier: 'cust-C' },
];
const CUSTOMERS_TABLE = 'CrashCustomers';

const ev = (who: { ident: object }, dimension: string, quantity: number | undefined, timestamp: string, eventId?: string) => ({
  ...who.ident,
  dimension,
  ...(quantity === undefined ? {} : { quantity }),
  timestamp,
  ...(eventId === undefined ? {} : { eventId }),
});

/** Counted on time in H0 before H0 was sealed. */
const PRIOR_BODY = JSON.stringify([ev(A, 'requests', 1, at(H0, 30), 'x')]);
/** The batch under test, by name (bodies are unique, so received messages are matched by body). */
const BATCH: Record<string, string> = {
  M1: JSON.stringify([
    ev(A, 'requests', 2, at(H1, 10), 'a1'),
    ev(A, 'requests', 4, at(H0, 40), 'y'), // late: counted in HC
    ev(B, 'requests', 8, at(H1, 20), 'b1'),
  ]),
  M2: JSON.stringify([
    ev(A, 'requests', 1, at(H0, 30), 'x'), // late resend of the prior message's x: not counted again
    ev(B, 'requests', 16, at(HC, 5), 'b2'),
    ev(C, 'requests', 32, at(H1, 30), 'c1'),
  ]),
  M3: JSON.stringify([
    ev(A, 'requests', 2, at(H1, 10), 'a1'), // resend of M1's a1
    ev(A, 'requests', undefined, at(H1, 15), 'bad1'), // invalid-event (no quantity)
    ev(C, 'requests', 64, at(HC, 10), 'c2'),
  ]),
  M4: JSON.stringify([
    { licenseArn: licence('l-crashUnknown'), dimension: 'requests', quantity: 5, timestamp: at(H1, 5), eventId: 'u1' }, // unknown-customer
    ev(B, 'storage', 128, at(H1, 40), 'b3'),
    ev(B, 'requests', 4096, at(H0, 15), 'b4'), // late: counted in HC
  ]),
  M5: '{"dimension": "requests", "quantity": 1, oops', // invalid-json
  M6: JSON.stringify([
    ev(A, 'requests', 256, at(HC, 1)), // no eventId: message id + position
    ev(A, 'requests', 512, at(HC, 2)),
    ev(A, 'storage', 2048, at(H0, 50), 'a3'), // late resend of M7's a3 (both late)
  ]),
  M7: JSON.stringify([
    ev(A, 'requests', 1024, at(H1, 50), 'a2'),
    ev(A, 'bogus', 3, at(H1, 51), 'bogus1'), // unknown-dimension
    ev(A, 'storage', 2048, at(H0, 50), 'a3'), // late: counted in HC
  ]),
};

const bucket = (customer: { key: string }, dimension: string, hour: string) => `${customer.key}|${dimension}|${hour}`;
const EXPECTED = new Map<string, BucketCount>([
  [bucket(A, 'requests', H0), { quantity: 1, usageEvents: 1 }],
  [bucket(A, 'requests', H1), { quantity: 2 + 1024, usageEvents: 2 }],
  [bucket(A, 'requests', HC), { quantity: 4 + 256 + 512, usageEvents: 3 }],
  [bucket(A, 'storage', HC), { quantity: 2048, usageEvents: 1 }],
  [bucket(B, 'requests', H1), { quantity: 8, usageEvents: 1 }],
  [bucket(B, 'storage', H1), { quantity: 128, usageEvents: 1 }],
  [bucket(B, 'requests', HC), { quantity: 16 + 4096, usageEvents: 2 }],
  [bucket(C, 'requests', H1), { quantity: 32, usageEvents: 1 }],
  [bucket(C, 'requests', HC), { quantity: 64, usageEvents: 1 }],
]);
/** Dead letters expected, by `reason|eventId` (`message` for a message refused as a whole). */
const EXPECTED_LETTERS = ['invalid-event|bad1', 'invalid-json|message', 'unknown-customer|u1', 'unknown-dimension|bogus1'];

let setupDocuments: DynamoDBDocumentClient;
let plainSqs: SQSClient;
/** The ingest path's clients: every SDK call goes through `holder.plan`. */
let ingestDocuments: DynamoDBDocumentClient;
let ingestSqs: SQSClient;
const holder: PlanHolder = { plan: CrashPlan.none() };
let scenarios = 0;

beforeAll(async () => {
  setupDocuments = DynamoDBDocumentClient.from(new DynamoDBClient(localClientConfig(dynamoDb.endpoint)), { marshallOptions: { removeUndefinedValues: true } });
  ingestDocuments = DynamoDBDocumentClient.from(new DynamoDBClient(localClientConfig(dynamoDb.endpoint)), { marshallOptions: { removeUndefinedValues: true } });
  instrumentClient(ingestDocuments, 'ddb', holder);
  plainSqs = new SQSClient(localClientConfig(sqsService.endpoint));
  ingestSqs = new SQSClient(localClientConfig(sqsService.endpoint));
  instrumentClient(ingestSqs, 'sqs', holder);
  await createCustomersTable(dynamoDb.client, CUSTOMERS_TABLE);
  for (const Item of CUSTOMER_ITEMS) await setupDocuments.send(new PutCommand({ TableName: CUSTOMERS_TABLE, Item }));
});

afterAll(() => {
  setupDocuments?.destroy();
  ingestDocuments?.destroy();
  plainSqs?.destroy();
  ingestSqs?.destroy();
});

interface Letter {
  reason?: string;
  body: any;
}

interface ScenarioResult {
  /** The crash point that fired, if the ingest reached k. */
  fired?: string;
  /** Calls the crash delivery made (up to the crash). */
  calls: string[];
  /** Problems found (empty: the promise held). */
  problems: string[];
  /** Dead letters sent more than once, by key, after the crash and redeliveries (before the extra deliveries). */
  duplicateLetters: string[];
  deliveries: number;
  /** Whether the last crash asked for fired (the sweep's k was reached). */
  lastPlanFired: boolean;
}

function recordsOf(messages: readonly Message[], receiveCount?: number): SQSEvent {
  return { Records: messages.map((m) => sqsRecordOf(m, receiveCount)) };
}

async function receiveAll(queueUrl: string, count: number): Promise<Message[]> {
  const received: Message[] = [];
  for (let tries = 0; received.length < count && tries < 20; tries++) {
    const { Messages = [] } = await plainSqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 30, MessageSystemAttributeNames: ['All'] }),
    );
    received.push(...Messages);
  }
  if (received.length !== count) throw new Error(`received ${received.length} messages, expected ${count}`);
  return received;
}

async function takeLetters(queueUrl: string): Promise<Letter[]> {
  const taken: Letter[] = [];
  for (;;) {
    const { Messages = [] } = await plainSqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, MessageAttributeNames: ['All'] }),
    );
    if (Messages.length === 0) return taken;
    for (const m of Messages) taken.push({ reason: m.MessageAttributes?.reason?.StringValue, body: JSON.parse(m.Body ?? 'null') });
    await plainSqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
  }
}

const letterKey = (letter: Letter) => `${letter.reason}|${letter.body?.event?.eventId ?? (letter.body?.body !== undefined ? 'message' : '?')}`;

function letterProblems(letters: readonly Letter[]): { problems: string[]; duplicates: string[] } {
  const counts = new Map<string, number>();
  for (const letter of letters) counts.set(letterKey(letter), (counts.get(letterKey(letter)) ?? 0) + 1);
  const problems: string[] = [];
  for (const key of EXPECTED_LETTERS) if (!counts.has(key)) problems.push(`DEAD LETTER LOST ${key}`);
  for (const key of counts.keys()) if (!EXPECTED_LETTERS.includes(key)) problems.push(`UNEXPECTED DEAD LETTER ${key} (a valid event dead-lettered is usage lost)`);
  for (const letter of letters) if (letter.reason === undefined || letter.body?.reason !== letter.reason) problems.push(`DEAD LETTER WITHOUT REASON ${JSON.stringify(letter.body).slice(0, 200)}`);
  const duplicates = [...counts].filter(([, n]) => n > 1).map(([key, n]) => `${key} x${n}`);
  return { problems, duplicates };
}

interface CrashSpec {
  readonly k?: number;
  readonly when: When;
  readonly mode: Mode;
}

interface ScenarioOptions {
  /** The crash of each delivery, in order (the crash delivery first, then redeliveries); none after the list. */
  readonly crashes: readonly CrashSpec[];
  /** Also run the metering run's own fold at the end and compare its buckets. */
  readonly meteringFold?: boolean;
  /**
   * After the crash delivery, the metering run seals and folds H1 and HC, and the redeliveries come
   * in the next hour (the stack's visibility timeout is 6 minutes): what the crash left unwritten
   * is counted in H13 instead, so totals per customer and dimension are compared.
   */
  readonly sealBeforeRedelivery?: boolean;
  /** Harness self-check: the failed messages are dropped instead of redelivered. */
  readonly dropFailed?: boolean;
  /** Harness self-check: M6 (events without eventId) is also sent again as a new message. */
  readonly resendM6AsNewMessage?: boolean;
}

const H13 = '2026-11-02T13:00:00.000Z';
/** The redeliveries' clock when H1 and HC were sealed in between. */
const LATER = new Date('2026-11-02T13:16:00.000Z');

/** Per customer and dimension, summed over the hours. */
function totals(buckets: ReadonlyMap<string, BucketCount>): Map<string, BucketCount> {
  const out = new Map<string, BucketCount>();
  for (const [key, b] of buckets) {
    const total = key.slice(0, key.lastIndexOf('|'));
    const sum = out.get(total) ?? { quantity: 0, usageEvents: 0 };
    out.set(total, { quantity: sum.quantity + b.quantity, usageEvents: sum.usageEvents + b.usageEvents });
  }
  return out;
}

/** Ingest-path clients of their own, every SDK call going through the holder's plan (scenarios of a sweep run side by side). */
function instrumentedClients() {
  const own: PlanHolder = { plan: CrashPlan.none() };
  const documents = DynamoDBDocumentClient.from(new DynamoDBClient(localClientConfig(dynamoDb.endpoint)), { marshallOptions: { removeUndefinedValues: true } });
  instrumentClient(documents, 'ddb', own);
  const sqs = new SQSClient(localClientConfig(sqsService.endpoint));
  instrumentClient(sqs, 'sqs', own);
  return {
    holder: own,
    documents,
    sqs,
    destroy: () => {
      documents.destroy();
      sqs.destroy();
    },
  };
}

async function runScenario(options: ScenarioOptions): Promise<ScenarioResult> {
  const clients = instrumentedClients();
  try {
    return await runScenarioWith(clients, options);
  } finally {
    clients.destroy();
  }
}

async function runScenarioWith({ holder, documents: ingestDocuments, sqs: ingestSqs }: ReturnType<typeof instrumentedClients>, options: ScenarioOptions): Promise<ScenarioResult> {
  const n = ++scenarios;
  const journalTable = `CrashJournal${n}`;
  const ledgerTable = `CrashLedger${n}`;
  await Promise.all([createUsageJournalTable(dynamoDb.client, journalTable), createMeteringTable(dynamoDb.client, ledgerTable)]);
  const usageQueueUrl = (await plainSqs.send(new CreateQueueCommand({ QueueName: `crash-usage-${n}`, Attributes: { VisibilityTimeout: '30' } }))).QueueUrl!;
  const deadLetterQueueUrl = (await plainSqs.send(new CreateQueueCommand({ QueueName: `crash-dead-letters-${n}` }))).QueueUrl!;
  let now = NOW;
  const container = () =>
    ingestContainer({
      holder,
      documents: ingestDocuments,
      sqs: ingestSqs,
      journalTable,
      customersTable: CUSTOMERS_TABLE,
      deadLetterQueueUrl,
      products: PRODUCTS,
      now: () => now,
    });
  const journal = new DynamoDbUsageJournal(setupDocuments, journalTable);
  const ledger = new DynamoDbMeteringLedger(setupDocuments, ledgerTable, journalTable);
  await ledger.journal.markFolded(new Date(Date.parse(H0) - HOUR_MS).toISOString(), NOW);
  const problems: string[] = [];

  // The prior message, counted on time in H0; then the metering run seals H0 (as it does 10 minutes after an hour).
  holder.plan = CrashPlan.none();
  const prior = await container()(recordsOf([{ MessageId: 'prior-message', ReceiptHandle: 'r', Body: PRIOR_BODY, Attributes: { ApproximateReceiveCount: '1' } }]));
  expect(prior.batchItemFailures).toEqual([]);
  await journal.sealHours([H0], NOW);

  // The batch, from SQS.
  const names = Object.keys(BATCH);
  await plainSqs.send(new SendMessageBatchCommand({ QueueUrl: usageQueueUrl, Entries: names.map((name) => ({ Id: name, MessageBody: BATCH[name] })) }));
  let batch = await receiveAll(usageQueueUrl, names.length);
  const lastSeen = new Map<string, Message>();
  const plans: CrashPlan[] = [];
  let handler = container();
  let died = false;
  let deliveries = 0;

  // The crash delivery, then redeliveries through SQS until every message is handled.
  for (let round = 0; ; round++) {
    for (const m of batch) lastSeen.set(m.MessageId!, m);
    const spec = options.crashes[round];
    const plan = spec ? new CrashPlan(spec.k, spec.when, spec.mode) : CrashPlan.none();
    plans.push(plan);
    // A dead process: a fresh container. A caught failure: the same one, caches kept.
    if (died) handler = container();
    holder.plan = plan;
    let response: SQSBatchResponse | undefined;
    try {
      response = await handler(recordsOf(batch));
    } catch {
      response = undefined; // the handler threw: every message is retried
    }
    holder.plan = CrashPlan.none();
    deliveries++;
    died = plan.killed || response === undefined;
    const failed = new Set(died ? batch.map((m) => m.MessageId!) : response!.batchItemFailures.map((f) => f.itemIdentifier));
    const done = batch.filter((m) => !failed.has(m.MessageId!));
    const again = batch.filter((m) => failed.has(m.MessageId!));
    if (done.length > 0) {
      await plainSqs.send(new DeleteMessageBatchCommand({ QueueUrl: usageQueueUrl, Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
    }
    if (again.length === 0 || options.dropFailed) break;
    if (round === options.crashes.length + 2) {
      problems.push(`NEVER HANDLED: ${again.length} messages still failing after ${deliveries} deliveries (poison: moved to the DLQ without a reason)`);
      break;
    }
    if (round === 0 && options.sealBeforeRedelivery) {
      // The metering run at 13:16 seals and folds H1 and HC before SQS delivers the batch again.
      await ledger.sealHoursEndedBy(new Date(LATER.getTime() - 10 * 60_000), LATER);
      now = LATER;
    }
    await plainSqs.send(
      new ChangeMessageVisibilityBatchCommand({ QueueUrl: usageQueueUrl, Entries: again.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle!, VisibilityTimeout: 0 })) }),
    );
    batch = await receiveAll(usageQueueUrl, again.length);
    for (const m of batch) {
      if (Number(m.Attributes?.ApproximateReceiveCount) < 2) problems.push(`fauxqs redelivered ${m.MessageId} with receive count ${m.Attributes?.ApproximateReceiveCount}`);
    }
  }

  if (options.resendM6AsNewMessage) {
    await container()(recordsOf([{ MessageId: 'm6-sent-again', ReceiptHandle: 'r', Body: BATCH.M6, Attributes: { ApproximateReceiveCount: '1' } }]));
  }
  const hours = options.sealBeforeRedelivery ? [...HOURS, H13] : HOURS;
  const compare = (folded: ReadonlyMap<string, BucketCount>) =>
    options.sealBeforeRedelivery ? bucketProblems(totals(folded), totals(EXPECTED)) : bucketProblems(folded, EXPECTED);

  // Settled: each valid event counted once, each invalid one dead-lettered.
  for (const p of compare(await foldJournal(journal, hours))) problems.push(`after redelivery: ${p}`);
  const letters = await takeLetters(deadLetterQueueUrl);
  const checked = letterProblems(letters);
  problems.push(...checked.problems.map((p) => `after redelivery: ${p}`));

  // SQS at-least-once: every message delivered twice more (counted as a first receive, and as a later one).
  const all = [...lastSeen.values()];
  for (const receiveCount of [1, Math.max(...all.map((m) => Number(m.Attributes?.ApproximateReceiveCount) || 1)) + 1]) {
    const again = await container()(recordsOf(all, receiveCount));
    deliveries++;
    if (again.batchItemFailures.length > 0) problems.push(`duplicate delivery (receive count ${receiveCount}): ${again.batchItemFailures.length} messages failed`);
  }
  for (const p of compare(await foldJournal(journal, hours))) problems.push(`after duplicate deliveries: ${p}`);
  const extraLetters = await takeLetters(deadLetterQueueUrl);
  problems.push(...letterProblems(extraLetters).problems.filter((p) => !p.startsWith('DEAD LETTER LOST')).map((p) => `after duplicate deliveries: ${p}`));

  if (options.meteringFold) {
    // The metering run's own fold: seal and fold H0..HC (H13 too when it holds usage) into sealed buckets.
    const last = options.sealBeforeRedelivery ? H13 : HC;
    const cutoff = new Date(Date.parse(last) + HOUR_MS + 10 * 60_000);
    await ledger.sealHoursEndedBy(cutoff, new Date(cutoff.getTime() + 5 * 60_000));
    // HourBucket keeps the quantity (the event count is the fold's): compare quantities of every bucket in the ledger.
    const metered = new Map<string, BucketCount>();
    for (const hourStart of hours) {
      for (const [key] of EXPECTED) {
        const [customerKey, dimension] = key.split('|');
        const item = (await setupDocuments.send(new GetCommand({ TableName: ledgerTable, Key: { pk: `bucket#${customerKey}|${dimension}|${hourStart}` }, ConsistentRead: true }))).Item;
        if (item) metered.set(`${customerKey}|${dimension}|${hourStart}`, { quantity: Number(item.quantity), usageEvents: 0 });
      }
    }
    const quantitiesOnly = (m: ReadonlyMap<string, BucketCount>) => new Map([...m].map(([key, b]) => [key, { quantity: b.quantity, usageEvents: 0 }]));
    const meteredProblems = options.sealBeforeRedelivery
      ? bucketProblems(quantitiesOnly(totals(metered)), quantitiesOnly(totals(EXPECTED)))
      : bucketProblems(metered, quantitiesOnly(EXPECTED));
    for (const p of meteredProblems) problems.push(`metering fold: ${p}`);
  }

  const swept = plans[Math.max(0, options.crashes.length - 1)];
  return {
    fired: plans.map((p) => p.fired).filter(Boolean).join(' then ') || undefined,
    calls: swept?.calls ?? [],
    problems,
    duplicateLetters: checked.duplicates,
    deliveries,
    lastPlanFired: swept?.fired !== undefined,
  };
}

/** Scenarios of a sweep run this many at a time (each has its own tables, queues and clients). */
const SWEEP_PARALLEL = 3;

/** Runs k = 1, 2, ... until the swept delivery no longer reaches k (SWEEP_PARALLEL at a time; those past the end are dropped). */
async function sweep(crash: (k: number) => Omit<ScenarioOptions, 'meteringFold'>, meteringFold = false): Promise<(ScenarioResult & { k: number })[]> {
  const results: (ScenarioResult & { k: number })[] = [];
  for (let first = 1; first < 200; first += SWEEP_PARALLEL) {
    const wave = await Promise.all(Array.from({ length: SWEEP_PARALLEL }, (_, i) => runScenario({ ...crash(first + i), meteringFold })));
    for (const [i, result] of wave.entries()) {
      if (!result.lastPlanFired) return results;
      results.push({ ...result, k: first + i });
    }
  }
  return results;
}

function summary(results: readonly (ScenarioResult & { k: number })[]): string {
  return results
    .map((r) => `${r.fired}: ${r.problems.length === 0 ? 'ok' : r.problems.join('; ')}${r.duplicateLetters.length > 0 ? ` [duplicate letters: ${r.duplicateLetters.join(', ')}]` : ''}`)
    .join('\n');
}

const failing = (results: readonly ScenarioResult[]) => results.filter((r) => r.problems.length > 0).map((r) => `${r.fired}: ${r.problems.join('; ')}`);
const log = (text: string) => process.env.CRASH_POINTS_VERBOSE && console.log(text); // eslint-disable-line no-console

describe('crash points of usage ingestion', () => {
  test('baseline: no crash, the promise holds, no dead letter is duplicated, the metering run folds the same buckets', async () => {
    const result = await runScenario({ crashes: [], meteringFold: true });
    log(`crash-free delivery calls (${result.calls.length})`);
    expect(result.problems).toEqual([]);
    expect(result.duplicateLetters).toEqual([]);
  });

  test('harness self-check: dropped failed messages show as LOST usage and lost dead letters; a resent message without eventIds shows as DOUBLE', async () => {
    // Killed before the on-time transaction (#5), nothing redelivered.
    const dropped = await runScenario({ crashes: [{ k: 5, when: 'before', mode: 'kill' }], dropFailed: true });
    expect(dropped.problems.filter((p) => p.startsWith('after redelivery: LOST')).length).toBeGreaterThan(3);
    expect(dropped.problems).toContain('after redelivery: DEAD LETTER LOST invalid-event|bad1');
    const resent = await runScenario({ crashes: [], resendM6AsNewMessage: true });
    expect(resent.problems).toContain(`after redelivery: DOUBLE ${bucket(A, 'requests', HC)}: quantity ${4 + 2 * (256 + 512)} (expected ${4 + 256 + 512}), events 5 (expected 3)`);
  });

  for (const mode of ['throw', 'kill'] as const) {
    for (const when of ['before', 'after'] as const) {
      test(`every crash point of a first delivery (${mode}, ${when} the call): each valid event counted exactly once, each invalid one dead-lettered`, async () => {
        const results = await sweep((k) => ({ crashes: [{ k, when, mode }] }));
        log(`${mode}/${when}: ${results.length} crash points\n${summary(results)}`);
        // ports and SDK calls: customers, journal appends and transactions, dead-letter sends.
        expect(results.length).toBeGreaterThanOrEqual(15);
        expect(failing(results)).toEqual([]);
      });
    }
  }

  test('every crash point of the redelivery, after a first delivery killed once its on-time entries landed (stored positions, supplements, late placeholders)', async () => {
    // Call #5 of the first delivery is the transaction of the on-time entries; the late ones are not written yet.
    const results = await sweep((k) => ({ crashes: [{ k: 5, when: 'after', mode: 'kill' }, { k, when: 'after', mode: 'kill' }] }));
    log(`redelivery kill/after: ${results.length} crash points\n${summary(results)}`);
    expect(results.some((r) => r.calls.includes('journal.storedPositions'))).toBe(true);
    expect(failing(results)).toEqual([]);
  });

  test('every crash point of a first delivery, then the metering run seals H1 and HC before SQS redelivers in the next hour', async () => {
    const results = await sweep((k) => ({ crashes: [{ k, when: 'after', mode: 'kill' }], sealBeforeRedelivery: true }), true);
    log(`sealed before redelivery kill/after: ${results.length} crash points\n${summary(results)}`);
    expect(failing(results)).toEqual([]);
  });
});

/**
 * A redelivered message is judged again (README: "what it refused is counted now"), but the dead
 * letters its earlier delivery already sent are not taken back: an event refused as
 * `timestamp-in-future` (the producer's clock 6 minutes ahead) whose letter landed before the
 * delivery failed is counted by the redelivery, which SQS makes 6 minutes later (the stack's
 * visibility timeout, 6 x the 60 s function timeout), and stays in the usage dead-letter queue as
 * refused ("never retried"). The seller who re-sends what the dead-letter queue holds bills it twice
 * (events without an eventId: the default de-duplication key is the message id + position).
 */
describe('a dead letter sent by a delivery that then failed: the redelivery refuses the event again, it is never both counted and dead-lettered', () => {
  class FailingDeadLetterCalls extends CrashPlan {
    /** Every SendMessageBatch after the first fails (an SQS hiccup outlasting the adapter's 4 attempts). */
    override async call<T>(point: string, real: () => Promise<T>): Promise<T> {
      const n = this.calls.filter((c) => c === point).length;
      if (point === 'sqs.SendMessageBatchCommand' && n >= 1) {
        this.calls.push(point);
        throw Object.assign(new Error('ServiceUnavailable'), { name: 'ServiceUnavailable' });
      }
      return super.call(point, real);
    }
  }

  const MESSAGE_TIME = new Date(Date.parse(HC) + 19 * 60_000);
  /** 11 events whose producer's clock is 6 minutes ahead (more than the 5 minutes allowed), no eventId; and one valid event. */
  const BODY = JSON.stringify([
    ev(A, 'requests', 3, MESSAGE_TIME.toISOString(), 'v'),
    ...Array.from({ length: 11 }, (_, i) => ev(A, 'requests', 1, new Date(NOW.getTime() + 6 * 60_000 + i * 1000).toISOString())),
  ]);
  const firstDeliveries: Record<string, () => CrashPlan> = {
    'the Lambda dies (timeout) once the dead letters landed': () => new CrashPlan(5, 'after', 'kill'),
    "the second SendMessageBatch of the message's 11 letters fails 4 times (the first 10 landed)": () => new FailingDeadLetterCalls(undefined, 'before', 'throw'),
  };

  for (const [how, plan] of Object.entries(firstDeliveries)) {
    test(`${how}: the redelivery 6 minutes later refuses them again, though they would count now; replaying the dead letters bills each once`, async () => {
      const n = ++scenarios;
      const journalTable = `CrashJournal${n}`;
      await createUsageJournalTable(dynamoDb.client, journalTable);
      const deadLetterQueueUrl = (await plainSqs.send(new CreateQueueCommand({ QueueName: `crash-dead-letters-${n}` }))).QueueUrl!;
      let now = NOW;
      const container = () =>
        ingestContainer({ holder, documents: ingestDocuments, sqs: ingestSqs, journalTable, customersTable: CUSTOMERS_TABLE, deadLetterQueueUrl, products: PRODUCTS, now: () => now });
      const message = (receiveCount: string, messageId = 'message-ahead'): Message => ({ MessageId: messageId, ReceiptHandle: 'r', Body: BODY, Attributes: { ApproximateReceiveCount: receiveCount } });

      // First delivery at 12:20: the 11 events are 6 minutes in the future, refused and dead-lettered; the delivery fails.
      holder.plan = plan();
      let failedFirst: boolean;
      try {
        const response = await container()(recordsOf([message('1')]));
        failedFirst = holder.plan.killed || response.batchItemFailures.length === 1;
      } catch {
        failedFirst = true;
      }
      holder.plan = CrashPlan.none();
      expect(failedFirst).toBe(true);

      // SQS delivers it again after the visibility timeout (6 minutes): the events are no longer ahead.
      now = new Date(NOW.getTime() + 7 * 60_000);
      const second = await container()(recordsOf([message('2')]));
      expect(second.batchItemFailures).toEqual([]);

      const counted = (await journal(journalTable).entries(HC)).flatMap((entry) => entry.events.map((e) => e.p));
      const letters = await takeLetters(deadLetterQueueUrl);
      const deadLettered = letters.map((l) => l.body.position as number);
      const both = [...new Set(counted.filter((p) => deadLettered.includes(p)))].sort((a, b) => a - b);

      // What a seller does with the dead-letter queue (README): re-send each refused event once
      // (by message id and position: a letter can come twice), once fixed.
      const once = [...new Map(letters.map((l) => [`${l.body.messageId}|${l.body.position}`, l.body.event])).values()];
      const replay = await container()(recordsOf([{ MessageId: 'replayed-dead-letters', ReceiptHandle: 'r', Body: JSON.stringify(once), Attributes: { ApproximateReceiveCount: '1' } }]));
      expect(replay.batchItemFailures).toEqual([]);
      const billed = (await foldJournal(journal(journalTable), [HC])).get(bucket(A, 'requests', HC))?.quantity;

      expect({ countedAndDeadLettered: both, quantityBilledAfterReplayingTheDeadLetters: billed }).toEqual({
        countedAndDeadLettered: [],
        // v (3) + the 11 events (1 each), once.
        quantityBilledAfterReplayingTheDeadLetters: 14,
      });
    });
  }
});

const journal = (tableName: string) => new DynamoDbUsageJournal(setupDocuments, tableName);
