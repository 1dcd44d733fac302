import { licenseIdOf } from '../../lambda/core/marketplace-limits';
import { SimulatorClock } from './clock';
import { DEFAULT_SIMULATOR_CONFIG, SimulatorConfig } from './config';
import { OperationName } from './errors';
import { deliver, LifecycleChange, Notification, notificationsFor } from './notifications';
import {
  newAccountId,
  newAgreementId,
  newCustomerIdentifier,
  newLicenseArn,
  newRegistrationToken,
} from './identifiers';

/** What the simulated AWS Marketplace knows: the seller's products, their buyers, what was billed. */

export type IdentityMode = 'license' | 'legacy';

export interface SimulatedProduct {
  readonly productCode: string;
  readonly title: string;
  readonly dimensions: readonly string[];
  readonly identityMode: IdentityMode;
  readonly fulfillmentUrl?: string;
}

export type SubscriptionState = 'pending' | 'subscribed' | 'unsubscribe-pending' | 'unsubscribed';

export interface EntitlementValue {
  IntegerValue?: number;
  DoubleValue?: number;
  BooleanValue?: boolean;
  StringValue?: string;
}

export interface SimulatedEntitlement {
  readonly dimension: string;
  readonly value: EntitlementValue;
  readonly expirationDate?: Date;
}

export interface SimulatedCustomer {
  readonly productCode: string;
  readonly customerAWSAccountId: string;
  readonly licenseArn: string;
  /** The `l-...` id inside the licence ARN: how licences are matched. */
  readonly licenseId: string;
  /** Legacy products only. */
  readonly customerIdentifier?: string;
  readonly agreementId: string;
  readonly freeTrial: boolean;
  state: SubscriptionState;
  readonly createdAt: Date;
  /** When the licence became active (first subscription). */
  subscribedAt?: Date;
  unsubscribedAt?: Date;
  /** When it became unsubscribe-pending: AWS takes its usage for about an hour more. */
  unsubscribePendingAt?: Date;
  entitlements: SimulatedEntitlement[];
}

export interface RegistrationToken {
  readonly token: string;
  readonly licenseId: string;
  readonly expiresAt: Date;
}

/** One record AWS accepted and will bill. */
export interface BilledRecord {
  readonly meteringRecordId: string;
  readonly productCode: string;
  readonly licenseArn?: string;
  readonly customerAWSAccountId?: string;
  readonly customerIdentifier?: string;
  readonly dimension: string;
  readonly hour: Date;
  readonly timestamp: Date;
  readonly quantity: number;
  readonly allocations?: unknown[];
  readonly billedAt: Date;
  /** identity mode x customer x dimension x UTC hour: what AWS de-duplicates on. */
  readonly deduplicationKey: string;
}

export interface ApiCall {
  readonly operation: string;
  readonly time: Date;
  readonly outcome: string;
  readonly httpStatus: number;
  readonly recordCount?: number;
}

/** A fault waiting for the next calls of an operation (see `POST /_admin/faults`). */
export interface Fault {
  readonly id: number;
  readonly operation: OperationName;
  readonly error?: string;
  readonly unprocessedFraction?: number;
  readonly emptyPage?: boolean;
  readonly latencyMs?: number;
  /** Calls left; null: every call until cleared. */
  remaining: number | null;
}

export class NotFoundError extends Error {}

export class MarketplaceState {
  readonly products = new Map<string, SimulatedProduct>();
  /** By licence id. */
  readonly customers = new Map<string, SimulatedCustomer>();
  readonly tokens = new Map<string, RegistrationToken>();
  readonly billedRecords: BilledRecord[] = [];
  readonly billedByKey = new Map<string, BilledRecord>();
  readonly calls: ApiCall[] = [];
  faults: Fault[] = [];
  /** Every lifecycle notification emitted, with how its delivery went. */
  readonly notifications: { notification: Notification; emittedAt: Date; delivery: 'pending' | 'delivered' | 'not-configured' | string }[] = [];
  config: SimulatorConfig;
  private nextFaultId = 1;

  constructor(
    readonly clock: SimulatorClock,
    private readonly initialConfig: Partial<SimulatorConfig> = {},
  ) {
    this.config = { ...DEFAULT_SIMULATOR_CONFIG, ...initialConfig };
  }

  reset(): void {
    this.products.clear();
    this.customers.clear();
    this.tokens.clear();
    this.billedRecords.length = 0;
    this.billedByKey.clear();
    this.calls.length = 0;
    this.faults = [];
    this.notifications.length = 0;
    this.config = { ...DEFAULT_SIMULATOR_CONFIG, ...this.initialConfig };
  }

  /** Queues the notifications AWS Marketplace would send for a change of this customer. */
  notify(change: LifecycleChange, customer: SimulatedCustomer): void {
    const product = this.products.get(customer.productCode);
    if (!product) return;
    for (const notification of notificationsFor(change, customer, product, this.clock.now())) {
      this.notifications.push({ notification, emittedAt: this.clock.now(), delivery: 'pending' });
    }
  }

  /** Sends queued notifications to `notificationUrl`, in order; called before an admin answer returns. */
  async deliverNotifications(): Promise<void> {
    for (const entry of this.notifications.filter((n) => n.delivery === 'pending')) {
      const url = this.config.notificationUrl;
      if (!url) {
        entry.delivery = 'not-configured';
        continue;
      }
      const errors = await deliver(url, [entry.notification]);
      entry.delivery = errors.length ? errors.join('; ') : 'delivered';
    }
  }

