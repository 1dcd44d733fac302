/**
 * The ingestion side of the concurrency harnesses (concurrency-scenario.ts and
 * lifecycle-concurrency-scenario.ts), in one place:
 *
 * - Containers: the project's ingest handler, each with its own DynamoDB client whose every call
 *   takes a little random time before and after (network), and its own customer cache on the
 *   virtual clock.
 * - Twins: SQS handing a message a container is working on to a second container
 *   (ApproximateReceiveCount the same, or one more: a redelivery). A twin starts at a random I/O
 *   boundary of the first container (once its n-th DynamoDB call has landed), which is then held up
 *   a few ms more, as a slow network or a paused process would. A twin that fails is delivered
 *   again, as SQS would, until it is handled.
 * - Lost deletes (SQS delivers the message again, later or at once) and stray copies (a handled
 *   message delivered again minutes later with the same receive count).
 * - The producer (SendMessageBatch when each message is due on the virtual clock) and the drain.
 *
 * And, for the focused deterministic cases, one traced container whose journal calls can be held.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { CachedCustomerDirectory } from '../../lambda/adapters/customer-directory';
import { DeadLetterQueue } from '../../lambda/adapters/dead-letter-queue';
import { DynamoDbUsageJournal } from '../../lambda/adapters/usage-journal';
import { ProductConfig } from '../../lambda/core/product-config';
import { entryIdOf, UsageJournal } from '../../lambda/core/usage/usage-journal';
import { createIngestHandler, IngestLog } from '../../lambda/ingest/ingest-batch';
import { localClientConfig } from '../../local/services';
import { sqsRecordOf } from '../../local/sqs-record';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Awaited before each journal write or read of a traced container: the call, and how many appends it started before. */
export type JournalGate = (call: 'append' | 'storedPositions', appendsBefore: number) => Promise<void>;

/** The journal with each append and storedPositions traced once it has answered (`<name> append 11:00:<entry>{positions} -> appended`). */
function tracedJournal(real: UsageJournal, name: string, trace: (line: string) => void, gate?: JournalGate): UsageJournal {
  let appends = 0;
  return {
    append: async (entries) => {
      await gate?.('append', appends);
      appends++;
      const out = await real.append(entries);
      trace(`${name} append ${entries.map((e) => `${e.hourStart.slice(11, 16)}:${entryIdOf(e)}{${e.events.map((x) => x.p).join(',')}}`).join(' ')} -> ${out.join(',')}`);
      return out;
    },
    storedPositions: async (messageId, hours) => {
      await gate?.('storedPositions', appends);
      const out = await real.storedPositions(messageId, hours);
      trace(`${name} storedPositions ${messageId} [${hours.map((h) => h.slice(11, 16)).join(',')}] -> {${[...out].join(',')}}`);
      return out;
    },
    refusedPositions: (messageId) => real.refusedPositions(messageId),
    recordRefused: (messageId, refused, at) => real.recordRefused(messageId, refused, at),
  };
}

/** Where a harness's ingestion reads and writes. */
export interface IngestionResources {
  readonly documents: DynamoDBDocumentClient;
  readonly sqs: SQSClient;
  readonly customersTable: string;
  readonly journalTable: string;
  readonly usageDeadLettersUrl: string;
}

/**
 * One ingest handler on the harness's shared clients, its journal traced (and held by `gate`):
 * call it with a message body and receive count.
 */
export function tracedIngest(
  resources: IngestionResources,
  name: string,
  options: { readonly now: () => number; readonly trace: (line: string) => void; readonly gate?: JournalGate; readonly log?: IngestLog; readonly products: readonly ProductConfig[] },
) {
  const handler = createIngestHandler({
    ports: {
      journal: tracedJournal(new DynamoDbUsageJournal(resources.documents, resources.journalTable), name, options.trace, options.gate),
      customers: new CachedCustomerDirectory(resources.documents, resources.customersTable, 60_000, options.now),
      products: options.products,
      now: () => new Date(options.now()),
    },
    deadLetters: new DeadLetterQueue(resources.sqs, resources.usageDeadLettersUrl),
    log: options.log ?? { info: () => undefined, warn: () => undefined },
  });
  return (body: string, receiveCount: number, messageId = 'usage-message-M') =>
    handler({ Records: [sqsRecordOf({ MessageId: messageId, ReceiptHandle: `receipt-${name}-${receiveCount}`, Body: body }, receiveCount)] });
}

// ---------------------------------------------------------------------------------------------
// The fleet

/** The virtual clock as the fleet uses it (concurrency-scenario.ts VirtualClock). */
export interface FleetClock {
  now(): number;
  /** An invocation starts now; it cannot outlive the function's timeout. */
  begin(): number;
  end(token: number): void;
  readonly invocationsInFlight: number;
}

