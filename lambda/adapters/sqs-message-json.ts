/**
 * JSON for an SQS message body. SQS accepts only the characters of XML 1.0 (#x9, #xA, #xD,
 * #x20-#xD7FF, #xE000-#xFFFD, #x10000-#x10FFFF) and refuses a body with any other as the sender's
 * fault, which no retry mends. JSON.stringify already escapes control characters and lone
 * surrogates; U+FFFE and U+FFFF it writes as they are (a producer may send them escaped, `\uffff`,
 * in pure ASCII). Those two can only stand inside JSON strings, where their escape means the same.
 */
export function sqsMessageJson(value: unknown): string {
  return JSON.stringify(value).replace(NONCHARACTERS, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
}

const NONCHARACTERS = /[\ufffe\uffff]/g;
