import { decodeUsage, encodeUsage } from '../../../lambda/adapters/journal-usage-codec';
import { JournalCustomer, JournalEntry, JournalEvent } from '../../../lambda/core/usage/usage-journal';

const license: JournalCustomer = {
  customerKey: 'license#l-0123',
  productCode: 'prod-license',
  identityMode: 'license',
  customerAWSAccountId: '111122223333',
  licenseArn: 'arn:aws:license-manager::111122223333:license:l-0123',
};
const legacy: JournalCustomer = { customerKey: 'legacy#prod-legacy#cust-1', productCode: 'prod-legacy', identityMode: 'legacy', customerAWSAccountId: '444455556666', customerIdentifier: 'cust-1' };

/** A seeded random, so a failure can be replayed. */
function prng(seed: number): () => number {
  return () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
}

describe('journal usage codec', () => {
  it('reads back exactly what it wrote, for both identity modes and every optional field', () => {
    const usage: Pick<JournalEntry, 'customers' | 'events'> = {
      customers: [license, legacy],
      events: [
        { c: 0, d: 'requests', q: 5, p: 0 },
        { c: 1, d: 'seats', q: 0, p: 1, id: 'evt-1' },
        { c: 0, d: 'requests', q: 7, p: 2, a: { '[["team","a"]]': 7 } },
        { c: 1, d: 'seats', q: 2147483647, p: 3, id: 'evt-"quoted"', a: { '[["env","prod"],["team","b"]]': 1 } },
      ],
    };
    expect(decodeUsage(encodeUsage(usage))).toEqual(usage);
  });

  it('round-trips 500 random entries', () => {
    const random = prng(11);
    for (let n = 0; n < 500; n++) {
      const customers = [license, legacy].slice(0, 1 + Math.floor(random() * 2));
      const events: JournalEvent[] = Array.from({ length: 1 + Math.floor(random() * 30) }, (_, p) => ({
        c: Math.floor(random() * customers.length),
        d: random() < 0.5 ? 'requests' : 'storage_gb',
        q: Math.floor(random() * 1000),
        p,
        ...(random() < 0.5 ? { id: `e-${Math.floor(random() * 1e9)}` } : {}),
        ...(random() < 0.3 ? { a: { [`[["team","t-${Math.floor(random() * 9)}"]]`]: 1 } } : {}),
      }));
      expect(decodeUsage(encodeUsage({ customers, events }))).toEqual({ customers, events });
    }
  });

  it('stores events as arrays without attribute names, and leaves out absent trailing fields', () => {
    const text = encodeUsage({ customers: [license], events: [{ c: 0, d: 'requests', q: 5, p: 0 }, { c: 0, d: 'requests', q: 1, p: 1, a: { x: 1 } }] });
    expect(JSON.parse(text)).toEqual({
      v: 1,
      c: [['license#l-0123', 'prod-license', 0, '111122223333', 'arn:aws:license-manager::111122223333:license:l-0123']],
      e: [
        [0, 'requests', 5, 0],
        [0, 'requests', 1, 1, null, { x: 1 }],
      ],
    });
  });

  it('refuses a format it does not know', () => {
    expect(() => decodeUsage(JSON.stringify({ v: 2, c: [], e: [] }))).toThrow(/format 2/);
  });
});