  putProduct(product: SimulatedProduct): SimulatedProduct {
    this.products.set(product.productCode, product);
    return product;
  }

  addCustomer(input: {
    productCode: string;
    customerAWSAccountId?: string;
    subscribed?: boolean;
    freeTrial?: boolean;
    registrationToken?: string;
  }): { customer: SimulatedCustomer; token: RegistrationToken } {
    const product = this.products.get(input.productCode);
    if (!product) throw new NotFoundError(`unknown product ${input.productCode}`);
    const now = this.clock.now();
    const licenseArn = newLicenseArn();
    const subscribed = input.subscribed ?? true;
    const customer: SimulatedCustomer = {
      productCode: product.productCode,
      customerAWSAccountId: input.customerAWSAccountId ?? newAccountId(),
      licenseArn,
      licenseId: licenseIdOf(licenseArn)!,
      customerIdentifier: product.identityMode === 'legacy' ? newCustomerIdentifier() : undefined,
      agreementId: newAgreementId(),
      freeTrial: input.freeTrial ?? false,
      state: subscribed ? 'subscribed' : 'pending',
      createdAt: now,
      subscribedAt: subscribed ? now : undefined,
      entitlements: [],
    };
    this.customers.set(customer.licenseId, customer);
    if (subscribed) this.notify('subscribed', customer);
    return { customer, token: this.issueToken(customer, input.registrationToken) };
  }

  issueToken(customer: SimulatedCustomer, token = newRegistrationToken()): RegistrationToken {
    const issued = {
      token,
      licenseId: customer.licenseId,
      expiresAt: new Date(this.clock.now().getTime() + this.config.tokenLifetimeSeconds * 1000),
    };
    this.tokens.set(token, issued);
    return issued;
  }

  /** A customer named by licence ARN (or bare licence id) or by legacy CustomerIdentifier. */
  findCustomer(ref: { licenseArn?: string; customerIdentifier?: string }): SimulatedCustomer {
    const customer = ref.licenseArn
      ? this.customers.get(licenseIdOf(ref.licenseArn) ?? '')
      : [...this.customers.values()].find((c) => c.customerIdentifier === ref.customerIdentifier);
    if (!customer) throw new NotFoundError('no such customer');
    return customer;
  }

  /** The customer holding exactly this licence ARN (BatchMeterUsage: another ARN with the same id is not the licence). */
  customerByLicenseArn(licenseArn: string): SimulatedCustomer | undefined {
    const customer = this.customers.get(licenseIdOf(licenseArn) ?? '');
    return customer?.licenseArn === licenseArn ? customer : undefined;
  }

  /** A legacy product's customer, by CustomerIdentifier or by account id. */
  legacyCustomer(productCode: string, ref: { customerIdentifier?: string; customerAWSAccountId?: string }) {
    return [...this.customers.values()].find(
      (c) =>
        c.productCode === productCode &&
        (ref.customerIdentifier !== undefined
          ? c.customerIdentifier === ref.customerIdentifier
          : c.customerAWSAccountId === ref.customerAWSAccountId),
    );
  }

  setSubscription(customer: SimulatedCustomer, state: Exclude<SubscriptionState, 'pending'>): SimulatedCustomer {
    const now = this.clock.now();
    if (state === 'subscribed') {
      customer.subscribedAt ??= now;
      customer.unsubscribedAt = undefined;
      customer.unsubscribePendingAt = undefined;
    } else if (state === 'unsubscribe-pending') {
      if (customer.state !== 'unsubscribe-pending') customer.unsubscribePendingAt = now;
    } else if (state === 'unsubscribed') {
      customer.unsubscribedAt = now;
    }
    const changed = customer.state !== state;
    customer.state = state;
    if (changed) this.notify(state, customer);
    return customer;
  }

  addFault(fault: Omit<Fault, 'id'>): Fault {
    const added = { ...fault, id: this.nextFaultId++ };
    this.faults.push(added);
    return added;
  }

  /**
   * The faults that apply to this call of `operation`: of each kind (error, latency, unprocessed
   * records, empty page) the oldest pending fault that has it. Each fault used loses one call.
   */
  takeFaults(operation: OperationName): { error?: string; latencyMs?: number; unprocessedFraction?: number; emptyPage?: boolean } {
    const pending = this.faults.filter((f) => f.operation === operation);
    const first = <K extends 'error' | 'latencyMs' | 'unprocessedFraction' | 'emptyPage'>(key: K) =>
      pending.find((f) => f[key] !== undefined && f[key] !== false);
    const chosen = {
      error: first('error'),
      latencyMs: first('latencyMs'),
      unprocessedFraction: first('unprocessedFraction'),
      emptyPage: first('emptyPage'),
    };
    for (const fault of new Set(Object.values(chosen).filter((f): f is Fault => f !== undefined))) {
      if (fault.remaining !== null) fault.remaining -= 1;
    }
    this.faults = this.faults.filter((f) => f.remaining === null || f.remaining > 0);
    return {
      error: chosen.error?.error,
      latencyMs: chosen.latencyMs?.latencyMs,
      unprocessedFraction: chosen.unprocessedFraction?.unprocessedFraction,
      emptyPage: chosen.emptyPage?.emptyPage,
    };
  }

  recordCall(call: Omit<ApiCall, 'time'>): void {
    this.calls.push({ ...call, time: this.clock.now() });
  }
}
