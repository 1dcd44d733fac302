import { randomBytes, randomInt, randomUUID } from 'node:crypto';

/** Identifiers in the shapes AWS Marketplace hands out. */

/** The account that issues the simulator's licences (licence ARNs carry the issuer, not the buyer). */
export const LICENSE_ISSUER_ACCOUNT = '999988887777';

export function newAccountId(): string {
  return Array.from({ length: 12 }, (_, i) => (i === 0 ? randomInt(1, 10) : randomInt(0, 10))).join('');
}

export function newLicenseArn(): string {
  return `arn:aws:license-manager::${LICENSE_ISSUER_ACCOUNT}:license:l-${randomBytes(16).toString('hex')}`;
}

/** Legacy CustomerIdentifier: an opaque mixed-case alphanumeric string. */
export function newCustomerIdentifier(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return Array.from({ length: 11 }, () => alphabet[randomInt(alphabet.length)]).join('');
}

export function newAgreementId(): string {
  return `agmt-${randomBytes(12).toString('hex')}`;
}

/**
 * Registration tokens are opaque; real ones are long base64-like strings. Ours always contain
 * `+ / = . : _ -`, the characters that break callers who decode a form body twice or put the token
 * in a URL unencoded.
 */
export function newRegistrationToken(): string {
  return `mpt+${randomBytes(24).toString('base64')}/${randomBytes(9).toString('base64url')}.v1:_-=`;
}

export function newMeteringRecordId(): string {
  return randomUUID();
}
