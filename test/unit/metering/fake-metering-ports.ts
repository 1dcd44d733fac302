import { FinalUsageFlush } from '../../../lambda/core/lifecycle/subscription-state';
import { FoldRejection } from '../../../lambda/core/metering/fold';
import { FoldReport } from '../../../lambda/core/metering/fold-hours';
/**
 * In-memory stand-ins for the metering run's ports: a clock that moves only when slept on, a ledger
 * of hour buckets, a dead-letter queue, and a BatchMeterUsage that keeps AWS's semantics (see
 * /work/shared/marketplace-facts.md): de-duplication per identity x dimension x hour (a repeat with
 * the same quantity answers Success with the same MeteringRecordId, a different quantity
 * DuplicateRecord), whole-request errors for a bad dimension, licence or timestamp, results in an
 * undocumented order, and faults on demand. Breaking the protocol (more than 25 records, mixed
 * identity modes, 1 MB) throws a plain Error, which the run does not catch: the test fails loudly.
 */
import { HourBucket, MeteringRecord } from '../../../lambda/core/metering/hour-bucket';
import {
  FinalUsageReport,
  BatchMeterUsageAnswer,
  BatchMeterUsageCall,
  DeadLetter,
  MeteringApi,
  MeteringApiError,
  MeteringDeadLetters,
  MeteringLedger,
} from '../../../lambda/core/metering/metering-run';
import { ApiResult } from '../../../lambda/core/metering/outcomes';
import { Clock } from '../../../lambda/core/metering/pacing';
import { wireBody } from '../../../lambda/core/metering/request-plan';

const HOUR_MS = 3_600_000;

export class FakeClock implements Clock {
  readonly sleeps: number[] = [];
  constructor(public time: number) {}
  now(): number {
    return this.time;
  }
  async sleep(ms: number): Promise<void> {
    if (ms < 0) throw new Error(`negative sleep ${ms}`);
    this.sleeps.push(ms);
    this.time += ms;
  }
}

type MutableBucket = { -readonly [K in keyof HourBucket]: HourBucket[K] } & { failure?: { reason: string; message: string }; held?: string };

export class FakeMeteringLedger implements MeteringLedger {
  readonly buckets = new Map<string, MutableBucket>();
  /** recordMetered throws this many times (a crash after AWS answered, before the outcome was stored). */
  crashOnRecordMetered = 0;

  put(...buckets: HourBucket[]): void {
    for (const b of buckets) this.buckets.set(b.bucketKey, { ...b });
  }

  get(bucketKey: string): MutableBucket {
    const bucket = this.buckets.get(bucketKey);
    if (!bucket) throw new Error(`no bucket ${bucketKey}`);
    return bucket;
  }

  withStatus(status: HourBucket['status']): MutableBucket[] {
    return [...this.buckets.values()].filter((b) => b.status === status);
  }

  async sealHoursEndedBy(cutoff: Date, now: Date): Promise<FoldReport> {
    const sealed: HourBucket[] = [];
    for (const bucket of this.buckets.values()) {
      if (bucket.status === 'open' && Date.parse(bucket.hourStart) + HOUR_MS <= cutoff.getTime()) {
        bucket.status = 'sealed';
        bucket.sealedAt = now.toISOString();
        sealed.push({ ...bucket });
      }
    }
    return { buckets: sealed, rejected: [], duplicates: 0 };
  }

  /** Final usage flushes waiting for their time (the lifecycle's), as the journal holds them. */
  readonly finalUsage: FinalUsageFlush[] = [];

  async sealFinalUsageDue(now: Date, stands: (flushes: readonly FinalUsageFlush[]) => Promise<readonly boolean[]>): Promise<FinalUsageReport> {
    const sealed: HourBucket[] = [];
    let customers = 0;
    let withdrawn = 0;
    const due = this.finalUsage.filter((flush) => Date.parse(flush.dueAt) <= now.getTime());
    const standing = due.length > 0 ? await stands(due) : [];
    for (const [i, flush] of due.entries()) {
      if (!standing[i]) {
        this.finalUsage.splice(this.finalUsage.indexOf(flush), 1);
        withdrawn += 1;
        continue;
      }
      for (const bucket of this.buckets.values()) {
        if (bucket.customerKey === flush.customerKey && bucket.status === 'open' && Date.parse(bucket.hourStart) <= now.getTime()) {
          bucket.status = 'sealed';
          bucket.sealedAt = now.toISOString();
          sealed.push({ ...bucket });
        }
      }
      this.finalUsage.splice(this.finalUsage.indexOf(flush), 1);
      customers += 1;
    }
    return { buckets: sealed, rejected: [], duplicates: 0, customers, withdrawn, failed: [] };
  }

  async bucketsToMeter(limit: number): Promise<HourBucket[]> {
    return this.withStatus('sealed')
      .sort((a, b) => a.hourStart.localeCompare(b.hourStart))
      .slice(0, limit)
      .map((b) => ({ ...b }));
  }

