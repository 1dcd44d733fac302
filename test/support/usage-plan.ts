/**
 * The usage the concurrency harnesses send (concurrency-scenario.ts, lifecycle-concurrency-scenario.ts):
 * per customer x dimension ("series") n distinct events with quantities 2^0 .. 2^(n-1), so any billed
 * total says which events it holds; sent on time, a few minutes late (around their hour's seal) or
 * much later (their hour sealed); some without an eventId; some sent again by the producer in
 * another message; grouped 1 to 5 to a message, shuffled within it.
 */
import { legacyCustomerKey, licenseCustomerKey } from '../../lambda/core/customer';
import { ProductConfig } from '../../lambda/core/product-config';
import { HOUR_MS } from '../../lambda/core/utc-hour';
import { Customer } from './metering-environment';

const MIN_MS = 60_000;

/** A customer of a scenario, named in problem lines. */
export type ScenarioCustomer = Customer & { readonly name: string };

/** A customer x dimension: what the totals are compared on. */
export interface Series {
  readonly index: number;
  readonly customer: ScenarioCustomer;
  readonly dimension: string;
  /** `customerKey|dimension` */
  readonly key: string;
}

/** A buyer the simulator created (POST /_admin/customers), as a scenario's customer. */
export function scenarioCustomerOf(
  name: string,
  product: ProductConfig,
  created: { customerAWSAccountId: string; licenseArn: string; customerIdentifier?: string },
): ScenarioCustomer {
  return {
    name,
    productCode: product.productCode,
    identityMode: product.identityMode,
    customerAWSAccountId: created.customerAWSAccountId,
    licenseArn: created.licenseArn,
    customerIdentifier: created.customerIdentifier,
    customerKey: product.identityMode === 'license' ? licenseCustomerKey(created.licenseArn) : legacyCustomerKey(product.productCode, created.customerIdentifier!),
  };
}

/** The customer's Customers table item, as registration writes it (identity only). */
export function customerItemOf(customer: ScenarioCustomer): Record<string, unknown> {
  return {
    customerKey: customer.customerKey,
    productCode: customer.productCode,
    identityMode: customer.identityMode,
    customerAWSAccountId: customer.customerAWSAccountId,
    licenseArn: customer.licenseArn,
    ...(customer.customerIdentifier ? { customerIdentifier: customer.customerIdentifier } : {}),
  };
}

/** One series per customer and dimension of its product. */
export function seriesOf(customers: readonly ScenarioCustomer[], products: readonly ProductConfig[]): Series[] {
  const series: Series[] = [];
  for (const customer of customers) {
    const product = products.find((p) => p.productCode === customer.productCode)!;
    for (const dimension of product.dimensions) series.push({ index: series.length, customer, dimension, key: `${customer.customerKey}|${dimension}` });
  }
  return series;
}

/** A copy of an event in a message: the message and the event's position there. */
export interface Copy {
  readonly message: number;
  position: number;
}

/** One distinct usage event (distinct by eventId, or by message id + position without one). */
export interface UsageUnit {
  readonly series: number;
  /** A power of two, unique within its series: a loss or a double shows in the total. */
  readonly quantity: number;
  readonly eventId?: string;
  readonly happenedAt: number;
  /** Where it was sent: once, or twice when the producer sent it again. */
  readonly copies: Copy[];
}

export interface PlannedMessage {
  readonly index: number;
  readonly sendAt: number;
  readonly units: readonly UsageUnit[];
  /** The message body (a JSON array of the units' events). */
  readonly body: string;
  sqsMessageId?: string;
}

export interface UsagePlanOptions {
  readonly seed: number;
  /** Virtual time the producers start and stop sending. */
  readonly start: Date;
  readonly end: Date;
  /** Distinct events per customer x dimension (2^0 .. 2^(n-1)), at most 30. */
  readonly unitsPerSeries?: number;
  /** Share of events without an eventId (counted by message id + position). */
  readonly noEventIdShare?: number;
  /** Share of eventId events the producer sends again in another message. */
  readonly resendShare?: number;
  /** Share of events sent 20 to 150 minutes after they happened (their hour is usually sealed). */
  readonly lateShare?: number;
  /** Share of events sent 4 to 14 minutes after they happened (around the seal of their hour). */
  readonly slowShare?: number;
}

/** Plans the usage of `series`; `defaults` fill what `options` leaves out. */
export function planUsage(options: UsagePlanOptions, defaults: Required<Omit<UsagePlanOptions, 'seed' | 'start' | 'end'>>, series: readonly Series[], rand: () => number) {
  const o = { ...defaults, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as Required<UsagePlanOptions>;
  if (o.unitsPerSeries > 30) throw new Error('at most 30 units per series (a bucket must stay under 2^31)');
  const start = o.start.getTime();
  const span = o.end.getTime() - start;
  const units: UsageUnit[] = [];
  const copies: { unit: UsageUnit; sendAt: number }[] = [];
  for (const s of series) {
    for (let k = 0; k < o.unitsPerSeries; k++) {
      const sendAt = start + Math.floor(rand() * span);
      const category = rand();
      const lag =
        category < o.lateShare ? (20 + rand() * 130) * MIN_MS : category < o.lateShare + o.slowShare ? (4 + rand() * 10) * MIN_MS : rand() * 3 * MIN_MS;
      const withoutId = rand() < o.noEventIdShare;
      const unit: UsageUnit = {
        series: s.index,
        quantity: 2 ** k,
        ...(withoutId ? {} : { eventId: `ev-${o.seed}-${s.index}-${k}` }),
        happenedAt: Math.floor(sendAt - lag),
        copies: [],
      };
      units.push(unit);
      copies.push({ unit, sendAt });
      if (!withoutId && rand() < o.resendShare) {
        // The producer sends it again (a retry of its own): same eventId, timestamp and quantity.
        const again = Math.min(o.end.getTime(), Math.max(unit.happenedAt, sendAt + Math.floor((rand() * 1.5 - 0.25) * HOUR_MS)));
        copies.push({ unit, sendAt: again });
      }
    }
  }
  copies.sort((a, b) => a.sendAt - b.sendAt);
  const messages: PlannedMessage[] = [];
  for (let i = 0; i < copies.length; ) {
    const size = 1 + Math.floor(rand() * 5);
    const group = copies.slice(i, i + size);
    i += group.length;
    // Shuffled within the message; a message is sent once its last event is.
    const shuffled = group.map((c) => ({ c, r: rand() })).sort((a, b) => a.r - b.r).map(({ c }) => c.unit);
    const index = messages.length;
    shuffled.forEach((unit, position) => unit.copies.push({ message: index, position }));
    messages.push({ index, sendAt: group[group.length - 1].sendAt, units: shuffled, body: bodyOf(shuffled, series) });
  }
  return { units, messages };
}

function bodyOf(units: readonly UsageUnit[], series: readonly Series[]): string {
  return JSON.stringify(
    units.map((u) => {
      const { customer, dimension } = series[u.series];
      const identity =
        customer.identityMode === 'license' ? { licenseArn: customer.licenseArn } : { productCode: customer.productCode, customerIdentifier: customer.customerIdentifier };
      return { ...identity, dimension, quantity: u.quantity, timestamp: new Date(u.happenedAt).toISOString(), ...(u.eventId ? { eventId: u.eventId } : {}) };
    }),
  );
}
