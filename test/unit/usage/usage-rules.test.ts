import { ProductConfig } from '../../../lambda/core/product-config';
import { UsageEvent } from '../../../lambda/core/usage/usage-event';
import { seededRandom } from '../lifecycle/event-history';
import { checkUsageEvent, DEFAULT_USAGE_WINDOW, isBillableHour, MAX_RECENT_TAG_SET_KEYS, tagSetKey, tagsOfKey } from '../../../lambda/core/usage/usage-rules';

const PRODUCT: ProductConfig = { productCode: 'prod-license', identityMode: 'license', dimensions: ['requests', 'storage'] };
const NOW = new Date('2026-11-02T10:20:00Z');
const LICENSE_ARN = 'arn:aws:license-manager::111122223333:license:l-0123456789abcdef0123';

const event = (change: Partial<UsageEvent> = {}): UsageEvent => ({
  licenseArn: LICENSE_ARN,
  dimension: 'requests',
  quantity: 10,
  timestamp: '2026-11-02T10:15:00Z',
  ...change,
});

const at = (iso: string) => new Date(iso);

describe('checkUsageEvent', () => {
  it('accepts a current event for a dimension of the product', () => {
    expect(checkUsageEvent(event(), PRODUCT, NOW)).toBeNull();
    expect(checkUsageEvent(event({ dimension: 'storage' }), PRODUCT, NOW)).toBeNull();
  });

  it.each(['unknown', 'Requests', 'requests ', ''])('refuses the dimension %j', (dimension) => {
    expect(checkUsageEvent(event({ dimension }), PRODUCT, NOW)?.reason).toBe('unknown-dimension');
  });

  describe('allocations', () => {
    it.each([
      ['add up', 10, [6, 4], null],
      ['add up to zero', 0, [0], null],
      ['fall short', 10, [6, 3], 'allocation-sum-mismatch'],
      ['exceed', 10, [6, 5], 'allocation-sum-mismatch'],
      ['are all zero for a positive quantity', 10, [0, 0], 'allocation-sum-mismatch'],
    ])('%s', (_what, quantity, parts, reason) => {
      const allocations = parts.map((q, i) => ({ quantity: q, tags: { team: `t${i}` } }));
      expect(checkUsageEvent(event({ quantity, allocations }), PRODUCT, NOW)?.reason ?? null).toBe(reason);
    });

    it('refuses two allocations with the same tag set, whatever the key order', () => {
      const allocations = [
        { quantity: 4, tags: { team: 'a', env: 'prod' } },
        { quantity: 6, tags: { env: 'prod', team: 'a' } },
      ];
      expect(checkUsageEvent(event({ allocations }), PRODUCT, NOW)?.reason).toBe('duplicate-tag-set');
    });

    it('accepts tag sets that differ by a value, or where one is a subset of the other', () => {
      const allocations: { quantity: number; tags: Record<string, string> }[] = [
        { quantity: 4, tags: { team: 'a', env: 'prod' } },
        { quantity: 3, tags: { team: 'a', env: 'test' } },
        { quantity: 3, tags: { team: 'a' } },
      ];
      expect(checkUsageEvent(event({ allocations }), PRODUCT, NOW)).toBeNull();
    });
  });

  describe('clock skew', () => {
    const skewMs = DEFAULT_USAGE_WINDOW.futureSkewSeconds * 1000;
    it('accepts an event up to the skew ahead of our clock, and refuses one a millisecond later', () => {
      expect(DEFAULT_USAGE_WINDOW.futureSkewSeconds).toBe(300);
      expect(checkUsageEvent(event({ timestamp: NOW.getTime() + skewMs }), PRODUCT, NOW)).toBeNull();
      expect(checkUsageEvent(event({ timestamp: NOW.getTime() + skewMs + 1 }), PRODUCT, NOW)?.reason).toBe('timestamp-in-future');
    });

    it('honours a configured skew', () => {
      const window = { futureSkewSeconds: 0, sendingMarginSeconds: 3600 };
      expect(checkUsageEvent(event({ timestamp: NOW.getTime() }), PRODUCT, NOW, window)).toBeNull();
      expect(checkUsageEvent(event({ timestamp: NOW.getTime() + 1 }), PRODUCT, NOW, window)?.reason).toBe('timestamp-in-future');
    });

    it('compares instants, not wall-clock text: +05:30 is not the future', () => {
      expect(checkUsageEvent(event({ timestamp: '2026-11-02T15:49:00+05:30' }), PRODUCT, NOW)).toBeNull();
      expect(checkUsageEvent(event({ timestamp: '2026-11-02T10:19:00-05:00' }), PRODUCT, NOW)?.reason).toBe('timestamp-in-future');
    });
  });

  describe('billing window (24 h, minus the sending margin)', () => {
    // NOW 10:20 with a 1 h margin: sent by 11:20, so the hour must start at or after 11:20 the day before.
    it('accepts an event whose hour is still in the window when sent', () => {
      expect(checkUsageEvent(event({ timestamp: '2026-11-01T12:00:00Z' }), PRODUCT, NOW)).toBeNull();
    });
    it('refuses an event whose hour will be more than 24 h old when sent (judged by its hour, not its minute)', () => {
      expect(checkUsageEvent(event({ timestamp: '2026-11-01T11:59:59.999Z' }), PRODUCT, NOW)?.reason).toBe('timestamp-out-of-window');
    });
    it('uses the configured margin', () => {
      const noMargin = { futureSkewSeconds: 300, sendingMarginSeconds: 0 };
      // Sent by 10:20: the 11:00 hour of the day before is 23 h 20 min old, the 10:00 hour 24 h 20 min.
      expect(checkUsageEvent(event({ timestamp: '2026-11-01T11:00:00Z' }), PRODUCT, NOW, noMargin)).toBeNull();
      expect(checkUsageEvent(event({ timestamp: '2026-11-01T10:59:00Z' }), PRODUCT, NOW, noMargin)?.reason).toBe('timestamp-out-of-window');
    });
    it('refuses an ancient epoch timestamp', () => {
      expect(checkUsageEvent(event({ timestamp: 0 }), PRODUCT, NOW)?.reason).toBe('timestamp-out-of-window');
    });
  });

  describe('previous month, until 06:00 UTC on the 1st', () => {
    const lateNovember = event({ timestamp: '2026-11-30T23:30:00Z' });
    it('accepts November usage at 04:30 on 1 December: sent by 05:30', () => {
      expect(checkUsageEvent(lateNovember, PRODUCT, at('2026-12-01T04:30:00Z'))).toBeNull();
    });
    it('refuses November usage at 05:30 on 1 December: it would be sent after 06:00', () => {
      expect(checkUsageEvent(lateNovember, PRODUCT, at('2026-12-01T05:30:00Z'))?.reason).toBe('timestamp-out-of-window');
    });
    it('still accepts December usage at 05:30 on 1 December', () => {
      expect(checkUsageEvent(event({ timestamp: '2026-12-01T00:10:00Z' }), PRODUCT, at('2026-12-01T05:30:00Z'))).toBeNull();
    });
  });
});