  async recordAttempt(bucketKeys: readonly string[]): Promise<void> {
    for (const key of bucketKeys) this.get(key).attempts += 1;
  }

  async recordMetered(bucketKey: string, meteringRecordId: string): Promise<void> {
    if (this.crashOnRecordMetered > 0) {
      this.crashOnRecordMetered -= 1;
      throw new Error('the function timed out before storing the outcome');
    }
    const bucket = this.get(bucketKey);
    if (bucket.status !== 'sealed') throw new Error(`recordMetered on a ${bucket.status} bucket ${bucketKey}`);
    bucket.status = 'metered';
    bucket.meteringRecordId = meteringRecordId;
  }

  async recordHeld(bucketKey: string, reason: string): Promise<void> {
    const bucket = this.get(bucketKey);
    if (bucket.status !== 'sealed') throw new Error(`recordHeld on a ${bucket.status} bucket ${bucketKey}`);
    bucket.held = reason;
    bucket.lastOutcome = reason;
  }

  async recordFailed(bucketKey: string, reason: string, message: string): Promise<void> {
    const bucket = this.get(bucketKey);
    if (bucket.status !== 'sealed') throw new Error(`recordFailed on a ${bucket.status} bucket ${bucketKey}`);
    bucket.status = 'failed';
    bucket.failure = { reason, message };
  }
}

export class FakeDeadLetters implements MeteringDeadLetters {
  readonly letters: DeadLetter[] = [];
  readonly usage: FoldRejection[] = [];
  async send(letters: readonly DeadLetter[]): Promise<void> {
    this.letters.push(...letters);
  }
  async sendUsage(rejections: readonly FoldRejection[]): Promise<void> {
    this.usage.push(...rejections);
  }
}

interface Licence {
  readonly productCode: string;
  readonly account: string;
  subscribed: boolean;
  /** When the licence became active: a record stamped earlier is refused (InvalidLicenseException). */
  activeFrom?: Date;
}

export interface RecordedCall {
  readonly at: number;
  readonly call: BatchMeterUsageCall;
  readonly outcome: 'answered' | string;
}

export class FakeMarketplace implements MeteringApi {
  readonly calls: RecordedCall[] = [];
  /** Per identity x dimension x hour: what was billed, once. */
  readonly billed = new Map<string, { quantity: number; meteringRecordId: string }>();
  /** Thrown, one per call, before anything else. */
  failNext: MeteringApiError[] = [];
  /** Thrown by every call once failNext is used up. */
  failAlways?: MeteringApiError;
  /** Thrown by every call that holds a record it picks (after failNext and failAlways). */
  failWhenSent?: { readonly error: () => MeteringApiError; readonly picks: (record: MeteringRecord) => boolean };
  /** Records answered as UnprocessedRecords (each match consumes one). */
  unprocessed: ((record: MeteringRecord) => boolean)[] = [];

  private readonly products = new Map<string, { mode: 'license' | 'legacy'; dimensions: readonly string[] }>();
  private readonly licences = new Map<string, Licence>();
  private readonly legacyCustomers = new Map<string, { subscribed: boolean }>();
  private nextId = 0;

  constructor(private readonly clock: Clock) {}

  product(productCode: string, mode: 'license' | 'legacy', dimensions: readonly string[]): this {
    this.products.set(productCode, { mode, dimensions });
    return this;
  }

  /** Makes the bucket's customer known to AWS (subscribed unless told otherwise). */
  customer(bucket: HourBucket, subscribed = true, activeFrom?: Date): this {
    if (bucket.identityMode === 'license') {
      this.licences.set(bucket.licenseArn!, { productCode: bucket.productCode, account: bucket.customerAWSAccountId, subscribed, activeFrom });
    } else {
      this.legacyCustomers.set(`${bucket.productCode}|${bucket.customerIdentifier}`, { subscribed });
    }
    return this;
  }

  /** Records AWS holds for an hour (e.g. sent by an earlier deployment). */
  preBill(record: MeteringRecord, productCode?: string): string {
    const id = `mrid-${++this.nextId}`;
    this.billed.set(this.dedupKey(record, productCode), { quantity: record.Quantity, meteringRecordId: id });
    return id;
  }

  billedQuantity(): number {
    return [...this.billed.values()].reduce((total, b) => total + b.quantity, 0);
  }

  /** Every record of every call, in the order sent. */
  sentRecords(): MeteringRecord[] {
    return this.calls.flatMap((c) => [...c.call.records]);
  }

  async batchMeterUsage(call: BatchMeterUsageCall): Promise<BatchMeterUsageAnswer> {
    const recorded = { at: this.clock.now(), call: { ...call, records: call.records.map((r) => ({ ...r })) }, outcome: 'answered' };
    this.calls.push(recorded);
    try {
      return this.answer(call);
    } catch (error) {
      recorded.outcome = error instanceof MeteringApiError ? error.errorName : String(error);
      throw error;
    }
  }

