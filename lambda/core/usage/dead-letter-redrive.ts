import type { Rejection, RejectionReason } from './usage-event';

/**
 * Sending usage dead letters again, free of AWS: what each message of the usage dead-letter queue
 * is, and what can be sent back to the usage queue without counting anything twice.
 *
 * The queue holds two kinds of message. Letters (a `reason` attribute, a JSON body naming the
 * message id and position of an event that was refused) are not usage messages: their event is
 * sent again, with an eventId, so that two letters for one event (a letter can come twice) count
 * once. Original usage messages (no `reason`: SQS moved them after maxReceiveCount failed
 * deliveries, keeping their message id) may have been counted in part by a delivery that failed
 * later: they are sent again as they were, with the ORIGINAL_MESSAGE_ID_ATTRIBUTE, and ingestion
 * treats them as one more delivery of the original message (what it counted is a duplicate).
 */

/** The usage message attribute naming the message id a message was first sent with. */
export const ORIGINAL_MESSAGE_ID_ATTRIBUTE = 'originalMessageId';

/** An SQS message id (a UUID), or what a local queue gives: no character that entry keys use. */
const MESSAGE_ID = /^[A-Za-z0-9-]{1,100}$/;

/**
 * Refusals whose cause can be mended after the fact (a customer the stack learns of later, by its
 * licence event or its registration; a product or dimension added to the stack): the letters sent
 * again unless others are asked for.
 */
export const REDRIVE_REASONS_BY_DEFAULT: readonly RejectionReason[] = ['unknown-customer', 'unknown-product', 'unknown-dimension'];

/**
 * The message id a usage message's events are journalled under: its own, or the original's for a
 * message sent again from the dead-letter queue (`redriven`: treat it as a redelivery).
 */
export function journalMessageIdOf(messageId: string, originalMessageId: string | undefined): { messageId: string; redriven: boolean } | Rejection {
  if (originalMessageId === undefined) return { messageId, redriven: false };
  if (!MESSAGE_ID.test(originalMessageId)) {
    return { reason: 'invalid-event', message: `The ${ORIGINAL_MESSAGE_ID_ATTRIBUTE} attribute is not an SQS message id (letters, digits and -, at most 100)` };
  }
  return { messageId: originalMessageId, redriven: true };
}

/**
 * The eventId given to a letter's event that had none: its message id and position, which is how
 * the journal knew it. Two letters for the same event get the same one, and the fold takes it for
 * the event's default identity (redrivenEventOf): should a delivery of the first message have
 * counted the event after all, the copy sent again is a duplicate of it.
 */
export function redriveEventIdOf(messageId: string, position: number): string {
  return `${REDRIVE_EVENT_ID_PREFIX}${messageId}:${position}`;
}

const REDRIVE_EVENT_ID_PREFIX = 'redrive:';
const LOWER_R = REDRIVE_EVENT_ID_PREFIX.charCodeAt(0);

/** The message id and position a redriveEventIdOf eventId stands for; undefined for any other eventId. */
export function redrivenEventOf(eventId: string): { readonly messageId: string; readonly position: number } | undefined {
  // Every counted event with an eventId passes here: most are refused on their first character.
  if (eventId.charCodeAt(0) !== LOWER_R || !eventId.startsWith(REDRIVE_EVENT_ID_PREFIX)) return undefined;
  const colon = eventId.lastIndexOf(':');
  const messageId = eventId.slice(REDRIVE_EVENT_ID_PREFIX.length, colon);
  const digits = eventId.slice(colon + 1);
  if (!MESSAGE_ID.test(messageId) || !/^(0|[1-9]\d{0,5})$/.test(digits)) return undefined;
  return { messageId, position: Number(digits) };
}

