import { readFileSync } from 'node:fs';
import * as path from 'node:path';
// ajv is in node_modules already (through fauxqs -> fastify); nothing was added for this test.
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { MAX_EVENTS_PER_MESSAGE, parseUsageMessage } from '../../../lambda/core/usage/usage-event';
import { usageMessageJsonSchema } from '../../../lambda/core/usage/usage-json-schema';

const SCHEMA_FILE = path.join(__dirname, '..', '..', '..', 'schema', 'usage-message.v1.json');
const LICENSE_ARN = 'arn:aws:license-manager::111122223333:license:l-0123456789abcdef0123';
const EVENT = { licenseArn: LICENSE_ARN, dimension: 'requests', quantity: 3, timestamp: '2026-11-02T10:15:00Z' };
const LEGACY_EVENT = { productCode: 'prod-legacy', customerIdentifier: 'cust-1', dimension: 'requests', quantity: 0, timestamp: 1793613600000 };
const tags = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, `v${i}`]));

function validator() {
  const ajv = new Ajv2020({ allErrors: true });
  addFormats(ajv);
  return ajv.compile(usageMessageJsonSchema());
}

describe('usage message JSON Schema', () => {
  it('is what schema/usage-message.v1.json holds (run `npm run schema` after changing the format)', () => {
    const text = readFileSync(SCHEMA_FILE, 'utf8');
    expect(JSON.parse(text)).toEqual(usageMessageJsonSchema());
    expect(text).toBe(`${JSON.stringify(usageMessageJsonSchema(), null, 2)}\n`);
  });

  it('declares draft 2020-12, one event or an array of 1..100, and the required fields', () => {
    const schema = usageMessageJsonSchema() as {
      $schema: string;
      oneOf: [{ $ref: string }, { type: string; minItems: number; maxItems: number }];
      $defs: { usageEvent: { required: string[]; additionalProperties: boolean; anyOf: unknown[]; properties: Record<string, unknown> } };
    };
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.oneOf[0]).toEqual({ $ref: '#/$defs/usageEvent' });
    expect(schema.oneOf[1]).toMatchObject({ type: 'array', minItems: 1, maxItems: MAX_EVENTS_PER_MESSAGE });
    const event = schema.$defs.usageEvent;
    expect(event.required.sort()).toEqual(['dimension', 'quantity', 'timestamp']);
    expect(event.additionalProperties).toBe(false);
    expect(event.anyOf).toEqual([{ required: ['licenseArn'] }, { required: ['productCode', 'customerIdentifier'] }]);
    expect(event.properties.quantity).toEqual({ type: 'integer', minimum: 0, maximum: 2147483647 });
  });

  it('compiles in a real JSON Schema validator (ajv, draft 2020-12)', () => {
    expect(() => validator()).not.toThrow();
  });

  // Each sample is judged by the JSON Schema (what producers in other languages use) and by the
  // zod schema ingest uses: they must agree, or a producer's validated message gets dead-lettered.
  const samples: [string, boolean, unknown][] = [
    ['a license-mode event', true, EVENT],
    ['a legacy event with epoch ms', true, LEGACY_EVENT],
    ['an array of events', true, [EVENT, LEGACY_EVENT]],
    ['100 events', true, Array.from({ length: 100 }, () => EVENT)],
    ['an event with allocations and every optional field', true, { ...EVENT, eventId: 'e-1', customerAWSAccountId: '111122223333', allocations: [{ quantity: 3, tags: { 'team/a': 'x y@z' } }] }],
    ['an offset timestamp', true, { ...EVENT, timestamp: '2026-11-02T15:45:00+05:30' }],
    ['an empty array', false, []],
    ['101 events', false, Array.from({ length: 101 }, () => EVENT)],
    ['an unknown field', false, { ...EVENT, extra: true }],
    ['no identity', false, { dimension: 'requests', quantity: 1, timestamp: EVENT.timestamp }],
    ['productCode without customerIdentifier', false, { productCode: 'p', dimension: 'requests', quantity: 1, timestamp: EVENT.timestamp }],
    ['no dimension', false, { licenseArn: LICENSE_ARN, quantity: 1, timestamp: EVENT.timestamp }],
    ['quantity -1', false, { ...EVENT, quantity: -1 }],
    ['quantity 1.5', false, { ...EVENT, quantity: 1.5 }],
    ['quantity 2^31', false, { ...EVENT, quantity: 2 ** 31 }],
    ['a timestamp without time zone', false, { ...EVENT, timestamp: '2026-11-02T10:15:00' }],
    ['an epoch timestamp beyond the Date range', false, { ...EVENT, timestamp: 8_640_000_000_000_001 }],
    ['a bad account id', false, { ...EVENT, customerAWSAccountId: '1234' }],
    ['an allocation with no tags', false, { ...EVENT, allocations: [{ quantity: 3, tags: {} }] }],
    ['an allocation with 5 tags', true, { ...EVENT, allocations: [{ quantity: 3, tags: tags(5) }] }],
    ['an allocation with 6 tags', false, { ...EVENT, allocations: [{ quantity: 3, tags: tags(6) }] }],
    ['a tag with a forbidden character', false, { ...EVENT, allocations: [{ quantity: 3, tags: { team: 'a!' } }] }],
    ['a message that is a string', false, 'hello'],
  ];

  it.each(samples)('%s: valid = %p for the JSON Schema and for ingest alike', (_what, valid, message) => {
    const validate = validator();
    const jsonSchemaSays = validate(message);
    const parsed = parseUsageMessage(JSON.stringify(message));
    const ingestSays = Array.isArray(parsed) && parsed.every((e) => e.ok);
    expect({ jsonSchema: jsonSchemaSays, ingest: ingestSays }).toEqual({ jsonSchema: valid, ingest: valid });
  });
});
