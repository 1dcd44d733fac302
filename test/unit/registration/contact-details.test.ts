import { parseContactDetails } from '../../../lambda/core/registration/contact-details';

const VALID = { company: 'Acme Corp', name: 'Ada Lovelace', email: 'ada@example.com', phone: '+44 (20) 7946-0958' };

const errorsOf = (fields: Record<string, string>) => {
  const result = parseContactDetails(fields);
  if (result.ok) throw new Error(`expected errors, got ${JSON.stringify(result.details)}`);
  return result.errors;
};

describe('parseContactDetails', () => {
  it('accepts valid details and trims the values', () => {
    const result = parseContactDetails({
      company: '  Acme Corp ',
      name: '\tAda Lovelace\n',
      email: ' ada@example.com ',
      phone: ' +44 (20) 7946-0958 ',
    });
    expect(result).toEqual({ ok: true, details: VALID });
  });

  it('makes the phone optional: missing or blank is no phone', () => {
    const { phone: _phone, ...withoutPhone } = VALID;
    expect(parseContactDetails(withoutPhone)).toEqual({ ok: true, details: { ...withoutPhone, phone: undefined } });
    expect(parseContactDetails({ ...VALID, phone: '   ' })).toEqual({ ok: true, details: { ...withoutPhone, phone: undefined } });
  });

  it('ignores fields it does not know', () => {
    const result = parseContactDetails({ ...VALID, reference: 'x', admin: 'true' });
    expect(result).toEqual({ ok: true, details: VALID });
  });

  it('requires company, name and e-mail, and reports every missing field', () => {
    expect(errorsOf({})).toEqual({
      company: 'is required',
      name: 'is required',
      email: 'is not a valid e-mail address',
    });
    expect(errorsOf({ ...VALID, company: '   ' })).toEqual({ company: 'is required' });
  });

  describe('lengths', () => {
    it.each([
      ['company', 200],
      ['name', 200],
    ])('%s: %i characters pass, one more fails', (field, max) => {
      expect(parseContactDetails({ ...VALID, [field]: 'x'.repeat(max) }).ok).toBe(true);
      expect(errorsOf({ ...VALID, [field]: 'x'.repeat(max + 1) })).toEqual({ [field]: `must be at most ${max} characters` });
    });

    it('e-mail: at most 254 characters', () => {
      // 64-character local part and labels of at most 63 characters: valid in every other respect.
      const email = (length: number) => `${'a'.repeat(64)}@${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(length - 197)}.com`;
      expect(email(254)).toHaveLength(254);
      expect(parseContactDetails({ ...VALID, email: email(254) }).ok).toBe(true);
      expect(errorsOf({ ...VALID, email: email(255) })).toEqual({ email: 'must be at most 254 characters' });
    });

    it('phone: at most 40 characters', () => {
      expect(parseContactDetails({ ...VALID, phone: '1'.repeat(40) }).ok).toBe(true);
      expect(errorsOf({ ...VALID, phone: '1'.repeat(41) })).toEqual({ phone: 'must be at most 40 characters' });
    });
  });

  describe('e-mail format', () => {
    it.each([['ada@example.com'], ['ada.lovelace+billing@sub.example.co.uk'], ['a_b-c@example-corp.io']])('accepts %s', (email) => {
      expect(parseContactDetails({ ...VALID, email }).ok).toBe(true);
    });

    it.each([
      ['no at sign', 'ada.example.com'],
      ['no domain', 'ada@'],
      ['no local part', '@example.com'],
      ['two at signs', 'ada@@example.com'],
      ['a space inside', 'ada lovelace@example.com'],
      ['a header injection', 'ada@example.com\nBcc: all@example.com'],
      ['markup', '<script>@example.com'],
    ])('rejects %s', (_label, email) => {
      expect(errorsOf({ ...VALID, email })).toEqual({ email: expect.any(String) });
    });
  });

  describe('phone format', () => {
    it.each([['+1 555 0100'], ['(020) 7946-0958'], ['555.0100']])('accepts %s', (phone) => {
      expect(parseContactDetails({ ...VALID, phone }).ok).toBe(true);
    });

    it.each([['letters', 'call me'], ['an extension word', '555 ext 12'], ['markup', '<b>1</b>'], ['a newline inside', '555\n0100']])(
      'rejects %s',
      (_label, phone) => {
        expect(errorsOf({ ...VALID, phone })).toEqual({ phone: 'may only contain digits, spaces and + ( ) - .' });
      },
    );
  });

  describe('control characters', () => {
    it.each([
      ['NUL', 'Acme\u0000Corp'],
      ['a newline inside', 'Acme\nCorp'],
      ['a carriage return inside', 'Acme\r\nBcc: x'],
      ['escape', 'Acme\u001b[31m'],
      ['DEL', 'Acme\u007f'],
    ])('rejects %s in company and name', (_label, value) => {
      expect(errorsOf({ ...VALID, company: value })).toEqual({ company: 'contains control characters' });
      expect(errorsOf({ ...VALID, name: value })).toEqual({ name: 'contains control characters' });
    });

    it('accepts non-ASCII letters', () => {
      const result = parseContactDetails({ ...VALID, company: 'Société Générale Ünïcødé 株式会社', name: 'Zoë Ørsted' });
      expect(result.ok).toBe(true);
    });
  });

  it('keeps markup as plain text (escaping is the page’s job)', () => {
    const result = parseContactDetails({ ...VALID, company: '<script>alert(1)</script>' });
    expect(result).toEqual({ ok: true, details: { ...VALID, company: '<script>alert(1)</script>' } });
  });
});
