import { eventTime, MAX_EVENTS_PER_MESSAGE, parseUsageMessage, Rejection, usageEventSchema, MAX_ALLOCATIONS_PER_EVENT } from '../../../lambda/core/usage/usage-event';

const LICENSE_ARN = 'arn:aws:license-manager::111122223333:license:l-0123456789abcdef0123';
const VALID = { licenseArn: LICENSE_ARN, dimension: 'requests', quantity: 3, timestamp: '2026-11-02T10:15:00Z' };

const accepts = (event: unknown): boolean => usageEventSchema.safeParse(event).success;

function parsedEvents(body: string) {
  const parsed = parseUsageMessage(body);
  if (!Array.isArray(parsed)) throw new Error(`expected events, got the rejection ${JSON.stringify(parsed)}`);
  return parsed;
}

function messageRejection(body: string): Rejection {
  const parsed = parseUsageMessage(body);
  if (Array.isArray(parsed)) throw new Error(`expected a rejected message, got ${parsed.length} events`);
  return parsed;
}

describe('parseUsageMessage', () => {
  it('reads a single event as one event at position 0', () => {
    const events = parsedEvents(JSON.stringify(VALID));
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ ok: true, position: 0, event: VALID });
  });

  it('reads an array, keeping each event at its position, valid or not', () => {
    const body = JSON.stringify([VALID, { ...VALID, quantity: -1 }, { ...VALID, dimension: 'storage' }]);
    const events = parsedEvents(body);
    expect(events.map((e) => [e.position, e.ok])).toEqual([
      [0, true],
      [1, false],
      [2, true],
    ]);
    const invalid = events[1];
    if (invalid.ok) throw new Error('position 1 should be invalid');
    expect(invalid.rejection.reason).toBe('invalid-event');
    expect(invalid.rejection.message).toMatch(/quantity/);
    expect(invalid.raw).toEqual({ ...VALID, quantity: -1 });
  });

  it('rejects an empty array as a whole', () => {
    expect(messageRejection('[]').reason).toBe('invalid-event');
  });

  it(`accepts ${MAX_EVENTS_PER_MESSAGE} events and refuses ${MAX_EVENTS_PER_MESSAGE + 1}`, () => {
    expect(MAX_EVENTS_PER_MESSAGE).toBe(100);
    const many = (n: number) => JSON.stringify(Array.from({ length: n }, (_, i) => ({ ...VALID, eventId: `e-${i}` })));
    const hundred = parsedEvents(many(100));
    expect(hundred).toHaveLength(100);
    expect(hundred.every((e) => e.ok)).toBe(true);
    expect(messageRejection(many(101)).reason).toBe('too-many-events');
  });

  it.each(['', '{', 'not json', '{"dimension": "requests",}', "{'dimension':'requests'}"])('refuses %j as invalid JSON', (body) => {
    expect(messageRejection(body).reason).toBe('invalid-json');
  });

  it.each(['null', '42', '"text"', 'true', '[[]]', '[null]'])('refuses the JSON %s as an invalid event, not a crash', (body) => {
    const events = parsedEvents(body);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ ok: false, rejection: { reason: 'invalid-event' } });
  });
});

