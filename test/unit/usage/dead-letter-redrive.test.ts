import { journalMessageIdOf, planRedrive, redriveEventIdOf, redrivenEventOf, REDRIVE_REASONS_BY_DEFAULT } from '../../../lambda/core/usage/dead-letter-redrive';

/** What to do with each kind of message the usage dead-letter queue can hold. */

const MESSAGE_ID = '0b9c7a52-5d1e-4f36-9d0b-4a0a6b1c2d3e';
const event = { licenseArn: 'arn:aws:license-manager::123456789012:license:l-0123456789abcdef', dimension: 'requests', quantity: 3, timestamp: '2026-12-02T10:00:00Z' };
const letter = (fields: Record<string, unknown>) => JSON.stringify({ reason: 'unknown-customer', message: 'no registered customer', messageId: MESSAGE_ID, position: 2, event, ...fields });

describe('planRedrive', () => {
  test('an original usage message (no reason attribute) is sent again as it was, as a delivery of its own message id', () => {
    expect(planRedrive({ messageId: MESSAGE_ID, body: '[{"a":1}]' })).toEqual({ action: 'resend-message', body: '[{"a":1}]', originalMessageId: MESSAGE_ID });
  });

  test('an original that was sent again before and moved again keeps the first message id', () => {
    const first = '11111111-2222-3333-4444-555555555555';
    expect(planRedrive({ messageId: MESSAGE_ID, body: 'x', originalMessageId: first })).toMatchObject({ action: 'resend-message', originalMessageId: first });
  });

  test('originals can be left in the queue', () => {
    expect(planRedrive({ messageId: MESSAGE_ID, body: 'x' }, { originals: false })).toEqual({ action: 'keep', why: 'originals-not-selected' });
  });

  test("a letter's event without an eventId is sent with one made of its message id and position, the same for every letter of that event", () => {
    const plan = planRedrive({ messageId: 'letter-1', reason: 'unknown-customer', body: letter({}) });
    expect(plan).toEqual({
      action: 'resend-event',
      event: { ...event, eventId: `redrive:${MESSAGE_ID}:2` },
      letterKey: `${MESSAGE_ID}#2`,
      reason: 'unknown-customer',
    });
    expect(planRedrive({ messageId: 'letter-2', reason: 'unknown-customer', body: letter({}) })).toEqual(plan);
    expect(redriveEventIdOf(MESSAGE_ID, 2)).toBe(`redrive:${MESSAGE_ID}:2`);
  });

  test("a letter's event with an eventId keeps it", () => {
    const plan = planRedrive({ messageId: 'l', reason: 'unknown-dimension', body: letter({ reason: 'unknown-dimension', event: { ...event, eventId: 'producer-7' } }) });
    expect(plan).toMatchObject({ action: 'resend-event', event: { eventId: 'producer-7' }, reason: 'unknown-dimension' });
  });

  test('by default only the reasons a seller can mend afterwards are sent again; others only when asked for', () => {
    expect(REDRIVE_REASONS_BY_DEFAULT).toEqual(['unknown-customer', 'unknown-product', 'unknown-dimension']);
    const old = { messageId: 'l', reason: 'timestamp-out-of-window', body: letter({ reason: 'timestamp-out-of-window' }) };
    expect(planRedrive(old)).toEqual({ action: 'keep', why: 'reason-not-selected', reason: 'timestamp-out-of-window' });
    expect(planRedrive(old, { reasons: ['timestamp-out-of-window'] })).toMatchObject({ action: 'resend-event' });
    expect(planRedrive({ messageId: 'l', reason: 'unknown-customer', body: letter({}) }, { reasons: ['identity-mismatch'] })).toMatchObject({ action: 'keep', why: 'reason-not-selected' });
  });

  test.each([
    ['a whole message refused (its body echoed)', 'invalid-json', JSON.stringify({ reason: 'invalid-json', message: 'not JSON', messageId: MESSAGE_ID, body: '{oops' }), 'whole-message'],
    ['a whole message cut short', 'too-many-events', JSON.stringify({ reason: 'too-many-events', message: 'm', messageId: MESSAGE_ID, body: '[', bodyTruncated: true }), 'whole-message'],
    ['an event cut short', 'unknown-customer', letter({ event: '{"licenseArn":"arn', eventTruncated: true }), 'truncated'],
    ['a letter cut short as a whole', 'unknown-customer', JSON.stringify({ reason: 'unknown-customer', letterTruncated: true, letter: '{' }), 'truncated'],
    ["the metering dead-letter queue's letter", 'too-many-tag-sets', JSON.stringify({ kind: 'usage-event', reason: 'too-many-tag-sets', messageId: MESSAGE_ID, position: 0 }), 'not-a-usage-letter'],
    ['a body that is not JSON', 'unknown-customer', 'hello', 'not-a-usage-letter'],
    ['a reason attribute that is not the letter\'s', 'unknown-dimension', letter({}), 'not-a-usage-letter'],
    ['a letter without a position', 'unknown-customer', letter({ position: undefined }), 'not-a-usage-letter'],
    ['a letter whose event is not an object', 'unknown-customer', letter({ event: [1] }), 'not-a-usage-letter'],
  ])('%s stays in the queue', (_name, reason, body, why) => {
    expect(planRedrive({ messageId: 'l', reason, body }, { reasons: [reason] })).toMatchObject({ action: 'keep', why });
  });
});

describe('journalMessageIdOf', () => {
  test('a message without the attribute is journalled under its own id', () => {
    expect(journalMessageIdOf('m-1', undefined)).toEqual({ messageId: 'm-1', redriven: false });
  });

  test('a message sent again is journalled under its first id, as a redelivery', () => {
    expect(journalMessageIdOf('m-2', MESSAGE_ID)).toEqual({ messageId: MESSAGE_ID, redriven: true });
  });

  test.each([[''], ['x#hour'], ['a b'], ['x'.repeat(101)]])('an attribute %p that is not a message id refuses the message', (value) => {
    expect(journalMessageIdOf('m-3', value)).toEqual({ reason: 'invalid-event', message: expect.stringContaining('originalMessageId') });
  });
});

describe('redrivenEventOf', () => {
  test('reads back the message id and position of an eventId the redrive gave', () => {
    expect(redrivenEventOf(redriveEventIdOf(MESSAGE_ID, 0))).toEqual({ messageId: MESSAGE_ID, position: 0 });
    expect(redrivenEventOf(redriveEventIdOf('m1', 99))).toEqual({ messageId: 'm1', position: 99 });
  });

  test.each([['evt-1'], ['redrive:'], ['redrive:m1'], ['redrive:m1:'], ['redrive:m1:01'], ['redrive:m1:1x'], ['redrive:a#b:1'], ['Redrive:m1:1'], ['redrive::1']])(
    '%p is any other eventId',
    (eventId) => {
      expect(redrivenEventOf(eventId)).toBeUndefined();
    },
  );
});