export interface FleetOptions {
  /** Ingestion containers polling the queue at once. @default 4 */
  readonly instances?: number;
  /** Per received message: the chance that SQS also delivers it to another container at the same time. @default 0.25 */
  readonly twinChance?: number;
  /** Of those twins: the chance it carries ApproximateReceiveCount + 1 (a redelivery), else the same count. @default 0.5 */
  readonly twinNextCountChance?: number;
  /** A twin starts 0 to this many ms (real time) after its moment. @default 20 */
  readonly twinDelayMaxMs?: number;
  /** How long (0 to this many ms, real time) the first container is held up once it has started a twin. @default 80 */
  readonly twinHeadStartMaxMs?: number;
  /** Per message handled: the chance its delete is lost, so SQS redelivers it (receive count + 1). @default 0.15 */
  readonly redeliverChance?: number;
  /** Per message handled and deleted: the chance SQS delivers a stray copy 1 to 12 virtual minutes later, same receive count. @default 0 */
  readonly strayDuplicateChance?: number;
  /** Random latency added to each DynamoDB call of the ingest containers, before and after, in ms. @default 6 */
  readonly dynamoJitterMs?: number;
  /** Per DynamoDB call of an ingest container: the chance of a longer pause (40 to 120 ms: a GC pause, a slow network). @default 0 */
  readonly dynamoPauseChance?: number;
  /** How long a container's cache keeps a customer, in virtual ms (a Lambda keeps it 60 s). @default 60000 */
  readonly customerCacheMs?: number;
}

/** What the fleet counts. */
export interface FleetStats {
  invocations: number;
  twinInvocations: number;
  twinsSameCount: number;
  twinsNextCount: number;
  strayDuplicates: number;
  deliveriesWithReceiveCountAbove1: number;
  lostDeletes: number;
  batchItemFailures: number;
}

export const newFleetStats = (): FleetStats => ({
  invocations: 0,
  twinInvocations: 0,
  twinsSameCount: 0,
  twinsNextCount: 0,
  strayDuplicates: 0,
  deliveriesWithReceiveCountAbove1: 0,
  lostDeletes: 0,
  batchItemFailures: 0,
});

export interface FleetSetup {
  readonly dynamoDbEndpoint: string;
  readonly sqsEndpoint: string;
  readonly resources: Omit<IngestionResources, 'documents'> & { readonly usageQueueUrl: string };
  readonly products: readonly ProductConfig[];
  readonly clock: FleetClock;
  /** The harness's seeded randomness: what happens (twins, lost deletes); and DynamoDB latency. */
  readonly rand: () => number;
  readonly jitterRand: () => number;
  readonly options: FleetOptions;
  readonly stats: FleetStats;
  /** Harness problems (a twin never handled, a receive that failed). */
  readonly problems: string[];
  /** A line of what the containers did (the harness adds the times). */
  readonly trace: (line: string) => void;
  /** Each container's ingest log. */
  readonly log?: (container: string) => IngestLog;
  /** Harness self-check: the body of a message deleted from the queue unread, as if lost. */
  readonly droppedBody?: string;
}

/** A message the producer sends when the virtual clock reaches `sendAt`. */
export interface ProducedMessage {
  readonly sendAt: number;
  readonly body: string;
  sqsMessageId?: string;
}

interface Container {
  readonly name: string;
  /** Run once this invocation's n-th DynamoDB call has landed (n = 0: at once); pending ones run when it ends. */
  readonly afterCalls: { n: number; run: () => void }[];
  handle(event: SQSEvent): Promise<SQSBatchResponse>;
  busy: boolean;
  destroy(): void;
}

/** A DynamoDB document client whose every call takes a little random time before and after (network). */
function jitteryDocuments(endpoint: string, jitterMs: number, pauseChance: number, rand: () => number, onLanded: () => number): DynamoDBDocumentClient {
  const documents = DynamoDBDocumentClient.from(new DynamoDBClient(localClientConfig(endpoint)), { marshallOptions: { removeUndefinedValues: true } });
  const delay = () => Math.floor(rand() * jitterMs) + (rand() < pauseChance ? 40 + Math.floor(rand() * 80) : 0);
  documents.middlewareStack.add(
    (next) => async (args) => {
      await sleep(delay());
      let extra = 0;
      try {
        return await next(args);
      } finally {
        // The call has landed (its answer is on the way back); a twin started now may get a head start.
        extra = onLanded();
        await sleep(delay() + extra);
      }
    },
    { step: 'initialize', name: 'concurrencyJitter', priority: 'high' },
  );
  return documents;
}

/**
 * Starts `instances` containers polling the usage queue. `produce` sends the messages as they fall
 * due, `drain` waits until the queue is empty and nothing is in flight, `stop` ends the workers and
 * waits for the twins.
 */
