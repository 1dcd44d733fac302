import { StoredSubscription } from '../../../lambda/core/lifecycle/subscription-state';
/**
 * In-memory stand-ins for the ingest ports. The journal keeps the contract of the DynamoDB journal:
 * an entry is stored under its hour and entry id; if that key exists the outcome is `duplicate`;
 * otherwise, if its hour is sealed, `sealed` and nothing is written; otherwise it is written. A late
 * entry also leaves a placeholder under its own hour, so a redelivered message is a duplicate there.
 */
import { CustomerIdentity, legacyCustomerKey, licenseCustomerKey } from '../../../lambda/core/customer';
import { ProductConfig } from '../../../lambda/core/product-config';
import { CustomerDirectory, KnownCustomer } from '../../../lambda/core/usage/ingest';
import { AppendOutcome, entryIdOf, JournalEntry, UsageJournal } from '../../../lambda/core/usage/usage-journal';
import { Rejection } from '../../../lambda/core/usage/usage-event';

export const NOW = new Date('2026-11-02T10:20:00Z');
export const ACCOUNT = '111122223333';
export const LICENSE_ID = 'l-0123456789abcdef0123';
export const LICENSE_ARN = `arn:aws:license-manager::${ACCOUNT}:license:${LICENSE_ID}`;
export const OTHER_LICENSE_ARN = 'arn:aws:license-manager::444455556666:license:l-fedcba9876543210fedc';

export const LICENSE_PRODUCT: ProductConfig = { productCode: 'prod-license', identityMode: 'license', dimensions: ['requests', 'storage'] };
export const LEGACY_PRODUCT: ProductConfig = { productCode: 'prod-legacy', identityMode: 'legacy', dimensions: ['requests'] };
export const PRODUCTS = [LICENSE_PRODUCT, LEGACY_PRODUCT];

export const LICENSE_CUSTOMER: CustomerIdentity = {
  customerKey: licenseCustomerKey(LICENSE_ARN),
  productCode: 'prod-license',
  identityMode: 'license',
  customerAWSAccountId: ACCOUNT,
  licenseArn: LICENSE_ARN,
};
export const OTHER_LICENSE_CUSTOMER: CustomerIdentity = {
  customerKey: licenseCustomerKey(OTHER_LICENSE_ARN),
  productCode: 'prod-license',
  identityMode: 'license',
  customerAWSAccountId: '444455556666',
  licenseArn: OTHER_LICENSE_ARN,
};
export const LEGACY_CUSTOMER: CustomerIdentity = {
  customerKey: legacyCustomerKey('prod-legacy', 'cust-legacy-1'),
  productCode: 'prod-legacy',
  identityMode: 'legacy',
  customerAWSAccountId: '777788889999',
  customerIdentifier: 'cust-legacy-1',
};
/** Registered, but for a product this stack does not serve. */
export const FOREIGN_CUSTOMER: CustomerIdentity = {
  customerKey: licenseCustomerKey('arn:aws:license-manager::111122223333:license:l-0000000000foreign0000'),
  productCode: 'prod-elsewhere',
  identityMode: 'license',
  customerAWSAccountId: ACCOUNT,
  licenseArn: 'arn:aws:license-manager::111122223333:license:l-0000000000foreign0000',
};

export class FakeUsageJournal implements UsageJournal {
  /** Stored items by `hour|entryId`: an entry, or the placeholder a late entry leaves under its own hour. */
  readonly items = new Map<string, JournalEntry | { readonly countedIn: string }>();
  /** Sealed hours (the real journal seals every shard of an hour at once). */
  readonly sealed = new Set<string>();
  /** What each call was given. */
  readonly appendCalls: JournalEntry[][] = [];
  failWith?: Error;

  async append(entries: readonly JournalEntry[]): Promise<AppendOutcome[]> {
    this.appendCalls.push([...entries]);
    if (this.failWith) throw this.failWith;
    return entries.map((entry) => this.appendOne(entry));
  }

