import { z } from 'zod';
import { AWS_ACCOUNT_ID, MarketplaceLimits as Limits, TAG_CHARACTERS } from '../marketplace-limits';
import validateUsageEvent from './generated/usage-event-validator';

/**
 * Usage message format, version 1: what the seller's services put on the usage queue. A message body
 * is one event or a JSON array of up to MAX_EVENTS_PER_MESSAGE events. The JSON Schema in
 * schema/usage-message.v1.json is generated from these definitions (see test/unit/usage).
 */

export const MAX_EVENTS_PER_MESSAGE = 100;
/**
 * Allocations (tag sets) one event may carry. AWS allows 2,500 per record, but each event's
 * allocations are added to its hour bucket in one DynamoDB update, whose expression has a size limit.
 */
export const MAX_ALLOCATIONS_PER_EVENT = 100;

/** The last instant a JavaScript Date can hold (epoch ms): a larger number would become an Invalid Date. */
const MAX_EPOCH_MS = 8_640_000_000_000_000;

const tagText = (max: number) =>
  z.string().min(1).max(max).regex(TAG_CHARACTERS, 'use only letters, digits, spaces and + - = . _ : / @');

export const usageAllocationSchema = z.strictObject({
  quantity: z.number().int().min(0).max(Limits.maxQuantity),
  tags: z
    .record(tagText(Limits.maxTagKeyLength), tagText(Limits.maxTagValueLength))
    .refine((tags) => {
      const count = Object.keys(tags).length;
      return count >= 1 && count <= Limits.maxTagsPerAllocation;
    }, `1 to ${Limits.maxTagsPerAllocation} tags per allocation`)
    // The refinement does not reach the JSON Schema; this states the same rule there.
    .meta({ minProperties: 1, maxProperties: Limits.maxTagsPerAllocation }),
});

export const usageEventSchema = z
  .strictObject({
    /** The de-duplication key: the same eventId is counted once. @default SQS message id + position */
    eventId: z.string().min(1).max(256).optional(),
    /** License-mode products (Concurrent Agreements): the buyer's licence. */
    licenseArn: z.string().min(1).max(Limits.maxIdentifierLength).optional(),
    /** Optional with licenseArn (filled from the Customers table); must match it when given. */
    customerAWSAccountId: z.string().regex(AWS_ACCOUNT_ID, 'a 12-digit AWS account id').optional(),
    /** Legacy products: the CustomerIdentifier from ResolveCustomer, with productCode. */
    customerIdentifier: z.string().min(1).max(Limits.maxIdentifierLength).optional(),
    productCode: z.string().min(1).max(Limits.maxIdentifierLength).optional(),
    dimension: z.string().min(1).max(Limits.maxIdentifierLength),
    quantity: z.number().int().min(0).max(Limits.maxQuantity),
    /** When the usage happened: ISO 8601 with a time zone, or epoch milliseconds. */
    timestamp: z.union([z.iso.datetime({ offset: true }), z.number().int().min(0).max(MAX_EPOCH_MS)]),
    allocations: z.array(usageAllocationSchema).min(1).max(MAX_ALLOCATIONS_PER_EVENT).optional(),
  })
  .refine((e) => e.licenseArn !== undefined || (e.productCode !== undefined && e.customerIdentifier !== undefined), {
    message: 'identify the customer with licenseArn (license-mode products) or productCode + customerIdentifier (legacy products)',
  });

export type UsageEvent = z.infer<typeof usageEventSchema>;

/** Why an event cannot be billed. Machine-readable: it travels with the event to the dead-letter queue. */
export type RejectionReason =
  | 'invalid-json'
  | 'too-many-events'
  | 'invalid-event'
  | 'unknown-customer'
  | 'unknown-product'
  | 'identity-mismatch'
  | 'unknown-dimension'
  | 'allocation-sum-mismatch'
  | 'duplicate-tag-set'
  | 'timestamp-in-future'
  | 'timestamp-out-of-window'
  /** The customer's subscription ended and its final usage window closed. */
  | 'customer-not-subscribed'
  /** The hour was metered early (the customer's access ended): a second quantity would not be billed. */
  | 'hour-already-billed'
  /** The hour bucket cannot take more distinct allocation tag sets (DynamoDB's 400 KB item limit). */
  | 'too-many-tag-sets';

export interface Rejection {
  readonly reason: RejectionReason;
  readonly message: string;
}

export type ParsedEvent =
  | { readonly ok: true; readonly position: number; readonly event: UsageEvent }
  | { readonly ok: false; readonly position: number; readonly raw: unknown; readonly rejection: Rejection };