export function startIngestionFleet(setup: FleetSetup) {
  const { rand, jitterRand, clock, stats, problems, trace, options, resources } = setup;
  const { sqs, usageQueueUrl } = resources;
  const containers: Container[] = [];
  let stopping = false;

  const newContainer = (name: string): Container => {
    let calls = 0;
    const afterCalls: Container['afterCalls'] = [];
    /** Starts the twins due; returns how long this container is then held up (descheduled), in ms. */
    const fire = (all: boolean): number => {
      let fired = 0;
      for (let i = afterCalls.length - 1; i >= 0; i--) {
        if (all || afterCalls[i].n <= calls) {
          afterCalls.splice(i, 1)[0].run();
          fired++;
        }
      }
      return fired > 0 ? Math.floor(rand() * (options.twinHeadStartMaxMs ?? 80)) : 0;
    };
    const docs = jitteryDocuments(setup.dynamoDbEndpoint, options.dynamoJitterMs ?? 6, options.dynamoPauseChance ?? 0, jitterRand, () => {
      calls++;
      return fire(false);
    });
    const deadLetterSqs = new SQSClient(localClientConfig(setup.sqsEndpoint));
    const handler = createIngestHandler({
      ports: {
        journal: tracedJournal(new DynamoDbUsageJournal(docs, resources.journalTable), name, trace),
        customers: new CachedCustomerDirectory(docs, resources.customersTable, options.customerCacheMs ?? 60_000, () => clock.now()),
        products: setup.products,
        now: () => new Date(clock.now()),
      },
      deadLetters: new DeadLetterQueue(deadLetterSqs, resources.usageDeadLettersUrl),
      log: setup.log?.(name) ?? { info: () => undefined, warn: () => undefined },
    });
    const container: Container = {
      name,
      afterCalls,
      busy: false,
      handle: async (event) => {
        calls = 0;
        fire(false);
        const token = clock.begin();
        trace(`${name} invoke ${event.Records.map((r) => `${r.messageId}(count ${r.attributes.ApproximateReceiveCount})`).join(' ')}`);
        try {
          return await handler(event);
        } finally {
          clock.end(token);
          fire(true);
        }
      },
      destroy: () => {
        docs.destroy();
        deadLetterSqs.destroy();
      },
    };
    containers.push(container);
    return container;
  };

  /** Invokes a container; the ids of the messages that failed (all of them if it threw). */
  const invoke = async (container: Container, records: SQSRecord[]): Promise<Set<string>> => {
    stats.invocations++;
    for (const r of records) if (Number(r.attributes.ApproximateReceiveCount) > 1) stats.deliveriesWithReceiveCountAbove1++;
    try {
      const response = await container.handle({ Records: records });
      stats.batchItemFailures += response.batchItemFailures.length;
      return new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
    } catch (error) {
      trace(`${container.name} threw ${String(error)}`);
      stats.batchItemFailures += records.length;
      return new Set(records.map((r) => r.messageId));
    }
  };

  const twinPool: Container[] = [];
  const twinsInFlight = new Set<Promise<void>>();
  const takeTwinContainer = () => {
    const free = twinPool.find((c) => !c.busy);
    const container = free ?? newContainer(`twin-${twinPool.length + 1}`);
    if (!free) twinPool.push(container);
    container.busy = true;
    return container;
  };
  /** SQS hands `m` to another container (not before virtual `notBefore`); delivered again until handled. */
  const runTwin = (m: Message, receiveCount: number, notBefore?: number) => {
    const task = (async () => {
      await sleep(Math.floor(rand() * (options.twinDelayMaxMs ?? 20)));
      while (notBefore !== undefined && clock.now() < notBefore && !stopping) await sleep(5);
      for (let count = receiveCount, attempt = 0; ; count++, attempt++) {
        const container = takeTwinContainer();
        stats.twinInvocations++;
        let failed: Set<string>;
        try {
          failed = await invoke(container, [sqsRecordOf(m, count)]);
        } finally {
          container.busy = false;
        }
        if (failed.size === 0) return;
        if (attempt === 6) {
          problems.push(`NEVER HANDLED: twin delivery of ${m.MessageId} still failing after ${attempt + 1} deliveries`);
          return;
        }
        await sleep(50);
      }
    })();
    twinsInFlight.add(task);
    void task.finally(() => twinsInFlight.delete(task));
  };

  const lostDeletes = new Map<string, number>();
  const worker = async (container: Container) => {
    while (!stopping) {
      let received: Message[];
      try {
        ({ Messages: received = [] } = await sqs.send(
          new ReceiveMessageCommand({ QueueUrl: usageQueueUrl, MaxNumberOfMessages: 1 + Math.floor(rand() * 10), WaitTimeSeconds: 0, VisibilityTimeout: 2, MessageSystemAttributeNames: ['All'] }),
        ));
      } catch (error) {
        if (!stopping) problems.push(`harness: receive failed: ${String(error)}`);
        await sleep(50);
        continue;
      }
      // Self-check: a message lost before any container saw it. Known by its body: a container can
      // receive it before the producer has read its message id.
      if (setup.droppedBody !== undefined) {
        for (const m of received.filter((x) => x.Body === setup.droppedBody)) {
          await sqs.send(new DeleteMessageCommand({ QueueUrl: usageQueueUrl, ReceiptHandle: m.ReceiptHandle! })).catch(() => undefined);
        }
        received = received.filter((x) => x.Body !== setup.droppedBody);
      }
      if (received.length === 0) {
        await sleep(15);
        continue;
      }
      const counts = new Map(received.map((m) => [m.MessageId!, Number(m.Attributes?.ApproximateReceiveCount ?? '1')]));
      for (const m of received) {
        if (rand() >= (options.twinChance ?? 0.25)) continue;
        const next = rand() < (options.twinNextCountChance ?? 0.5);
        if (next) stats.twinsNextCount++;
        else stats.twinsSameCount++;
        // SQS hands it over again while the first container works: after its n-th DynamoDB call has landed.
        const count = counts.get(m.MessageId!)! + (next ? 1 : 0);
        container.afterCalls.push({ n: Math.floor(rand() * 5), run: () => runTwin(m, count) });
      }
      container.busy = true;
      const failed = await invoke(
        container,
        received.map((m) => sqsRecordOf(m, counts.get(m.MessageId!)!)),
      );
      container.busy = false;
      for (const m of received) {
        if (failed.has(m.MessageId!)) {
          await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: usageQueueUrl, ReceiptHandle: m.ReceiptHandle!, VisibilityTimeout: 0 })).catch(() => undefined);
          continue;
        }
        const lost = lostDeletes.get(m.MessageId!) ?? 0;
        if (lost < 2 && rand() < (options.redeliverChance ?? 0.15)) {
          // The delete never reached SQS: the message comes back, later or at once.
          lostDeletes.set(m.MessageId!, lost + 1);
          stats.lostDeletes++;
          await sqs
            .send(new ChangeMessageVisibilityCommand({ QueueUrl: usageQueueUrl, ReceiptHandle: m.ReceiptHandle!, VisibilityTimeout: rand() < 0.5 ? 0 : 1 }))
            .catch(() => undefined);
          continue;
        }
        await sqs.send(new DeleteMessageCommand({ QueueUrl: usageQueueUrl, ReceiptHandle: m.ReceiptHandle! }));
        const strayChance = options.strayDuplicateChance ?? 0;
        if (strayChance > 0 && rand() < strayChance) {
          stats.strayDuplicates++;
          runTwin(m, counts.get(m.MessageId!)!, clock.now() + (1 + rand() * 11) * 60_000);
        }
      }
    }
  };
  const workers = Array.from({ length: options.instances ?? 4 }, (_, i) => worker(newContainer(`ingest-${i + 1}`)));

  return {
    /** Sends each message once the virtual clock reaches its `sendAt` (they are in that order), 10 a call. */
    async produce(messages: readonly ProducedMessage[]): Promise<void> {
      for (let i = 0; i < messages.length; ) {
        if (messages[i].sendAt > clock.now()) {
          await sleep(3);
          continue;
        }
        const due: number[] = [];
        while (i < messages.length && messages[i].sendAt <= clock.now() && due.length < 10) due.push(i++);
        const { Successful = [], Failed = [] } = await sqs.send(
          new SendMessageBatchCommand({ QueueUrl: usageQueueUrl, Entries: due.map((index) => ({ Id: String(index), MessageBody: messages[index].body })) }),
        );
        if (Failed.length > 0) throw new Error(`harness: SQS refused ${Failed.length} messages`);
        for (const s of Successful) messages[Number(s.Id)].sqsMessageId = s.MessageId;
      }
    },
    /** Waits until the queue is empty, no twin is in flight and no invocation runs (three checks in a row). */
    async drain(): Promise<void> {
      for (let quiet = 0; quiet < 3; ) {
        await sleep(40);
        const { Attributes = {} } = await sqs.send(
          new GetQueueAttributesCommand({ QueueUrl: usageQueueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
        );
        const left = Number(Attributes.ApproximateNumberOfMessages) + Number(Attributes.ApproximateNumberOfMessagesNotVisible);
        quiet = left === 0 && twinsInFlight.size === 0 && clock.invocationsInFlight === 0 ? quiet + 1 : 0;
      }
    },
    /** Ends the workers, then waits for the twins still in flight. */
    async stop(): Promise<void> {
      stopping = true;
      await Promise.all(workers);
      await Promise.all([...twinsInFlight]);
    },
    /** Closes every container's clients. */
    destroy(): void {
      for (const c of containers) c.destroy();
    },
  };
}
