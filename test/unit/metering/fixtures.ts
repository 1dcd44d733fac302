/** Hour buckets for the metering tests: a license-mode customer, a second one, and a legacy customer. */
import { bucketKeyOf, HourBucket } from '../../../lambda/core/metering/hour-bucket';

export const LICENSE_ARN = 'arn:aws:license-manager::111122223333:license:l-0123456789abcdef0123';
export const OTHER_LICENSE_ARN = 'arn:aws:license-manager::444455556666:license:l-fedcba9876543210fedc';

export type BucketChange = Partial<Omit<HourBucket, 'bucketKey'>>;

/** A sealed bucket of a license-mode customer (override any field; the key follows). */
export function licenseBucket(change: BucketChange = {}): HourBucket {
  const base = {
    customerKey: 'license#l-0123456789abcdef0123',
    productCode: 'prod-license',
    identityMode: 'license' as const,
    customerAWSAccountId: '111122223333',
    licenseArn: LICENSE_ARN,
    dimension: 'requests',
    hourStart: '2026-11-02T09:00:00.000Z',
    quantity: 10,
    allocations: {},
    status: 'sealed' as const,
    attempts: 0,
    ...change,
  };
  return { ...base, bucketKey: bucketKeyOf(base.customerKey, base.dimension, base.hourStart) };
}

export function legacyBucket(change: BucketChange = {}): HourBucket {
  return licenseBucket({
    customerKey: 'legacy#prod-legacy#cust-legacy-1',
    productCode: 'prod-legacy',
    identityMode: 'legacy',
    customerAWSAccountId: '777788889999',
    licenseArn: undefined,
    customerIdentifier: 'cust-legacy-1',
    ...change,
  });
}

/** A distinct license-mode customer number `n` (its own licence and account). */
export function nthLicenseBucket(n: number, change: BucketChange = {}): HourBucket {
  const id = `l-${String(n).padStart(20, '0')}`;
  const account = String(100000000000 + n);
  return licenseBucket({
    customerKey: `license#${id}`,
    customerAWSAccountId: account,
    licenseArn: `arn:aws:license-manager::${account}:license:${id}`,
    ...change,
  });
}
