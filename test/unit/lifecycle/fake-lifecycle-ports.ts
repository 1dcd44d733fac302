/**
 * An in-memory stand-in for the lifecycle service's ports with the semantics of the real adapters
 * (lambda/adapters/lifecycle-store.ts on the Customers table, CustomerRepository for registration):
 * status and the free-trial flag are each written only when their version is newer than the stored
 * one, entitlements unless the stored ones are newer (equal: the later read wins), identity
 * fields are set once, agreement correlation and kept agreement events are items beside the
 * customers. test/integration/lifecycle.test.ts checks that the real store ends in the same items.
 */
import { CustomerIdentity } from '../../../lambda/core/customer';
import { Entitlement, LifecyclePorts } from '../../../lambda/core/lifecycle/lifecycle-service';
import { AgreementSignal } from '../../../lambda/core/lifecycle/lifecycle-signal';
import { FinalUsageFlush, StatusChange } from '../../../lambda/core/lifecycle/subscription-state';

export type Item = Record<string, unknown>;

export interface Published {
  readonly detailType: string;
  readonly detail: Record<string, unknown>;
}

export class FakeLifecyclePorts implements LifecyclePorts {
  /** The Customers table: customer items, `agreement#<id>` and `kept-agreement#<id>` items, by key. */
  readonly items = new Map<string, Item>();
  readonly published: Published[] = [];
  readonly flushed: string[] = [];
  /** Each flush's due time, in the order of `flushed`. */
  readonly flushesDue: string[] = [];
  /** The version of the ending each flush came from. */
  readonly flushVersions: (string | undefined)[] = [];
  readonly entitlementCalls: (Partial<CustomerIdentity> & { productCode: string })[] = [];
  /** What GetEntitlements answers. */
  entitlements: (customer: Partial<CustomerIdentity> & { productCode: string }) => Entitlement[] | Promise<Entitlement[]> = () => [];

  private item(key: string): Item {
    let item = this.items.get(key);
    if (!item) {
      item = { customerKey: key };
      this.items.set(key, item);
    }
    return item;
  }

  private setOnce(item: Item, identity: Partial<CustomerIdentity>): void {
    for (const [field, value] of Object.entries(identity)) {
      if (value === undefined || field === 'customerKey') continue;
      if (item[field] === undefined) item[field] = value;
    }
  }

  async applyStatus(customerKey: string, change: StatusChange, identity: Partial<CustomerIdentity>): Promise<boolean> {
    if (change.freeTrial !== undefined) {
      const flagVersion = this.items.get(customerKey)?.freeTrialVersion as string | undefined;
      if (flagVersion === undefined || flagVersion < change.version) {
        Object.assign(this.item(customerKey), { freeTrial: change.freeTrial, freeTrialVersion: change.version });
      }
    }
    const stored = this.items.get(customerKey)?.statusVersion as string | undefined;
    if (stored !== undefined && !(stored < change.version)) return false;
    const item = this.item(customerKey);
    item.status = change.status;
    item.statusVersion = change.version;
    item.statusEventTime = change.eventTime;
    if (change.finalUsageUntil) item.finalUsageUntil = change.finalUsageUntil;
    else delete item.finalUsageUntil;
    this.setOnce(item, identity);
    return true;
  }

  async rememberIdentity(customerKey: string, identity: Partial<CustomerIdentity>, activeSince?: string): Promise<void> {
    // The earliest, as the store's conditional update keeps it.
    if (activeSince !== undefined) {
      const item = this.item(customerKey);
      if (item.activeSince === undefined || (item.activeSince as string) > activeSince) item.activeSince = activeSince;
    }
    if (!Object.entries(identity).some(([field, value]) => value !== undefined && field !== 'customerKey')) return;
    this.setOnce(this.item(customerKey), identity);
  }

  async saveEntitlements(customerKey: string, entitlements: readonly Entitlement[], version: string): Promise<boolean> {
    const stored = this.items.get(customerKey)?.entitlementsVersion as string | undefined;
    if (stored !== undefined && stored > version) return false;
    const item = this.item(customerKey);
    item.entitlements = structuredClone(entitlements);
    item.entitlementsVersion = version;
    return true;
  }

  async customer(customerKey: string): Promise<(Partial<CustomerIdentity> & Item) | undefined> {
    const item = this.items.get(customerKey);
    return item ? structuredClone(item) : undefined;
  }

  async customerKeyForAgreement(agreementId: string): Promise<string | undefined> {
    return this.items.get(`agreement#${agreementId}`)?.belongsTo as string | undefined;
  }

  async customerKeysOfAccount(accountId: string): Promise<string[]> {
    return [...this.items.values()].filter((i) => i.customerAWSAccountId === accountId).map((i) => String(i.customerKey));
  }

  async rememberAgreement(agreementId: string, customerKey: string): Promise<void> {
    this.item(`agreement#${agreementId}`).belongsTo = customerKey;
    this.item(customerKey).agreementId = agreementId;
  }

  async keepForLater(signal: AgreementSignal): Promise<void> {
    const item = this.item(`kept-agreement#${signal.agreementId}`);
    item.signals = [...((item.signals as AgreementSignal[] | undefined) ?? []), structuredClone(signal)];
  }

  async takeKeptSignals(agreementId: string): Promise<AgreementSignal[]> {
    const key = `kept-agreement#${agreementId}`;
    const signals = (this.items.get(key)?.signals as AgreementSignal[] | undefined) ?? [];
    this.items.delete(key);
    return signals;
  }

  async getEntitlements(customer: Partial<CustomerIdentity> & { productCode: string }): Promise<Entitlement[]> {
    this.entitlementCalls.push(structuredClone(customer));
    return this.entitlements(customer);
  }

  async publish(detailType: string, detail: Record<string, unknown>): Promise<void> {
    this.published.push({ detailType, detail: structuredClone(detail) });
  }

  async flushUsage(flush: FinalUsageFlush): Promise<void> {
    this.flushed.push(flush.customerKey);
    this.flushesDue.push(flush.dueAt);
    this.flushVersions.push(flush.statusVersion);
  }

  /** What registration writes (CustomerRepository.saveRegistration): identity and first registration once. */
  register(identity: CustomerIdentity, options: { freeTrial: boolean; at: string }): void {
    const item = this.item(identity.customerKey);
    this.setOnce(item, {
      productCode: identity.productCode,
      identityMode: identity.identityMode,
      customerAWSAccountId: identity.customerAWSAccountId,
      licenseArn: identity.licenseArn,
      customerIdentifier: identity.customerIdentifier,
    });
    if (item.firstRegisteredAt === undefined) item.firstRegisteredAt = new Date(options.at).toISOString();
    if (item.freeTrial === undefined) item.freeTrial = options.freeTrial;
    item.lastRegisteredAt = new Date(options.at).toISOString();
    item.registrationCount = ((item.registrationCount as number | undefined) ?? 0) + 1;
  }

  /** Every item, keys sorted, for comparing two runs. */
  snapshot(): Record<string, Item> {
    return Object.fromEntries([...this.items.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, structuredClone(v)]));
  }
}