describe('usage event schema', () => {
  it('accepts the minimal license-mode event', () => {
    expect(accepts(VALID)).toBe(true);
  });

  describe('quantity', () => {
    it.each([0, 1, 2_147_483_647])('accepts %d', (quantity) => {
      expect(accepts({ ...VALID, quantity })).toBe(true);
    });
    it.each([-1, 1.5, 2 ** 31, Number.MAX_SAFE_INTEGER, '1', null])('refuses %p', (quantity) => {
      expect(accepts({ ...VALID, quantity })).toBe(false);
    });
    it('is required', () => {
      const { quantity: _omitted, ...event } = VALID;
      expect(accepts(event)).toBe(false);
    });
  });

  describe('timestamp', () => {
    it.each([
      ['2026-11-02T10:15:00Z', '2026-11-02T10:15:00.000Z'],
      ['2026-11-02T10:15:00.123Z', '2026-11-02T10:15:00.123Z'],
      // An offset is honoured: 15:45 at +05:30 is 10:15 UTC.
      ['2026-11-02T15:45:00+05:30', '2026-11-02T10:15:00.000Z'],
      ['2026-11-02T05:15:00-05:00', '2026-11-02T10:15:00.000Z'],
      ['2028-02-29T00:00:00Z', '2028-02-29T00:00:00.000Z'],
      // Epoch milliseconds.
      [Date.UTC(2026, 10, 2, 10, 15), '2026-11-02T10:15:00.000Z'],
      [0, '1970-01-01T00:00:00.000Z'],
    ])('accepts %j as %s', (timestamp, iso) => {
      const parsed = usageEventSchema.safeParse({ ...VALID, timestamp });
      expect(parsed.success).toBe(true);
      expect(eventTime(parsed.data!).toISOString()).toBe(iso);
    });

    it.each([
      ['no time zone', '2026-11-02T10:15:00'],
      ['a date only', '2026-11-02'],
      ['no seconds', '2026-11-02T10:15Z'],
      ['an offset without colon', '2026-11-02T10:15:00+0530'],
      ['a day that does not exist', '2026-02-30T10:15:00Z'],
      ['Feb 29 of a common year', '2026-02-29T10:15:00Z'],
      ['hour 25', '2026-11-02T25:15:00Z'],
      ['words', 'yesterday'],
      ['an empty string', ''],
      ['epoch seconds as a string', '1793613600'],
      ['negative epoch ms', -1],
      ['fractional epoch ms', 1793613600000.5],
      // Beyond what a Date can hold: would become an Invalid Date further down.
      ['epoch ms beyond the Date range', 8_640_000_000_000_001],
      ['the largest safe integer', Number.MAX_SAFE_INTEGER],
      ['null', null],
    ])('refuses %s (%j)', (_what, timestamp) => {
      expect(accepts({ ...VALID, timestamp })).toBe(false);
    });

    it('accepts the last instant a Date can hold', () => {
      expect(accepts({ ...VALID, timestamp: 8_640_000_000_000_000 })).toBe(true);
    });
  });

  describe('customer identity', () => {
    it.each([
      ['licenseArn alone', { licenseArn: LICENSE_ARN }, true],
      ['licenseArn with the account id', { licenseArn: LICENSE_ARN, customerAWSAccountId: '111122223333' }, true],
      ['productCode + customerIdentifier', { productCode: 'prod-legacy', customerIdentifier: 'cust-1' }, true],
      ['productCode alone', { productCode: 'prod-legacy' }, false],
      ['customerIdentifier alone', { customerIdentifier: 'cust-1' }, false],
      ['the account id alone', { customerAWSAccountId: '111122223333' }, false],
      ['nothing', {}, false],
      ['an account id of 11 digits', { licenseArn: LICENSE_ARN, customerAWSAccountId: '11112222333' }, false],
      ['an account id with letters', { licenseArn: LICENSE_ARN, customerAWSAccountId: '11112222333a' }, false],
      ['an empty licenseArn', { licenseArn: '' }, false],
    ])('%s: %p', (_what, identity, valid) => {
      const { licenseArn: _omitted, ...rest } = VALID;
      expect(accepts({ ...rest, ...identity })).toBe(valid);
    });
  });

  describe('strict fields', () => {
    it.each([
      ['an unknown field', { ...VALID, customer: 'x' }],
      ['a field in the wrong case', { ...VALID, Dimension: 'requests' }],
      ['an unknown allocation field', { ...VALID, allocations: [{ quantity: 3, tags: { team: 'a' }, note: 'x' }] }],
    ])('refuses %s', (_what, event) => {
      expect(accepts(event)).toBe(false);
    });
  });

  describe('other fields', () => {
    it.each([
      ['an empty dimension', { dimension: '' }, false],
      ['a 255-character dimension', { dimension: 'd'.repeat(255) }, true],
      ['a 256-character dimension', { dimension: 'd'.repeat(256) }, false],
      ['an empty eventId', { eventId: '' }, false],
      ['a 256-character eventId', { eventId: 'e'.repeat(256) }, true],
      ['a 257-character eventId', { eventId: 'e'.repeat(257) }, false],
    ])('%s: %p', (_what, change, valid) => {
      expect(accepts({ ...VALID, ...change })).toBe(valid);
    });
  });

  describe('allocations', () => {
    const withTags = (tags: Record<string, string>) => ({ ...VALID, allocations: [{ quantity: 3, tags }] });
    const tags = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`key${i}`, `value${i}`]));

    it.each([
      [0, false],
      [1, true],
      [5, true],
      [6, false],
    ])('%d tags in one allocation: %p', (n, valid) => {
      expect(accepts(withTags(tags(n)))).toBe(valid);
    });

    it('accepts every allowed character in keys and values', () => {
      const allowed = 'AZaz09+ -=._:/@';
      expect(accepts(withTags({ [allowed]: allowed }))).toBe(true);
    });

    it.each([
      ['#', 'a key with #', { 'team#1': 'a' }],
      ['!', 'a value with !', { team: 'a!' }],
      ['é', 'a non-ASCII value', { team: 'équipe' }],
      ['*', 'a key with *', { '*': 'a' }],
      [',', 'a value with a comma', { team: 'a,b' }],
      ['\n', 'a value with a newline', { team: 'a\nb' }],
      ['', 'an empty key', { '': 'a' }],
      ['', 'an empty value', { team: '' }],
    ])('refuses "%s": %s', (_char, _what, t) => {
      expect(accepts(withTags(t))).toBe(false);
    });

    it('keeps tag keys to 100 and values to 256 characters', () => {
      expect(accepts(withTags({ ['k'.repeat(100)]: 'v'.repeat(256) }))).toBe(true);
      expect(accepts(withTags({ ['k'.repeat(101)]: 'v' }))).toBe(false);
      expect(accepts(withTags({ k: 'v'.repeat(257) }))).toBe(false);
    });

    it('refuses an empty allocations array, and allocation quantities that are not 0..2^31-1 integers', () => {
      expect(accepts({ ...VALID, allocations: [] })).toBe(false);
      expect(accepts({ ...VALID, allocations: [{ quantity: -1, tags: { team: 'a' } }] })).toBe(false);
      expect(accepts({ ...VALID, allocations: [{ quantity: 0.5, tags: { team: 'a' } }] })).toBe(false);
      expect(accepts({ ...VALID, allocations: [{ quantity: 2 ** 31, tags: { team: 'a' } }] })).toBe(false);
      expect(accepts({ ...VALID, allocations: [{ tags: { team: 'a' } }] })).toBe(false);
      expect(accepts({ ...VALID, allocations: [{ quantity: 3 }] })).toBe(false);
    });

    it(`accepts ${MAX_ALLOCATIONS_PER_EVENT} allocations per event and refuses one more`, () => {
      const allocations = (n: number) => Array.from({ length: n }, (_, i) => ({ quantity: 0, tags: { n: String(i) } }));
      expect(accepts({ ...VALID, quantity: 0, allocations: allocations(MAX_ALLOCATIONS_PER_EVENT) })).toBe(true);
      expect(accepts({ ...VALID, quantity: 0, allocations: allocations(MAX_ALLOCATIONS_PER_EVENT + 1) })).toBe(false);
    });
  });
});
