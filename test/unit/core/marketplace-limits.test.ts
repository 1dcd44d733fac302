import { LICENSE_ARN, licenseIdOf, TAG_CHARACTERS } from '../../../lambda/core/marketplace-limits';

describe('licence ids', () => {
  it.each([
    ['arn:aws:license-manager::294406891311:license:l-0123456789abcdef', 'l-0123456789abcdef'],
    ['arn:aws:license-manager::294406891311:license/l-0123456789abcdef', 'l-0123456789abcdef'],
    // Lifecycle event examples give the ARN without its arn: prefix.
    ['aws:license-manager::294406891311:license:l-0123456789abcdef', 'l-0123456789abcdef'],
    ['l-0123456789abcdef', 'l-0123456789abcdef'],
  ])('%s identifies licence %s', (arn, id) => {
    expect(licenseIdOf(arn)).toBe(id);
  });

  it.each(['', 'arn:aws:s3:::bucket', 'license:x-123'])('%j has no licence id', (arn) => {
    expect(licenseIdOf(arn)).toBeUndefined();
  });

  it('accepts only full licence ARNs on the metering wire', () => {
    expect(LICENSE_ARN.test('arn:aws:license-manager::294406891311:license:l-0123456789abcdef')).toBe(true);
    expect(LICENSE_ARN.test('aws:license-manager::294406891311:license:l-0123456789abcdef')).toBe(false);
    expect(LICENSE_ARN.test('arn:aws:license-manager::29440689131:license:l-01')).toBe(false);
  });
});

describe('allocation tag characters', () => {
  it.each(['team', 'cost-center=42', 'a+b c', 'path/to:x@y_z.1'])('accepts %j', (tag) => {
    expect(TAG_CHARACTERS.test(tag)).toBe(true);
  });
  it.each(['', 'tab\there', 'emoji🙂', 'semi;colon', 'quote"'])('rejects %j', (tag) => {
    expect(TAG_CHARACTERS.test(tag)).toBe(false);
  });
});
