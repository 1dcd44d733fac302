import { sqsMessageJson } from '../../../lambda/adapters/sqs-message-json';

/** The characters SQS accepts in a message body (XML 1.0). */
const SQS_BODY = /^[\t\n\r\u0020-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]*$/u;

describe('sqsMessageJson', () => {
  test.each([
    ['U+FFFE and U+FFFF in a string and a key', { ['k\uffff']: 'a\ufffeb\uffff' }],
    ['control characters and lone surrogates (JSON.stringify escapes them)', ['\u0000\u001f\ud800x\udfff']],
    ['text SQS takes as it is', { dimension: 'requests', note: 'é ✓ \u{1f600} \ufffd' }],
  ])('%s: only characters SQS takes, and the same value when parsed', (_case, value) => {
    const json = sqsMessageJson(value);
    expect(json).toMatch(SQS_BODY);
    expect(JSON.parse(json)).toEqual(value);
  });

  test('leaves JSON without those characters as JSON.stringify writes it', () => {
    const value = { a: 'é ✓', b: [1, 2] };
    expect(sqsMessageJson(value)).toBe(JSON.stringify(value));
  });
});
