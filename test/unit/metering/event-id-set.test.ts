import { EventIdSet, eventIdHash } from '../../../lambda/core/metering/event-id-set';
import { seededRandom } from '../lifecycle/event-history';

describe('EventIdSet', () => {
  it('adds an id once: add is false for a repeat, has tells which ids are in', () => {
    const set = new EventIdSet();
    expect(set.has('evt-1')).toBe(false);
    expect(set.size).toBe(0);
    expect(set.add('evt-1')).toBe(true);
    expect(set.add('evt-2')).toBe(true);
    expect(set.add('evt-1')).toBe(false);
    expect(set.has('evt-2')).toBe(true);
    expect(set.has('evt-3')).toBe(false);
    expect(set.size).toBe(2);
  });

  it('agrees with a Set on 50,000 random ids with repeats, through many growths', () => {
    const random = seededRandom(7);
    // 30,000 ids of 1 to 40 UTF-16 units of any value, drawn 50,000 times: many repeat.
    const pool = Array.from({ length: 30_000 }, () =>
      String.fromCharCode(...Array.from({ length: 1 + Math.floor(random() * 40) }, () => Math.floor(random() * 0x10000))),
    );
    const set = new EventIdSet(1);
    const reference = new Set<string>();
    const added: boolean[] = [];
    const expected: boolean[] = [];
    for (let i = 0; i < 50_000; i++) {
      const id = pool[Math.floor(random() * pool.length)];
      expected.push(!reference.has(id));
      reference.add(id);
      added.push(set.add(id));
    }
    expect(added).toEqual(expected);
    expect(expected.filter((isNew) => !isNew).length).toBeGreaterThan(10_000);
    expect(set.size).toBe(reference.size);
    expect(pool.every((id) => set.has(id) === reference.has(id))).toBe(true);
  });

  it('keeps two different ids with the same hash apart', () => {
    // Birthday search for two ids with equal 32-bit hashes (about 80,000 tries).
    const seen = new Map<number, string>();
    let pair: [string, string] | undefined;
    for (let i = 0; !pair; i++) {
      const id = `event-${i}`;
      const other = seen.get(eventIdHash(id));
      if (other !== undefined) pair = [other, id];
      seen.set(eventIdHash(id), id);
    }
    const [a, b] = pair;
    expect(a).not.toBe(b);
    const set = new EventIdSet();
    expect(set.add(a)).toBe(true);
    expect(set.has(b)).toBe(false);
    expect(set.add(b)).toBe(true);
    expect(set.add(a)).toBe(false);
    expect(set.add(b)).toBe(false);
  });

  it('spreads ids that differ only in their last character over the table', () => {
    const slots = new Set(Array.from({ length: 64 }, (_, i) => eventIdHash(`evt-00${String.fromCharCode(48 + i)}`) & 127));
    expect(slots.size).toBeGreaterThan(32);
  });
});
