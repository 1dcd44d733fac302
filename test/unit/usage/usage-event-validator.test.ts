import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import validateUsageEvent from '../../../lambda/core/usage/generated/usage-event-validator';
import { eventTimeMs, UsageEvent, usageEventSchema } from '../../../lambda/core/usage/usage-event';
import Ajv2020 from 'ajv/dist/2020';
import { anyOfAsIfElse, usageEventValidatorCode } from '../../../local/usage-event-validator-code';

/**
 * Ingestion validates events with the JSON Schema compiled by ajv (fast) and explains rejections
 * with zod: the two must accept exactly the same events, or a valid event could be dead-lettered
 * or an invalid one counted.
 */

const GENERATED = path.join(__dirname, '..', '..', '..', 'lambda', 'core', 'usage', 'generated', 'usage-event-validator.js');
const LICENSE_ARN = 'arn:aws:license-manager::111122223333:license:l-0123456789abcdef0123';

describe('the compiled usage event validator', () => {
  it('is what `npm run schema` generates from the current schema', () => {
    expect(readFileSync(GENERATED, 'utf8')).toBe(usageEventValidatorCode());
  });

  // Values at and around every rule's edge, combined at random (seeded) into events.
  const choices: Record<string, unknown[]> = {
    eventId: [undefined, '', 'e', 'x'.repeat(256), 'x'.repeat(257), '😀'.repeat(128), '😀'.repeat(129), 5, null],
    licenseArn: [LICENSE_ARN, undefined, '', 'x'.repeat(255), 'x'.repeat(256), 7],
    customerAWSAccountId: [undefined, '111122223333', '11112222333', '1111222233334', 'abcdefghijkl', 111122223333],
    customerIdentifier: [undefined, 'c', '', 'x'.repeat(255), 'x'.repeat(256)],
    productCode: [undefined, 'p', '', 'x'.repeat(255)],
    dimension: ['requests', '', 'x'.repeat(255), 'x'.repeat(256), undefined, 3],
    quantity: [0, 1, 2147483647, 2147483648, -1, 1.5, '1', undefined, null, 1e21],
    timestamp: [
      '2026-11-02T10:15:00Z',
      '2026-11-02T10:15:00.123456Z',
      '2026-11-02T10:15:00+05:30',
      '2026-11-02T10:15:00',
      '2026-11-02 10:15:00Z',
      '2026-02-29T10:15:00Z',
      '2024-02-29T10:15:00Z',
      '2026-11-02T24:00:00Z',
      1793613600000,
      -1,
      8640000000000000,
      8640000000000001,
      1.5,
      undefined,
    ],
    allocations: [
      undefined,
      [],
      [{ quantity: 1, tags: { team: 'a' } }],
      [{ quantity: 1, tags: {} }],
      [{ quantity: 1, tags: { a: '1', b: '2', c: '3', d: '4', e: '5' } }],
      [{ quantity: 1, tags: { a: '1', b: '2', c: '3', d: '4', e: '5', f: '6' } }],
      [{ quantity: 1, tags: { 'bad!': 'x' } }],
      [{ quantity: 1, tags: { k: 'x'.repeat(256) } }],
      [{ quantity: 1, tags: { k: 'x'.repeat(257) } }],
      [{ quantity: 1, tags: { ['k'.repeat(101)]: 'x' } }],
      [{ quantity: 1, tags: { k: 'v' }, extra: 1 }],
      [{ quantity: -1, tags: { k: 'v' } }],
      [{ tags: { k: 'v' } }],
      Array.from({ length: 101 }, (_, i) => ({ quantity: 0, tags: { k: `v${i}` } })),
      'none',
    ],
    extra: [undefined, undefined, undefined, true],
  };

  it('agrees with the zod schema on 5,000 events made of edge values', () => {
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const disagreements: unknown[] = [];
    let valid = 0;
    for (let i = 0; i < 5000; i++) {
      const event: Record<string, unknown> = {};
      for (const [field, values] of Object.entries(choices)) {
        // Mostly the field's first (valid) value, else any: most events break one rule or none.
        const value = random() < 0.8 ? values[0] : values[Math.floor(random() * values.length)];
        if (value !== undefined) event[field] = value;
      }
      const compiled = validateUsageEvent(event);
      const zod = usageEventSchema.safeParse(event).success;
      if (compiled !== zod) disagreements.push({ event, compiled, zod, errors: (validateUsageEvent as unknown as { errors: unknown }).errors });
      if (compiled) valid++;
    }
    expect(disagreements).toEqual([]);
    // The corpus holds both kinds, or the agreement would prove little.
    expect(valid).toBeGreaterThan(100);
  });

  it.each([[[]], [{}], ['event'], [null], [42]])('refuses %j, as zod does', (value) => {
    expect(validateUsageEvent(value)).toBe(false);
    expect(usageEventSchema.safeParse(value).success).toBe(false);
  });
});