  private appendOne(entry: JournalEntry): AppendOutcome {
    const key = `${entry.hourStart}|${entryIdOf(entry)}`;
    if (this.items.has(key)) return 'duplicate';
    if (this.sealed.has(entry.hourStart)) return 'sealed';
    this.items.set(key, entry);
    // Where the message's entry for its own hour would be: a redelivery finds it there.
    if (entry.rolledFrom !== undefined) {
      this.items.set(`${entry.rolledFrom}|${entryIdOf({ messageId: entry.messageId, part: entry.part, supplement: entry.supplement })}`, { countedIn: entry.hourStart });
    }
    return 'appended';
  }

  readonly storedPositionsCalls: { messageId: string; hours: readonly string[] }[] = [];

  async storedPositions(messageId: string, hours: readonly string[]): Promise<ReadonlySet<number>> {
    this.storedPositionsCalls.push({ messageId, hours });
    const positions = new Set<number>();
    const toRead = [...hours];
    const read = new Set<string>();
    for (let hour = toRead.shift(); hour !== undefined; hour = toRead.shift()) {
      if (read.has(hour)) continue;
      read.add(hour);
      for (const [key, item] of this.items) {
        const [itemHour, entryId] = [key.slice(0, key.indexOf('|')), key.slice(key.indexOf('|') + 1)];
        if (itemHour !== hour || (entryId !== messageId && !entryId.startsWith(`${messageId}#`))) continue;
        if ('countedIn' in item) toRead.push(item.countedIn);
        else for (const event of item.events) positions.add(event.p);
      }
    }
    return positions;
  }

  /** Refused positions recorded per message, in the order recorded. */
  readonly refused = new Map<string, Map<number, Rejection>>();

  async recordRefused(messageId: string, refused: ReadonlyMap<number, Rejection>): Promise<void> {
    if (this.failWith) throw this.failWith;
    const kept = this.refused.get(messageId) ?? new Map<number, Rejection>();
    for (const [position, rejection] of refused) if (!kept.has(position)) kept.set(position, rejection);
    this.refused.set(messageId, kept);
  }

  async refusedPositions(messageId: string): Promise<ReadonlyMap<number, Rejection>> {
    return new Map(this.refused.get(messageId) ?? []);
  }

  /** The stored entries (placeholders left out), in the order written. */
  entries(): JournalEntry[] {
    return [...this.items.values()].filter((item): item is JournalEntry => 'events' in item);
  }

  /** Total quantity stored for a customer (and a dimension and hour, when given). */
  quantityOf(customerKey: string, dimension?: string, hourStart?: string): number {
    let total = 0;
    for (const entry of this.entries()) {
      if (hourStart !== undefined && entry.hourStart !== hourStart) continue;
      for (const e of entry.events) {
        if (entry.customers[e.c].customerKey === customerKey && (dimension === undefined || e.d === dimension)) total += e.q;
      }
    }
    return total;
  }

  totalQuantity(): number {
    return this.entries().reduce((total, entry) => total + entry.events.reduce((sum, e) => sum + e.q, 0), 0);
  }
}

export class FakeCustomerDirectory implements CustomerDirectory {
  /** The keys each `find` call asked for. */
  readonly calls: string[][] = [];
  private readonly customers = new Map<string, KnownCustomer>();

  constructor(customers: readonly CustomerIdentity[] = [LICENSE_CUSTOMER, OTHER_LICENSE_CUSTOMER, LEGACY_CUSTOMER, FOREIGN_CUSTOMER]) {
    for (const c of customers) this.customers.set(c.customerKey, c);
  }

  async find(customerKeys: readonly string[]): Promise<ReadonlyMap<string, KnownCustomer>> {
    this.calls.push([...customerKeys]);
    const found = new Map<string, KnownCustomer>();
    for (const key of customerKeys) {
      const customer = this.customers.get(key);
      if (customer) found.set(key, customer);
    }
    return found;
  }

  /** Every key asked for, over all calls. */
  get lookups(): string[] {
    return this.calls.flat();
  }

  /** Sets what lifecycle events have said about a customer. */
  setSubscription(customerKey: string, subscription: StoredSubscription): void {
    this.customers.set(customerKey, { ...this.customers.get(customerKey)!, subscription });
  }

  /** The customer is no longer found (a container whose cache and read missed a buyer). */
  forget(customerKey: string): void {
    this.customers.delete(customerKey);
  }
}
