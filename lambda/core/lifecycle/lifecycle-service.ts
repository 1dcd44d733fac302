import { CustomerIdentity } from '../customer';
import { ProductConfig } from '../product-config';
import { AgreementSignal, LifecycleSignal } from './lifecycle-signal';
import { endsAccess, FinalUsageFlush, finalUsageFlushes, refreshesEntitlements, StatusChange, statusChangeOf } from './subscription-state';

/**
 * Applies lifecycle signals to customers, free of AWS. Agreement events name no licence: they are
 * matched to a customer through the agreement id seen on a licence event (or, when the buyer's
 * account has exactly one customer, that account); until then they are kept and applied when the
 * customer appears.
 */

export interface Entitlement {
  readonly dimension: string;
  readonly value: { IntegerValue?: number; DoubleValue?: number; BooleanValue?: boolean; StringValue?: string };
  readonly expirationDate?: string;
}

export const LIFECYCLE_EVENTS = {
  subscribed: 'Marketplace Customer Subscribed',
  'unsubscribe-pending': 'Marketplace Customer Unsubscribe Pending',
  unsubscribed: 'Marketplace Customer Unsubscribed',
  failed: 'Marketplace Customer Subscription Failed',
  entitlements: 'Marketplace Customer Entitlements Updated',
} as const;

export interface LifecyclePorts {
  /**
   * Stores the change if it is newer than the stored one; true when it was applied. A free-trial flag
   * is stored if newer than the stored flag's version, whether or not the status was.
   */
  applyStatus(customerKey: string, change: StatusChange, identity: Partial<CustomerIdentity>): Promise<boolean>;
  customer(customerKey: string): Promise<Partial<CustomerIdentity> | undefined>;
  /**
   * Stores identity fields a notification carries, where absent (a licence event may come before
   * registration), and `activeSince` (see activeSinceOf) unless an earlier one is stored.
   */
  rememberIdentity(customerKey: string, identity: Partial<CustomerIdentity>, activeSince?: string): Promise<void>;
  customerKeyForAgreement(agreementId: string): Promise<string | undefined>;
  /** Customers of an AWS account (all licences), to match an agreement when there is only one. */
  customerKeysOfAccount(accountId: string): Promise<string[]>;
  rememberAgreement(agreementId: string, customerKey: string): Promise<void>;
  keepForLater(signal: AgreementSignal): Promise<void>;
  takeKeptSignals(agreementId: string): Promise<AgreementSignal[]>;
  getEntitlements(customer: Partial<CustomerIdentity> & { productCode: string }): Promise<Entitlement[]>;
  /**
   * Stores entitlements unless the stored ones have a newer `version` (at an equal version the later
   * write wins: its GetEntitlements answer is the fresher); true when stored.
   */
  saveEntitlements(customerKey: string, entitlements: readonly Entitlement[], version: string): Promise<boolean>;
  publish(detailType: string, detail: Record<string, unknown>): Promise<void>;
  /**
   * Has the customer's open usage sealed and metered at `flush.dueAt` (ISO 8601), or at once when
   * that has passed: its access ended, and the final usage window is short. The flush carries the
   * ending's version: a later change withdraws it (finalUsageFlushStands).
   */
  flushUsage(flush: FinalUsageFlush): Promise<void>;
}

export interface LifecycleSettings {
  /**
   * How long after access ends the customer's final usage is sealed and metered: usage sent just
   * before the end may still be in the usage queue or an ingestion batch. At most half an hour.
   * @default 300
   */
  readonly finalUsageDelaySeconds?: number;
}

/** The default of LifecycleSettings.finalUsageDelaySeconds. */
export const DEFAULT_FINAL_USAGE_DELAY_SECONDS = 300;

/**
 * An instant the customer's licence (legacy: subscription) is known to have been active: a second
 * after a licence update or subscribe-success notification (their times are whole seconds, cut
 * down). Metering stamps a customer's first hour no earlier, as AWS refuses records stamped before
 * the licence was active, also for a customer the seller bills before it registers.
 */
export function activeSinceOf(signal: LifecycleSignal): string | undefined {
  const known = (signal.kind === 'license' && signal.change === 'updated') || (signal.kind === 'legacy' && signal.action === 'subscribe-success');
  return known ? new Date(Date.parse(signal.eventTime) + 1000).toISOString() : undefined;
}

export type SignalOutcome =
  | { readonly result: 'applied'; readonly customerKey: string; readonly status?: string; readonly entitlements?: number }
  | { readonly result: 'stale'; readonly customerKey: string }
  | { readonly result: 'kept-for-later'; readonly agreementId: string }
  | { readonly result: 'ignored'; readonly reason: string };

export class LifecycleService {
  constructor(
    private readonly ports: LifecyclePorts,
    private readonly products: readonly ProductConfig[],
    private readonly settings: LifecycleSettings = {},
  ) {}