describe('anyOfAsIfElse (how the validator avoids error objects for valid events)', () => {
  const schema = {
    type: 'object',
    properties: {
      when: { anyOf: [{ type: 'string', pattern: '^[0-9]{4}$' }, { type: 'integer', minimum: 0 }] },
      items: { type: 'array', items: { anyOf: [{ const: 'a' }, { const: 'b' }] } },
    },
    anyOf: [{ required: ['who'] }, { required: ['product', 'customer'] }],
  };

  it('leaves no anyOf, and accepts exactly what the anyOf form accepts', () => {
    const rewritten = anyOfAsIfElse(schema);
    expect(JSON.stringify(rewritten)).not.toContain('anyOf');
    const ajv = new Ajv2020({ strict: false });
    const [before, after] = [ajv.compile(schema), ajv.compile(rewritten)];
    const values: unknown[] = [];
    for (const identity of [{}, { who: 1 }, { product: 1 }, { product: 1, customer: 2 }, { who: 1, product: 1 }]) {
      for (const when of [undefined, '2026', '26', 2026, -1, 1.5, null]) {
        for (const items of [undefined, [], ['a', 'b'], ['c'], ['a', 'c']]) values.push({ ...identity, ...(when === undefined ? {} : { when }), ...(items ? { items } : {}) });
      }
    }
    const verdicts = values.map((value) => [before(value), after(value)]);
    expect(verdicts.filter(([a, b]) => a !== b)).toEqual([]);
    // Both verdicts occur, or the agreement would prove little.
    expect(new Set(verdicts.map(([a]) => a))).toEqual(new Set([true, false]));
  });

  it('refuses an anyOf it cannot rewrite, so a schema change is noticed', () => {
    expect(() => anyOfAsIfElse({ anyOf: [{ type: 'string' }, { type: 'number' }, { type: 'null' }] })).toThrow(/anyOf/);
    expect(() => anyOfAsIfElse({ anyOf: [{ type: 'string' }, { type: 'number' }], if: { type: 'string' } })).toThrow(/anyOf/);
  });

  it('leaves values alone (const, enum)', () => {
    const values = { const: { anyOf: [1, 2] }, enum: [{ anyOf: [3, 4] }] };
    expect(anyOfAsIfElse(values)).toEqual(values);
  });

  it('is applied to the generated validator', () => {
    expect(usageEventValidatorCode()).not.toContain('#/anyOf');
  });
});

describe('eventTimeMs', () => {
  const times = [
    '2026-11-02T10:15:00Z',
    '2026-11-02T10:15:00.1Z',
    '2026-11-02T10:15:00.12Z',
    '2026-11-02T10:15:00.123Z',
    '2026-11-02T10:15:00.123999Z',
    '2024-02-29T23:59:59.999Z',
    '2026-12-31T23:59:59Z',
    '1970-01-01T00:00:00Z',
    '0001-01-01T00:00:00Z',
    '0099-12-31T12:00:00Z',
    '9999-12-31T23:59:59.999Z',
    '2026-11-02T15:45:00+05:30',
    '2026-11-02T10:15:00.5-08:00',
  ];
  it.each(times)('reads %s as Date.parse does', (timestamp) => {
    expect(eventTimeMs({ timestamp } as UsageEvent)).toBe(Date.parse(timestamp));
  });

  it('reads every second of a year as Date.parse does', () => {
    const start = Date.parse('2027-01-01T00:00:00Z');
    for (let t = start; t < start + 366 * 86_400_000; t += 86_400_000 / 3 + 1234) {
      const timestamp = new Date(t).toISOString();
      expect(eventTimeMs({ timestamp } as UsageEvent)).toBe(t);
    }
  });

  it('reads times of alternating days right (the day of the last time read is remembered)', () => {
    const times = ['2026-11-30T23:59:59.999Z', '2026-12-01T00:00:00Z', '2026-11-30T00:00:00Z', '2028-02-29T12:00:00Z', '2026-12-01T00:00:00.001Z'];
    for (const timestamp of [...times, ...times.reverse()]) expect(eventTimeMs({ timestamp } as UsageEvent)).toBe(Date.parse(timestamp));
  });

  it('takes epoch milliseconds as they are', () => {
    expect(eventTimeMs({ timestamp: 1793613600000 } as UsageEvent)).toBe(1793613600000);
  });
});