/** A message received from the usage dead-letter queue. */
export interface UsageDeadLetter {
  readonly body: string;
  /** Its `reason` attribute: set on letters, absent on original usage messages. */
  readonly reason?: string;
  /** Its ORIGINAL_MESSAGE_ID_ATTRIBUTE, when it was itself sent again before. */
  readonly originalMessageId?: string;
  /** Its SQS message id: an original usage message keeps the one it was sent with. */
  readonly messageId: string;
}

export interface RedriveSelection {
  /** Letters with these reasons are sent again. @default REDRIVE_REASONS_BY_DEFAULT */
  readonly reasons?: readonly string[];
  /** Original usage messages are sent again. @default true */
  readonly originals?: boolean;
}

/** What to do with one dead-letter message. */
export type RedrivePlan =
  /** An original usage message: its body again, as one more delivery of `originalMessageId`. */
  | { readonly action: 'resend-message'; readonly body: string; readonly originalMessageId: string }
  /** A letter: its event again, with an eventId; `letterKey` names the event (message id and position). */
  | { readonly action: 'resend-event'; readonly event: Readonly<Record<string, unknown>>; readonly letterKey: string; readonly reason: string }
  /** Left in the queue, and why (a word for counting, then the reason where there is one). */
  | { readonly action: 'keep'; readonly why: KeepWhy; readonly reason?: string };

export type KeepWhy =
  /** A letter whose reason was not asked for. */
  | 'reason-not-selected'
  /** Original usage messages were not asked for. */
  | 'originals-not-selected'
  /** A letter for a whole message (its body is at fault: not JSON, too many events): sending it again changes nothing. */
  | 'whole-message'
  /** A letter that echoes only the start of its event (too large for a letter): there is nothing whole to send. */
  | 'truncated'
  /** Not a letter ingestion writes (another queue's, or mangled). */
  | 'not-a-usage-letter';

/** What to do with a message of the usage dead-letter queue. */
export function planRedrive(message: UsageDeadLetter, selection: RedriveSelection = {}): RedrivePlan {
  if (message.reason === undefined) {
    if (selection.originals === false) return { action: 'keep', why: 'originals-not-selected' };
    // Sent again before and dead-lettered again: it is still the first message's delivery.
    const originalMessageId = message.originalMessageId ?? message.messageId;
    if (!MESSAGE_ID.test(originalMessageId)) return { action: 'keep', why: 'not-a-usage-letter' };
    return { action: 'resend-message', body: message.body, originalMessageId };
  }
  const letter = parseLetter(message.body);
  if (letter === undefined || letter.reason !== message.reason) return { action: 'keep', why: 'not-a-usage-letter', reason: message.reason };
  if ('body' in letter || 'bodyTruncated' in letter) return { action: 'keep', why: 'whole-message', reason: letter.reason };
  if (letter.eventTruncated === true || letter.letterTruncated === true) return { action: 'keep', why: 'truncated', reason: letter.reason };
  const { messageId, position, event } = letter;
  if (typeof messageId !== 'string' || !Number.isInteger(position) || (position as number) < 0 || !isPlainObject(event)) {
    return { action: 'keep', why: 'not-a-usage-letter', reason: letter.reason };
  }
  if (!(selection.reasons ?? REDRIVE_REASONS_BY_DEFAULT).includes(letter.reason)) return { action: 'keep', why: 'reason-not-selected', reason: letter.reason };
  const eventId = event.eventId === undefined ? redriveEventIdOf(messageId, position as number) : event.eventId;
  return { action: 'resend-event', event: { ...event, eventId }, letterKey: `${messageId}#${position as number}`, reason: letter.reason };
}

interface Letter {
  readonly reason: string;
  readonly messageId?: unknown;
  readonly position?: unknown;
  readonly event?: unknown;
  readonly eventTruncated?: unknown;
  readonly letterTruncated?: unknown;
}

function parseLetter(body: string): Letter | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  // The metering dead-letter queue's letters carry a `kind`: they are not usage letters.
  if (!isPlainObject(parsed) || typeof parsed.reason !== 'string' || 'kind' in parsed) return undefined;
  return parsed as unknown as Letter;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
