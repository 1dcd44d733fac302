/**
 * Crash injection for the metering run (test/integration/metering-crash-points.test.ts).
 *
 * A CrashInjector counts the I/O calls a metering run makes, across every port, and "kills the
 * process" at the k-th one: `before` (the call is never made) or `after` (the call landed, its
 * answer is never seen). Once killed, every later call throws before doing anything, as a dead
 * process makes no more calls; a call already in flight when the process died still lands (it was
 * on the wire) but its answer is dropped. So the world the next run finds is exactly what a real
 * crash at that point leaves, even where the code catches the error and carries on.
 *
 * Two levels of instrumentation:
 * - `ports`: every method of MeteringPorts (ledger, journal, zero usage, subscriptions, dead
 *   letters, metering API), including the journal / ledger methods the fold calls internally;
 * - `wire`: every request sent to DynamoDB, SQS and AWS Marketplace (the SDK clients' `send`), so a
 *   crash can also fall between the calls of one port method (a BatchWriteItem of 25 of 40 items).
 */
import { MarketplaceMeteringClient } from '@aws-sdk/client-marketplace-metering';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

export class KilledError extends Error {
  constructor(readonly at: string) {
    super(`the metering function was killed (${at})`);
    this.name = 'KilledError';
  }
}

export type CrashMode = 'before' | 'after';
export type CrashLevel = 'ports' | 'wire';

export class CrashInjector {
  /** Calls made (or attempted) so far. */
  count = 0;
  /** Set once the process is dead: where it died. */
  killedAt?: string;
  /** Calls whose I/O is under way. */
  inFlight = 0;
  /** Every call, in order, as `n:label` (for reports). */
  readonly calls: string[] = [];

  constructor(
    readonly mode: CrashMode,
    /** The call to die at (1-based); undefined: never. */
    readonly crashAt: number | undefined,
  ) {}

  get killed(): boolean {
    return this.killedAt !== undefined;
  }

  private kill(label: string): never {
    this.killedAt ??= label;
    throw new KilledError(label);
  }

  /** Runs one I/O call under the injector. */
  async call<T>(label: string, io: () => Promise<T>): Promise<T> {
    if (this.killed) throw new KilledError(`after death: ${label}`);
    const n = ++this.count;
    this.calls.push(`${n}:${label}`);
    if (this.mode === 'before' && n === this.crashAt) this.kill(`before #${n} ${label}`);
    this.inFlight++;
    let outcome: { ok: true; value: T } | { ok: false; error: unknown };
    try {
      outcome = { ok: true, value: await io() };
    } catch (error) {
      // An answer like ConditionalCheckFailed is a call that was made all the same.
      outcome = { ok: false, error };
    } finally {
      this.inFlight--;
    }
    // The process died while the call was in flight: it landed, nobody sees the answer.
    if (this.killed) throw new KilledError(`answer lost: ${label}`);
    if (this.mode === 'after' && n === this.crashAt) this.kill(`after #${n} ${label}${outcome.ok ? '' : ' (which failed)'}`);
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }

  /** An async iterable (a paginated read) under the injector: one call for the whole read. */
  iterate<T>(label: string, open: () => AsyncIterable<T>): AsyncIterable<T> {
    const injector = this;
    return {
      async *[Symbol.asyncIterator]() {
        const items: T[] = [];
        await injector.call(label, async () => {
          for await (const item of open()) items.push(item);
        });
        yield* items;
      },
    };
  }

  /** Waits until nothing the dead run started is still in flight. */
  async settle(): Promise<void> {
    for (let quiet = 0; quiet < 3; ) {
      await new Promise((r) => setTimeout(r, 20));
      quiet = this.inFlight === 0 ? quiet + 1 : 0;
    }
  }
}

/** Replaces the named methods of `target` (an instance) by injected ones. */
export function instrumentMethods(target: object, prefix: string, methods: readonly string[], injector: CrashInjector): void {
  const object = target as Record<string, unknown>;
  for (const name of methods) {
    const original = object[name];
    if (typeof original !== 'function') throw new Error(`${prefix}.${name} is not a method`);
    object[name] = (...args: unknown[]) => injector.call(`${prefix}.${name}`, () => Promise.resolve((original as (...a: unknown[]) => unknown).apply(target, args)));
  }
}

/** Replaces an async generator method: the whole read is one call. */
export function instrumentGenerator(target: object, prefix: string, name: string, injector: CrashInjector): void {
  const object = target as Record<string, unknown>;
  const original = object[name] as (...a: unknown[]) => AsyncIterable<unknown>;
  object[name] = (...args: unknown[]) => injector.iterate(`${prefix}.${name}`, () => original.apply(target, args));
}

function commandName(command: unknown): string {
  return (command as { constructor?: { name?: string } })?.constructor?.name ?? 'command';
}

/** A client whose `send` goes through the injector (the original is shared, not changed). */
export function instrumentClient<C extends DynamoDBDocumentClient | SQSClient | MarketplaceMeteringClient>(client: C, prefix: string, injector: CrashInjector): C {
  const wrapped = Object.create(client) as C & { send: (command: unknown, ...rest: unknown[]) => Promise<unknown> };
  const send = (client as unknown as { send: (command: unknown, ...rest: unknown[]) => Promise<unknown> }).send.bind(client);
  wrapped.send = (command: unknown, ...rest: unknown[]) => injector.call(`${prefix}.${commandName(command)}`, () => send(command, ...rest));
  return wrapped;
}