describe('isBillableHour', () => {
  const HOUR = at('2026-11-01T10:00:00Z');
  const DAY_MS = 24 * 3600 * 1000;

  it('accepts an hour exactly 24 h (minus the margin) old, and not a millisecond more', () => {
    expect(isBillableHour(HOUR, new Date(HOUR.getTime() + DAY_MS))).toBe(true);
    expect(isBillableHour(HOUR, new Date(HOUR.getTime() + DAY_MS + 1))).toBe(false);
    expect(isBillableHour(HOUR, new Date(HOUR.getTime() + DAY_MS - 3_600_000), 3600)).toBe(true);
    expect(isBillableHour(HOUR, new Date(HOUR.getTime() + DAY_MS - 3_600_000 + 1), 3600)).toBe(false);
  });

  it('accepts the current hour', () => {
    expect(isBillableHour(at('2026-11-02T10:00:00Z'), NOW, 3600)).toBe(true);
  });

  it.each([
    // [hour, now, margin seconds, billable]
    ['2026-11-30T23:00:00Z', '2026-12-01T04:30:00Z', 3600, true],
    ['2026-11-30T23:00:00Z', '2026-12-01T05:30:00Z', 3600, false],
    ['2026-11-30T23:00:00Z', '2026-12-01T04:59:59.999Z', 3600, true],
    ['2026-11-30T23:00:00Z', '2026-12-01T05:00:00Z', 3600, false],
    ['2026-11-30T23:00:00Z', '2026-12-01T05:59:59.999Z', 0, true],
    ['2026-11-30T23:00:00Z', '2026-12-01T06:00:00Z', 0, false],
    // Across a year.
    ['2026-12-31T23:00:00Z', '2027-01-01T04:30:00Z', 3600, true],
    ['2026-12-31T23:00:00Z', '2027-01-01T05:30:00Z', 3600, false],
    // Still in November but sent in December after 06:00: refused.
    ['2026-11-30T23:00:00Z', '2026-11-30T23:30:00Z', 7 * 3600, false],
    // Same month: only the 24 h rule.
    ['2026-12-01T00:00:00Z', '2026-12-01T05:30:00Z', 3600, true],
    ['2026-12-01T00:00:00Z', '2026-12-01T23:30:00Z', 0, true],
  ])('hour %s at %s with margin %ds: %p', (hour, now, margin, billable) => {
    expect(isBillableHour(at(hour), at(now), margin)).toBe(billable);
  });
});

