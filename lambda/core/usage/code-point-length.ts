import ucs2length from 'ajv/dist/runtime/ucs2length';

/**
 * String length in code points, as JSON Schema (and zod) count it, for the compiled usage event
 * validator: ajv's own counter walks every character; most strings have no surrogate pair, and
 * then the length is the number of UTF-16 units, found by one native regex scan.
 */
const SURROGATE = /[\ud800-\udfff]/;

export default function codePointLength(text: string): number {
  return SURROGATE.test(text) ? ucs2length(text) : text.length;
}
