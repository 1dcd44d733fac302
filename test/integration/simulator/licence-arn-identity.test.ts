/**
 * BatchMeterUsage refuses a LicenseArn that is not the licence's ARN, even one that ends in
 * the same `l-...` id (another issuer account, another partition/region, `license/` instead of `license:`).
 * marketplace-facts.md, BatchMeterUsage whole-request errors: "InvalidLicenseException (unknown licence, ...)";
 * SDK model: "Ensure the LicenseArn is valid, matches the customer". An ARN that AWS never issued names no
 * licence. (Matching on the l- id is the facts' rule for *events*, whose ARNs may lack `arn:`, not for the API.)
 */
import { BatchMeterUsageCommand } from '@aws-sdk/client-marketplace-metering';
import { licenseRecord, rejectionOf, seedWorld, useSimulator } from './helpers';

describe('a LicenseArn that only shares the licence id', () => {
  const ctx = useSimulator();

  const variants: [string, (arn: string) => string][] = [
    ['another issuer account', (arn) => arn.replace(/::\d{12}:/, '::123456789012:')],
    ['another partition and a region', (arn) => arn.replace('arn:aws:license-manager::', 'arn:aws-cn:license-manager:cn-north-1:')],
    ['license/ instead of license:', (arn) => arn.replace(':license:', ':license/')],
  ];

  test.each(variants)('%s: InvalidLicenseException, nothing billed', async (_name, mangle) => {
    const world = await seedWorld(ctx.admin);
    const forged = mangle(world.alice.licenseArn);
    expect(forged).not.toBe(world.alice.licenseArn);
    const record = licenseRecord(world.alice, { LicenseArn: forged });
    const error = await rejectionOf(ctx.meteringOnce.send(new BatchMeterUsageCommand({ UsageRecords: [record] })));
    expect(error.name).toBe('InvalidLicenseException');
    expect(await ctx.admin.meteringRecords()).toEqual([]);
  });
});