describe('tagSetKey', () => {
  it('does not depend on the order of the tags', () => {
    expect(tagSetKey({ team: 'a', env: 'prod', app: 'x' })).toBe(tagSetKey({ app: 'x', env: 'prod', team: 'a' }));
  });

  it('tells different tag sets apart', () => {
    const keys = [
      tagSetKey({ team: 'a' }),
      tagSetKey({ team: 'b' }),
      tagSetKey({ team: 'a', env: 'prod' }),
      tagSetKey({ Team: 'a' }),
      // Would collide if keys and values were just joined with ':'.
      tagSetKey({ 'a:b': 'c' }),
      tagSetKey({ a: 'b:c' }),
    ];
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('round-trips through tagsOfKey', () => {
    const tags = { team: 'a b', 'cost/center': 'x=1@y' };
    expect(tagsOfKey(tagSetKey(tags))).toEqual(tags);
  });

  it('is the JSON of the sorted pairs for 1 to 5 tags made of every character the schema allows', () => {
    const allowed = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+ -=._:/@';
    const random = seededRandom(11);
    const word = () => Array.from({ length: 1 + Math.floor(random() * 6) }, () => allowed[Math.floor(random() * allowed.length)]).join('');
    for (let i = 0; i < 2_000; i++) {
      const tags: Record<string, string> = {};
      const count = 1 + (i % 5);
      while (Object.keys(tags).length < count) tags[word()] = word();
      const sorted = Object.entries(tags).sort(([a], [b]) => (a < b ? -1 : 1));
      expect(tagSetKey(tags)).toBe(JSON.stringify(sorted));
      expect(tagSetKey(Object.fromEntries([...sorted].reverse()))).toBe(JSON.stringify(sorted));
    }
  });

  it('names every tag set right past the number it remembers (one and two tags, seen again after forgetting)', () => {
    const sets: Record<string, string>[] = [];
    for (let i = 0; i < MAX_RECENT_TAG_SET_KEYS + 500; i++) sets.push(i % 2 === 0 ? { team: `t-${i}` } : { team: `t-${i % 1000}`, env: `e-${i}` });
    for (const round of [1, 2]) {
      for (const tags of sets) {
        const expected = JSON.stringify(Object.entries(tags).sort(([a], [b]) => (a < b ? -1 : 1)));
        if (tagSetKey(tags) !== expected) throw new Error(`round ${round}: ${JSON.stringify(tags)} named ${tagSetKey(tags)}`);
      }
    }
    expect(tagSetKey({ env: 'e-1', team: 't-1' })).toBe('[["env","e-1"],["team","t-1"]]');
    expect(tagSetKey({ team: 't-0' })).toBe('[["team","t-0"]]');
  });

  it('is a total order usable as a map key (uses code-unit order, not locale)', () => {
    expect(tagSetKey({ b: '1', B: '2', a: '3' })).toBe(JSON.stringify([['B', '2'], ['a', '3'], ['b', '1']]));
  });
});
