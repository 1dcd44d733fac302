import { DEFAULT_MAX_BODY_BYTES, readFormOrJsonBody } from '../../../lambda/core/registration/request-body';

const FORM = 'application/x-www-form-urlencoded';
const TOKEN_FIELD = 'x-amzn-marketplace-token';

/** A form body as a browser encodes it (the WHATWG urlencoded serializer, which URLSearchParams implements). */
const formBody = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
const fieldsOf = (result: ReturnType<typeof readFormOrJsonBody>) => {
  if (!result.ok) throw new Error(`expected ok, got ${result.status} ${result.message}`);
  return result.fields;
};

describe('readFormOrJsonBody', () => {
  describe('form bodies', () => {
    it('reads the token and the offer type from a plain form body', () => {
      const body = formBody({ [TOKEN_FIELD]: 'abc', 'x-amzn-marketplace-offer-type': 'free-trial' });
      expect(fieldsOf(readFormOrJsonBody({ body, contentType: FORM }))).toEqual({
        [TOKEN_FIELD]: 'abc',
        'x-amzn-marketplace-offer-type': 'free-trial',
      });
    });

    it('accepts a charset parameter and any letter case in the media type', () => {
      const body = formBody({ [TOKEN_FIELD]: 'abc' });
      expect(fieldsOf(readFormOrJsonBody({ body, contentType: 'Application/X-WWW-Form-URLEncoded; charset=UTF-8' }))).toEqual({
        [TOKEN_FIELD]: 'abc',
      });
    });

    it.each([
      ['plus, slash and equals', 'AbC+dEf/gh=='],
      ['a literal %2B', 'abc%2Bdef'],
      ['every special character at once', 'mpt+AbC/dEf==%2Bx.y:z_w-v+/=%25'],
      ['a space and unicode', 'a b é☃'],
    ])('decodes a token with %s exactly once', (_label, token) => {
      const body = formBody({ [TOKEN_FIELD]: token });
      expect(fieldsOf(readFormOrJsonBody({ body, contentType: FORM }))[TOKEN_FIELD]).toBe(token);
    });

    it('sees the special characters percent-encoded on the wire, as a browser sends them', () => {
      expect(formBody({ [TOKEN_FIELD]: 'a+b/c=%2B' })).toBe(`${TOKEN_FIELD}=a%2Bb%2Fc%3D%252B`);
    });

    it('decodes a token exactly once when API Gateway hands the body base64-encoded', () => {
      const token = 'mpt+AbC/dEf==%2Bx.y:z_w-v';
      const body = Buffer.from(formBody({ [TOKEN_FIELD]: token, other: 'x y' }), 'utf8').toString('base64');
      expect(fieldsOf(readFormOrJsonBody({ body, isBase64Encoded: true, contentType: FORM }))).toEqual({
        [TOKEN_FIELD]: token,
        other: 'x y',
      });
    });

    it('reads a `+` on the wire as a space, as the form encoding defines (no second decode)', () => {
      // What a hand-written, incorrectly encoded body gives: the form rules, not a guess.
      expect(fieldsOf(readFormOrJsonBody({ body: `${TOKEN_FIELD}=a+b%252B`, contentType: FORM }))[TOKEN_FIELD]).toBe('a b%2B');
    });

    it('treats an empty body as no fields, whatever its content type', () => {
      expect(fieldsOf(readFormOrJsonBody({ body: '', contentType: 'text/plain' }))).toEqual({});
      expect(fieldsOf(readFormOrJsonBody({ body: null }))).toEqual({});
      expect(fieldsOf(readFormOrJsonBody({ body: undefined, contentType: FORM }))).toEqual({});
    });
  });

  describe('JSON bodies', () => {
    it('reads string fields and the token exactly as sent', () => {
      const token = 'mpt+AbC/dEf==%2Bx';
      const body = JSON.stringify({ [TOKEN_FIELD]: token, company: 'Acme' });
      expect(fieldsOf(readFormOrJsonBody({ body, contentType: 'application/json; charset=utf-8' }))).toEqual({
        [TOKEN_FIELD]: token,
        company: 'Acme',
      });
    });

    it('reads base64-encoded JSON', () => {
      const body = Buffer.from(JSON.stringify({ [TOKEN_FIELD]: 'a+b' })).toString('base64');
      expect(fieldsOf(readFormOrJsonBody({ body, isBase64Encoded: true, contentType: 'application/json' }))).toEqual({
        [TOKEN_FIELD]: 'a+b',
      });
    });

    it('turns numbers and booleans into strings and ignores null', () => {
      const body = JSON.stringify({ a: 1, b: true, c: null });
      expect(fieldsOf(readFormOrJsonBody({ body, contentType: 'application/json' }))).toEqual({ a: '1', b: 'true' });
    });

    it.each([
      ['not JSON', '{"x-amzn-marketplace-token": '],
      ['an array', '["a"]'],
      ['a string', '"a"'],
      ['null', 'null'],
      ['a nested object', '{"x-amzn-marketplace-token": {"a": 1}}'],
      ['an array field', '{"company": ["a"]}'],
    ])('answers 400 for %s', (_label, body) => {
      const result = readFormOrJsonBody({ body, contentType: 'application/json' });
      expect(result).toMatchObject({ ok: false, status: 400 });
    });
  });

  describe('limits and content types', () => {
    it('answers 413 for a body over the limit, and accepts one exactly at the limit', () => {
      const at = 'a='.padEnd(100, 'x');
      expect(readFormOrJsonBody({ body: at, contentType: FORM }, 100).ok).toBe(true);
      expect(readFormOrJsonBody({ body: at + 'x', contentType: FORM }, 100)).toMatchObject({ ok: false, status: 413 });
    });

    it('measures the decoded bytes of a base64 body, not its encoded length', () => {
      const decoded = 'a='.padEnd(100, 'x'); // 100 bytes, 136 characters of base64
      const body = Buffer.from(decoded).toString('base64');
      expect(body.length).toBeGreaterThan(100);
      expect(readFormOrJsonBody({ body, isBase64Encoded: true, contentType: FORM }, 100).ok).toBe(true);
    });

    it('measures bytes, not characters (multi-byte UTF-8)', () => {
      const body = 'a=' + 'é'.repeat(50); // 52 characters, 102 bytes
      expect(readFormOrJsonBody({ body, contentType: FORM }, 100)).toMatchObject({ ok: false, status: 413 });
    });

    it('uses a 16 KiB default limit', () => {
      expect(DEFAULT_MAX_BODY_BYTES).toBe(16 * 1024);
      const body = 'a='.padEnd(DEFAULT_MAX_BODY_BYTES + 1, 'x');
      expect(readFormOrJsonBody({ body, contentType: FORM })).toMatchObject({ ok: false, status: 413 });
    });

    it.each([['text/plain'], ['multipart/form-data; boundary=x'], ['application/xml'], [undefined]])(
      'answers 415 for content type %s',
      (contentType) => {
        const result = readFormOrJsonBody({ body: `${TOKEN_FIELD}=abc`, contentType });
        expect(result).toMatchObject({ ok: false, status: 415 });
      },
    );
  });
});