  private answer(call: BatchMeterUsageCall): BatchMeterUsageAnswer {
    const fault = this.failNext.shift() ?? this.failAlways;
    if (fault) throw fault;
    if (this.failWhenSent && call.records.some(this.failWhenSent.picks)) throw this.failWhenSent.error();
    this.checkProtocol(call);

    const productCode = call.productCode ?? this.licences.get(call.records[0].LicenseArn!)?.productCode;
    const product = productCode === undefined ? undefined : this.products.get(productCode);
    if (!product) throw new MeteringApiError(call.productCode ? 'InvalidProductCodeException' : 'InvalidLicenseException', 'unknown product or licence', 400);
    for (const record of call.records) {
      if (call.productCode === undefined) {
        const licence = this.licences.get(record.LicenseArn!);
        if (!licence || licence.account !== record.CustomerAWSAccountId || licence.productCode !== productCode) {
          throw new MeteringApiError('InvalidLicenseException', `licence ${record.LicenseArn} is not valid here`, 400);
        }
        if (licence.activeFrom && record.Timestamp < licence.activeFrom) {
          throw new MeteringApiError('InvalidLicenseException', `licence ${record.LicenseArn} was not active at ${record.Timestamp.toISOString()}`, 400);
        }
      } else if (!this.legacyCustomers.has(`${call.productCode}|${record.CustomerIdentifier}`)) {
        throw new MeteringApiError('InvalidCustomerIdentifierException', `unknown customer ${record.CustomerIdentifier}`, 400);
      }
      if (!product.dimensions.includes(record.Dimension)) {
        throw new MeteringApiError('InvalidUsageDimensionException', `${record.Dimension} is not a dimension of ${productCode}`, 400);
      }
      const age = this.clock.now() - record.Timestamp.getTime();
      if (age > 24 * HOUR_MS || age < -HOUR_MS) {
        throw new MeteringApiError('TimestampOutOfBoundsException', `${record.Timestamp.toISOString()} is out of bounds`, 400);
      }
      if (record.UsageAllocations) {
        const sum = record.UsageAllocations.reduce((total, a) => total + a.AllocatedUsageQuantity, 0);
        if (sum !== record.Quantity) throw new MeteringApiError('InvalidUsageAllocationsException', 'allocations do not add up', 400);
      }
    }

    const results: ApiResult[] = [];
    const unprocessed: Partial<MeteringRecord>[] = [];
    for (const record of call.records) {
      const echo = { ...record, Timestamp: new Date(record.Timestamp.getTime()) };
      const transient = this.unprocessed.findIndex((matches) => matches(record));
      if (transient !== -1) {
        this.unprocessed.splice(transient, 1);
        unprocessed.push(echo);
        continue;
      }
      const subscribed =
        call.productCode === undefined
          ? this.licences.get(record.LicenseArn!)!.subscribed
          : this.legacyCustomers.get(`${call.productCode}|${record.CustomerIdentifier}`)!.subscribed;
      if (!subscribed) {
        results.push({ record: echo, status: 'CustomerNotSubscribed' });
        continue;
      }
      const key = this.dedupKey(record, call.productCode);
      const existing = this.billed.get(key);
      if (existing && existing.quantity !== record.Quantity) {
        results.push({ record: echo, status: 'DuplicateRecord' });
      } else if (existing) {
        results.push({ record: echo, status: 'Success', meteringRecordId: existing.meteringRecordId });
      } else {
        const meteringRecordId = `mrid-${++this.nextId}`;
        this.billed.set(key, { quantity: record.Quantity, meteringRecordId });
        results.push({ record: echo, status: 'Success', meteringRecordId });
      }
    }
    // AWS does not document the order of Results: answer in reverse.
    return { results: results.reverse(), unprocessed };
  }

  private checkProtocol(call: BatchMeterUsageCall): void {
    const fail = (why: string) => {
      throw new Error(`protocol violation: ${why}`);
    };
    if (call.records.length < 1 || call.records.length > 25) fail(`${call.records.length} records in one call`);
    const mode = call.productCode === undefined ? 'license' : 'legacy';
    const size = Buffer.byteLength(wireBody({ productCode: call.productCode ?? '', identityMode: mode, records: call.records.map((record) => ({ bucketKey: '', record })) }));
    if (size >= 1024 * 1024) fail(`a ${size}-byte request`);
    for (const r of call.records) {
      if (mode === 'license' && (!r.LicenseArn || !r.CustomerAWSAccountId || r.CustomerIdentifier)) fail('a license-mode record without LicenseArn + account, or with a CustomerIdentifier');
      if (mode === 'legacy' && (!r.CustomerIdentifier || r.LicenseArn || r.CustomerAWSAccountId)) fail('a legacy record without CustomerIdentifier, or with licence fields');
    }
  }

  private dedupKey(record: MeteringRecord, productCode?: string): string {
    const identity = productCode === undefined ? `licence:${record.LicenseArn}` : `legacy:${productCode}|${record.CustomerIdentifier}`;
    return `${identity}|${record.Dimension}|${Math.floor(record.Timestamp.getTime() / HOUR_MS)}`;
  }
}