  async handle(signal: LifecycleSignal): Promise<SignalOutcome> {
    if (signal.kind === 'agreement') return this.handleAgreement(signal);
    const product = this.products.find((p) => p.productCode === signal.productCode);
    if (!product) {
      return { result: 'ignored', reason: `product ${signal.productCode} is not served by this stack` };
    }
    // A legacy product's buyers are its CustomerIdentifiers, and their lifecycle comes from its SNS
    // topics. A licence event (ResolveCustomer gives legacy buyers a licence too) would make a
    // license-mode customer of the same buyer, whose usage and zero records AWS would refuse.
    if (signal.kind === 'license' && product.identityMode === 'legacy') {
      return { result: 'ignored', reason: `product ${signal.productCode} is metered as a legacy product: its lifecycle comes from its SNS topics` };
    }
    const identity: Partial<CustomerIdentity> =
      signal.kind === 'license'
        ? {
            productCode: signal.productCode,
            identityMode: 'license',
            licenseArn: signal.licenseArn,
            ...(signal.acceptorAccountId ? { customerAWSAccountId: signal.acceptorAccountId } : {}),
          }
        : { productCode: signal.productCode, identityMode: 'legacy', customerIdentifier: signal.customerIdentifier };
    await this.ports.rememberIdentity(signal.customerKey, identity, activeSinceOf(signal));
    const outcome = await this.apply(signal.customerKey, signal, identity);
    if (signal.kind === 'license' && signal.agreementId) {
      await this.ports.rememberAgreement(signal.agreementId, signal.customerKey);
      await this.applyKept(signal.customerKey, signal.agreementId);
    }
    return outcome;
  }

  /** Applies the agreement's kept events; if that fails they are kept again for the retry (applying twice is harmless). */
  private async applyKept(customerKey: string, agreementId: string): Promise<void> {
    const kept = await this.ports.takeKeptSignals(agreementId);
    try {
      for (const signal of kept) await this.apply(customerKey, signal, {});
    } catch (error) {
      for (const signal of kept) await this.ports.keepForLater(signal);
      throw error;
    }
  }

  private async handleAgreement(signal: AgreementSignal): Promise<SignalOutcome> {
    let customerKey = await this.ports.customerKeyForAgreement(signal.agreementId);
    if (!customerKey && signal.acceptorAccountId && signal.change !== 'ended') {
      const keys = await this.ports.customerKeysOfAccount(signal.acceptorAccountId);
      // Agreement events name no product or licence: the account's only customer is this agreement's
      // only if it belongs to no other agreement. Even then it is a guess (the account may have
      // bought a second licence whose licence event has not arrived yet), so it is not remembered,
      // and an end is never guessed: it waits for the licence event (License Deprovisioned names
      // the agreement), rather than ending a customer who did not leave.
      const only = keys.length === 1 ? ((await this.ports.customer(keys[0])) as { agreementId?: unknown } | undefined) : undefined;
      if (only && (only.agreementId === undefined || only.agreementId === signal.agreementId)) customerKey = keys[0];
    }
    if (!customerKey) {
      await this.ports.keepForLater(signal);
      // The licence event (sent with the agreement event) may have been handled meanwhile, after it
      // looked for kept events: look again, so that a kept event is never stranded.
      const meanwhile = await this.ports.customerKeyForAgreement(signal.agreementId);
      if (!meanwhile) return { result: 'kept-for-later', agreementId: signal.agreementId };
      await this.applyKept(meanwhile, signal.agreementId);
      return { result: 'applied', customerKey: meanwhile };
    }
    const outcome = await this.apply(customerKey, signal, {});
    await this.applyKept(customerKey, signal.agreementId);
    return outcome;
  }

  private async apply(customerKey: string, signal: LifecycleSignal, identity: Partial<CustomerIdentity>): Promise<SignalOutcome> {
    const change = statusChangeOf(signal);
    let applied = false;
    if (change) {
      applied = await this.ports.applyStatus(customerKey, change, identity);
      // Not newer, but the stored change itself, delivered again: the first delivery may have failed
      // after storing it (EventBridge and SQS retry), so its provisioning event and flush are done
      // again (at least once) rather than lost.
      const redelivered =
        !applied && ((await this.ports.customer(customerKey)) as { statusVersion?: unknown } | undefined)?.statusVersion === change.version;
      if (applied || redelivered) {
        const customer = await this.ports.customer(customerKey);
        await this.ports.publish(LIFECYCLE_EVENTS[change.status as keyof typeof LIFECYCLE_EVENTS], {
          customerKey,
          ...detailOf(customer ?? identity),
          status: change.status,
          eventTime: change.eventTime,
          finalUsageUntil: change.finalUsageUntil,
          freeTrial: change.freeTrial,
        });
        if (endsAccess(change)) {
          for (const flush of finalUsageFlushes(change, this.settings.finalUsageDelaySeconds ?? DEFAULT_FINAL_USAGE_DELAY_SECONDS)) {
            await this.ports.flushUsage({ customerKey, ...flush, statusVersion: change.version });
          }
        }
      }
    }
    let entitlements: number | undefined;
    if (refreshesEntitlements(signal)) {
      const customer = { ...identity, ...(await this.ports.customer(customerKey)) };
      if (customer.productCode) {
        const list = await this.ports.getEntitlements({ ...customer, productCode: customer.productCode });
        // The event time alone: EventBridge times have whole seconds, so two licence updates of the
        // same second (subscription, then a change) cannot be told apart by it, and a random event id
        // must not let the earlier read win. GetEntitlements answers what is current, so of equal
        // versions the later read is the right one.
        const version = signal.eventTime;
        if (await this.ports.saveEntitlements(customerKey, list, version)) {
          entitlements = list.length;
          applied = true;
          await this.ports.publish(LIFECYCLE_EVENTS.entitlements, { customerKey, ...detailOf(customer), entitlements: list });
        }
      }
    }
    if (!applied) return { result: 'stale', customerKey };
    return { result: 'applied', customerKey, status: change?.status, entitlements };
  }
}

function detailOf(customer: Partial<CustomerIdentity>): Record<string, unknown> {
  return {
    productCode: customer.productCode,
    customerAWSAccountId: customer.customerAWSAccountId,
    licenseArn: customer.licenseArn,
    customerIdentifier: customer.customerIdentifier,
  };
}