/** Splits a message body into its events, each checked against the schema. */
export function parseUsageMessage(body: string): ParsedEvent[] | Rejection {
  const events = messageBodyEvents(body);
  return Array.isArray(events) ? usageEventsOf(events) : (events as Rejection);
}

/** A message body's (unchecked) events: the JSON is one event or an array of them. */
export function messageBodyEvents(body: string): readonly unknown[] | Rejection {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return { reason: 'invalid-json', message: 'The message body is not JSON' };
  }
  return messageEventsOf(parsed);
}

/** A parsed message body's events, each checked against the schema. */
export function usageEventsOf(parsed: unknown): ParsedEvent[] | Rejection {
  const items = messageEventsOf(parsed);
  if (!Array.isArray(items)) return items as Rejection;
  return items.map((raw, position) => {
    if (isUsageEvent(raw)) return { ok: true, position, event: raw };
    return { ok: false, position, raw, rejection: invalidEventRejection(raw) };
  });
}

/** A parsed message body as its list of (unchecked) events: one event or an array of them. */
export function messageEventsOf(parsed: unknown): readonly unknown[] | Rejection {
  const items = Array.isArray(parsed) ? parsed : [parsed];
  if (items.length === 0) return { reason: 'invalid-event', message: 'The message holds an empty array' };
  if (items.length > MAX_EVENTS_PER_MESSAGE) {
    return { reason: 'too-many-events', message: `A message holds at most ${MAX_EVENTS_PER_MESSAGE} events, this one ${items.length}` };
  }
  return items;
}

/** Whether a value is a usage event (the schema): the compiled JSON Schema decides, fast. */
export function isUsageEvent(raw: unknown): raw is UsageEvent {
  return validateUsageEvent(raw, VALIDATION_CONTEXT);
}

/** Given, so ajv's validator does not make its defaults (two objects) for every event. */
const VALIDATION_CONTEXT = Object.freeze({ instancePath: '', dynamicAnchors: Object.freeze({}) });

/** Why a value is not a usage event, in zod's words. */
export function invalidEventRejection(raw: unknown): Rejection {
  return { reason: 'invalid-event', message: explainInvalidEvent(raw) };
}

function explainInvalidEvent(raw: unknown): string {
  const result = usageEventSchema.safeParse(raw);
  // A test keeps the two in agreement; should zod ever accept what the JSON Schema refused, the
  // event is still refused, with the general reason.
  return result.success ? 'The event does not match the usage message schema (schema/usage-message.v1.json)' : z.prettifyError(result.error);
}

/** The event's time in epoch milliseconds. */
export function eventTimeMs(event: UsageEvent): number {
  const { timestamp } = event;
  if (typeof timestamp === 'number') return timestamp;
  return timestamp.charCodeAt(timestamp.length - 1) === Z ? utcTimestampMs(timestamp) : Date.parse(timestamp);
}

const Z = 'Z'.charCodeAt(0);
const ZERO = '0'.charCodeAt(0);

/**
 * Date.parse for a schema-valid timestamp in UTC (`2026-11-02T10:15:00Z`, optionally with a
 * fraction), by digit position: four times faster, and ingestion reads every event's time. Offset
 * timestamps go to Date.parse. A test holds the two equal.
 */
function utcTimestampMs(text: string): number {
  const year = twoDigits(text, 0) * 100 + twoDigits(text, 2);
  // Date.UTC reads years 0-99 as 1900-1999.
  if (year < 100) return Date.parse(text);
  // Milliseconds: the fraction's first three digits, right-padded (Date.parse ignores the rest).
  const fractionDigits = text.length - 21; // between the `.` at 19 and the final Z
  let ms = 0;
  for (let i = 0; i < 3; i++) ms = ms * 10 + (i < fractionDigits ? text.charCodeAt(20 + i) - ZERO : 0);
  const dayMs = utcDayMs(year, twoDigits(text, 5), twoDigits(text, 8));
  return dayMs + twoDigits(text, 11) * 3_600_000 + twoDigits(text, 14) * 60_000 + twoDigits(text, 17) * 1000 + ms;
}

let lastDay = { key: -1, ms: 0 };

/** Date.UTC of a day, the last one asked for remembered: events of a batch share a day or two. */
function utcDayMs(year: number, month: number, day: number): number {
  const key = (year * 100 + month) * 100 + day;
  if (key !== lastDay.key) lastDay = { key, ms: Date.UTC(year, month - 1, day) };
  return lastDay.ms;
}

function twoDigits(text: string, at: number): number {
  return (text.charCodeAt(at) - ZERO) * 10 + text.charCodeAt(at + 1) - ZERO;
}

/** The event's time as a Date. */
export function eventTime(event: UsageEvent): Date {
  return new Date(eventTimeMs(event));
}
