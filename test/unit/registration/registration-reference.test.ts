import { createHmac } from 'node:crypto';
import {
  createRegistrationReference,
  DEFAULT_REFERENCE_LIFETIME_SECONDS,
  verifyRegistrationReference,
} from '../../../lambda/core/registration/registration-reference';

const SECRET = 'a-secret-of-at-least-thirty-two-characters!';
const OTHER_SECRET = 'another-secret-of-at-least-thirty-two-chars';
const NOW = new Date('2026-11-02T10:20:00Z');
const NOW_S = NOW.getTime() / 1000;
const CUSTOMER = {
  customerKey: 'license#l-0123456789abcdef',
  productCode: 'prod-license',
  customerAWSAccountId: '111122223333',
  licenseArn: 'arn:aws:license-manager::111122223333:license:l-0123456789abcdef',
};
const later = (seconds: number) => new Date(NOW.getTime() + seconds * 1000);

/** A reference signed with SECRET around any payload text, to reach the checks after the signature. */
const signedAround = (payloadText: string) => {
  const payload = Buffer.from(payloadText).toString('base64url');
  return `${payload}.${createHmac('sha256', SECRET).update(payload).digest('base64url')}`;
};

describe('registration reference', () => {
  it('round-trips: what was signed comes back, with an expiry one hour on by default', () => {
    const reference = createRegistrationReference(CUSTOMER, SECRET, NOW);
    expect(DEFAULT_REFERENCE_LIFETIME_SECONDS).toBe(3600);
    expect(verifyRegistrationReference(reference, SECRET, NOW)).toEqual({
      valid: true,
      reference: { ...CUSTOMER, expiresAt: NOW_S + 3600 },
    });
  });

  it('is URL- and form-safe (base64url, one dot)', () => {
    const reference = createRegistrationReference(CUSTOMER, SECRET, NOW);
    expect(reference).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
  });

  it('carries only the identifiers it is given a place for, and no token', () => {
    const reference = createRegistrationReference(
      { ...CUSTOMER, registrationToken: 'secret-token', email: 'ada@example.com' } as typeof CUSTOMER,
      SECRET,
      NOW,
    );
    const payload = Buffer.from(reference.split('.')[0], 'base64url').toString('utf8');
    expect(payload).not.toContain('secret-token');
    expect(payload).not.toContain('ada@example.com');
    expect(Object.keys(JSON.parse(payload)).sort()).toEqual(['customerAWSAccountId', 'customerKey', 'expiresAt', 'licenseArn', 'productCode']);
  });

  it('works without a licence ARN (legacy customers)', () => {
    const legacy = { customerKey: 'legacy#prod-legacy#cust-1', productCode: 'prod-legacy', customerAWSAccountId: '111122223333' };
    const check = verifyRegistrationReference(createRegistrationReference(legacy, SECRET, NOW), SECRET, NOW);
    expect(check).toEqual({ valid: true, reference: { ...legacy, expiresAt: NOW_S + 3600 } });
  });

  describe('expiry', () => {
    it('is accepted until the last second of its lifetime and expired from its end', () => {
      const reference = createRegistrationReference(CUSTOMER, SECRET, NOW, 600);
      expect(verifyRegistrationReference(reference, SECRET, later(599)).valid).toBe(true);
      expect(verifyRegistrationReference(reference, SECRET, later(600))).toEqual({ valid: false, reason: 'expired' });
      expect(verifyRegistrationReference(reference, SECRET, later(86_400))).toEqual({ valid: false, reason: 'expired' });
    });

    it('uses the default lifetime when none is given', () => {
      const reference = createRegistrationReference(CUSTOMER, SECRET, NOW);
      expect(verifyRegistrationReference(reference, SECRET, later(3599)).valid).toBe(true);
      expect(verifyRegistrationReference(reference, SECRET, later(3600))).toEqual({ valid: false, reason: 'expired' });
    });
  });

  describe('tampering', () => {
    it('rejects a payload changed to another customer (signature kept)', () => {
      const [, signature] = createRegistrationReference(CUSTOMER, SECRET, NOW).split('.');
      const forged = Buffer.from(JSON.stringify({ ...CUSTOMER, customerKey: 'license#l-someoneelse', expiresAt: NOW_S + 3600 })).toString(
        'base64url',
      );
      expect(verifyRegistrationReference(`${forged}.${signature}`, SECRET, NOW)).toEqual({ valid: false, reason: 'bad-signature' });
    });

    it('rejects an expiry pushed into the future (signature kept)', () => {
      const reference = createRegistrationReference(CUSTOMER, SECRET, NOW, 60);
      const [payload, signature] = reference.split('.');
      const decoded = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
      const extended = Buffer.from(JSON.stringify({ ...decoded, expiresAt: decoded.expiresAt + 86_400 })).toString('base64url');
      expect(verifyRegistrationReference(`${extended}.${signature}`, SECRET, later(120))).toEqual({
        valid: false,
        reason: 'bad-signature',
      });
    });

    it('rejects a changed signature: one character flipped, truncated, extended, or another reference’s', () => {
      const reference = createRegistrationReference(CUSTOMER, SECRET, NOW);
      const [payload, signature] = reference.split('.');
      const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
      const other = createRegistrationReference({ ...CUSTOMER, customerKey: 'license#l-other' }, SECRET, NOW).split('.')[1];
      for (const bad of [flip(signature, 0), flip(signature, 20), signature.slice(0, -2), `${signature}AAAA`, other]) {
        expect(verifyRegistrationReference(`${payload}.${bad}`, SECRET, NOW)).toEqual({ valid: false, reason: 'bad-signature' });
      }
    });

    it('rejects a reference signed with another secret', () => {
      const reference = createRegistrationReference(CUSTOMER, OTHER_SECRET, NOW);
      expect(verifyRegistrationReference(reference, SECRET, NOW)).toEqual({ valid: false, reason: 'bad-signature' });
    });
  });

  describe('malformed references', () => {
    it.each([
      ['empty', ''],
      ['no dot', 'abcdef'],
      ['three parts', 'a.b.c'],
      ['no payload', '.abc'],
      ['no signature', 'abc.'],
      ['just a dot', '.'],
    ])('%s', (_label, reference) => {
      expect(verifyRegistrationReference(reference, SECRET, NOW)).toEqual({ valid: false, reason: 'malformed' });
    });

    it('is not a string at all', () => {
      expect(verifyRegistrationReference(undefined as unknown as string, SECRET, NOW)).toEqual({ valid: false, reason: 'malformed' });
    });

    it.each([
      ['not JSON', 'not json'],
      ['JSON null', 'null'],
      ['no customer key', JSON.stringify({ expiresAt: NOW_S + 60 })],
      ['an expiry that is not a number', JSON.stringify({ customerKey: 'k', expiresAt: String(NOW_S + 60) })],
    ])('correctly signed but %s', (_label, payloadText) => {
      expect(verifyRegistrationReference(signedAround(payloadText), SECRET, NOW)).toEqual({ valid: false, reason: 'malformed' });
    });
  });

  describe('secret', () => {
    it('refuses a secret shorter than 32 characters, to sign or to verify', () => {
      const short = 'x'.repeat(31);
      expect(() => createRegistrationReference(CUSTOMER, short, NOW)).toThrow(/at least 32 characters/);
      const reference = createRegistrationReference(CUSTOMER, SECRET, NOW);
      expect(() => verifyRegistrationReference(reference, short, NOW)).toThrow(/at least 32 characters/);
      expect(() => createRegistrationReference(CUSTOMER, 'x'.repeat(32), NOW)).not.toThrow();
    });
  });
});
