import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The signed, expiring reference to a registered customer that travels in the contact form and in
 * the redirect to the seller's onboarding URL, instead of the registration token. It is an HMAC-SHA256
 * over its payload with a secret only the stack (and the seller's app) knows.
 *
 * Format: `base64url(JSON payload) + "." + base64url(signature)`.
 */

export interface RegistrationReference {
  readonly customerKey: string;
  readonly productCode: string;
  readonly customerAWSAccountId: string;
  readonly licenseArn?: string;
  /** When the reference stops being accepted (epoch seconds). */
  readonly expiresAt: number;
}

/** How long a reference is accepted: long enough to fill in a form, short enough to be useless if leaked. */
export const DEFAULT_REFERENCE_LIFETIME_SECONDS = 3600;
const MIN_SECRET_LENGTH = 32;

function sign(payload: string, secret: string): Buffer {
  if (secret.length < MIN_SECRET_LENGTH) throw new Error(`The signing secret must have at least ${MIN_SECRET_LENGTH} characters`);
  return createHmac('sha256', secret).update(payload).digest();
}

export function createRegistrationReference(
  customer: Omit<RegistrationReference, 'expiresAt'>,
  secret: string,
  now: Date,
  lifetimeSeconds = DEFAULT_REFERENCE_LIFETIME_SECONDS,
): string {
  const reference: RegistrationReference = {
    customerKey: customer.customerKey,
    productCode: customer.productCode,
    customerAWSAccountId: customer.customerAWSAccountId,
    licenseArn: customer.licenseArn,
    expiresAt: Math.floor(now.getTime() / 1000) + lifetimeSeconds,
  };
  const payload = Buffer.from(JSON.stringify(reference)).toString('base64url');
  return `${payload}.${sign(payload, secret).toString('base64url')}`;
}

export type ReferenceCheck =
  | { readonly valid: true; readonly reference: RegistrationReference }
  | { readonly valid: false; readonly reason: 'malformed' | 'bad-signature' | 'expired' };

/**
 * Checks a reference made by this stack: signature first (constant time), then expiry. Exported for
 * the seller's application, which receives the reference on its onboarding URL.
 */
export function verifyRegistrationReference(reference: string, secret: string, now: Date = new Date()): ReferenceCheck {
  const parts = typeof reference === 'string' ? reference.split('.') : [];
  if (parts.length !== 2 || !parts[0] || !parts[1]) return { valid: false, reason: 'malformed' };
  const [payload, signature] = parts;
  const expected = sign(payload, secret);
  const given = Buffer.from(signature, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { valid: false, reason: 'bad-signature' };

  let decoded: RegistrationReference;
  try {
    decoded = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return { valid: false, reason: 'malformed' };
  }
  if (typeof decoded?.customerKey !== 'string' || typeof decoded.expiresAt !== 'number') return { valid: false, reason: 'malformed' };
  if (now.getTime() / 1000 >= decoded.expiresAt) return { valid: false, reason: 'expired' };
  return { valid: true, reference: decoded };
}
