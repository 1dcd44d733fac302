import { z } from 'zod';
import { MAX_EVENTS_PER_MESSAGE, usageEventSchema } from './usage-event';

/**
 * The usage message format as JSON Schema (draft 2020-12), for producers in any language.
 * `schema/usage-message.v1.json` is this, written by `npm run schema`; a test keeps them equal.
 */
export function usageMessageJsonSchema(): Record<string, unknown> {
  const event = z.toJSONSchema(usageEventSchema, { unrepresentable: 'any' }) as Record<string, unknown>;
  delete event.$schema;
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'urn:aws-marketplace-saas-integration:usage-message:v1',
    title: 'AWS Marketplace SaaS integration: usage message, version 1',
    description:
      `One usage event, or an array of 1 to ${MAX_EVENTS_PER_MESSAGE} events. License-mode products identify the ` +
      'customer with licenseArn; legacy products with productCode + customerIdentifier.',
    oneOf: [
      { $ref: '#/$defs/usageEvent' },
      { type: 'array', minItems: 1, maxItems: MAX_EVENTS_PER_MESSAGE, items: { $ref: '#/$defs/usageEvent' } },
    ],
    $defs: {
      usageEvent: {
        ...event,
        anyOf: [{ required: ['licenseArn'] }, { required: ['productCode', 'customerIdentifier'] }],
      },
    },
  };
}
