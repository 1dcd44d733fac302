import { JournalCustomer, JournalEntry, JournalEvent } from '../core/usage/usage-journal';

/**
 * How a journal entry's customers and events are stored: one JSON string of arrays, not nested
 * maps. Entries are paid for by the kilobyte, and attribute names repeated for every event were
 * about a third of an entry.
 *
 * `{"v":1,"c":[customer...],"e":[event...]}`, a customer `[customerKey, productCode, mode,
 * customerAWSAccountId, licenseArn?, customerIdentifier?]` (mode 0: license, 1: legacy), an event
 * `[customer index, dimension, quantity, position, eventId?, allocations?]`; absent trailing fields
 * are left out, an absent field before a present one is null.
 */

type StoredCustomer = [string, string, 0 | 1, string, (string | null)?, (string | null)?];
type StoredEvent = [number, string, number, number, (string | null)?, (Record<string, number> | null)?];

const FORMAT = 1;

export function encodeUsage(entry: Pick<JournalEntry, 'customers' | 'events'>): string {
  const c = entry.customers.map((customer) =>
    trimmed<StoredCustomer>([
      customer.customerKey,
      customer.productCode,
      customer.identityMode === 'legacy' ? 1 : 0,
      customer.customerAWSAccountId,
      customer.licenseArn ?? null,
      customer.customerIdentifier ?? null,
    ]),
  );
  const e = entry.events.map((event) => trimmed<StoredEvent>([event.c, event.d, event.q, event.p, event.id ?? null, event.a ?? null]));
  return JSON.stringify({ v: FORMAT, c, e });
}

export function decodeUsage(text: string): Pick<JournalEntry, 'customers' | 'events'> {
  const stored = JSON.parse(text) as { v: number; c: StoredCustomer[]; e: StoredEvent[] };
  if (stored.v !== FORMAT) throw new Error(`journal entry format ${stored.v} is not known to this version`);
  const customers = stored.c.map(([customerKey, productCode, mode, customerAWSAccountId, licenseArn, customerIdentifier]): JournalCustomer => ({
    customerKey,
    productCode,
    identityMode: mode === 1 ? 'legacy' : 'license',
    customerAWSAccountId,
    ...(licenseArn == null ? {} : { licenseArn }),
    ...(customerIdentifier == null ? {} : { customerIdentifier }),
  }));
  const events = stored.e.map(([c, d, q, p, id, a]): JournalEvent => ({ c, d, q, p, id: id ?? undefined, a: a ?? undefined }));
  return { customers, events };
}

/** Without its trailing nulls. */
function trimmed<T extends unknown[]>(fields: T): T {
  let end = fields.length;
  while (end > 0 && fields[end - 1] === null) end--;
  return fields.slice(0, end) as T;
}
