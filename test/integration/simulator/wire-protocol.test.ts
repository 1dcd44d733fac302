/**
 * The AWS JSON 1.1 wire protocol, with raw unsigned requests: targets, error bodies and statuses,
 * UnknownOperationException, SerializationException, epoch-second timestamps in and out.
 */
import { TARGET, epochSeconds, licenseRecord, rawCall, seedWorld, useSimulator, type World } from './helpers';

describe('wire protocol (raw AWS JSON 1.1)', () => {
  const ctx = useSimulator();
  let world: World;

  beforeEach(async () => {
    world = await seedWorld(ctx.admin);
  });

  const errorType = (json: any) => String(json?.__type ?? '').split('#').pop();

  test('an unsigned ResolveCustomer call answers 200 JSON (signatures are not checked)', async () => {
    const response = await rawCall(ctx.sim.url, TARGET.resolveCustomer, { RegistrationToken: world.alice.registrationToken });
    expect(response.status).toBe(200);
    expect(response.json).toMatchObject({
      CustomerAWSAccountId: world.alice.customerAWSAccountId,
      ProductCode: world.lic.productCode,
      LicenseArn: world.alice.licenseArn,
    });
  });

  test('errors are HTTP 400 with {"__type", "message"}', async () => {
    const response = await rawCall(ctx.sim.url, TARGET.resolveCustomer, { RegistrationToken: 'nope' });
    expect(response.status).toBe(400);
    expect(errorType(response.json)).toBe('InvalidTokenException');
    expect(typeof response.json.message).toBe('string');
  });

  test('InternalServiceErrorException is HTTP 500', async () => {
    await ctx.admin.addFault({ operation: 'BatchMeterUsage', error: 'InternalServiceErrorException' });
    const response = await rawCall(ctx.sim.url, TARGET.batchMeterUsage, { UsageRecords: [] });
    expect(response.status).toBe(500);
    expect(errorType(response.json)).toBe('InternalServiceErrorException');
    expect(typeof response.json.message).toBe('string');
  });

  test.each([
    ['a metering operation the simulator does not serve', 'AWSMPMeteringService.RegisterUsage'],
    ['an unknown entitlement operation', 'AWSMPEntitlementService.ListThings'],
    ['an unknown service', 'AmazonSQS.SendMessage'],
    ['no X-Amz-Target at all', undefined],
  ])('%s: 400 UnknownOperationException', async (_name, target) => {
    const response = await rawCall(ctx.sim.url, target, { RegistrationToken: world.alice.registrationToken });
    expect(response.status).toBe(400);
    expect(errorType(response.json)).toBe('UnknownOperationException');
  });

  test.each([
    ['not JSON', '{"RegistrationToken": '],
    ['a JSON array', '[1, 2]'],
    ['a JSON string', '"token"'],
    ['JSON null', 'null'],
  ])('a body that is %s: 400 SerializationException', async (_name, body) => {
    const response = await rawCall(ctx.sim.url, TARGET.resolveCustomer, body);
    expect(response.status).toBe(400);
    expect(errorType(response.json)).toBe('SerializationException');
  });

  test('timestamps travel as epoch seconds (fractions allowed), in and out', async () => {
    const timestamp = epochSeconds(new Date('2026-11-02T10:05:00.5Z'));
    expect(timestamp % 1).toBe(0.5);
    const record = licenseRecord(world.alice);
    const response = await rawCall(ctx.sim.url, TARGET.batchMeterUsage, {
      UsageRecords: [{ ...record, Timestamp: timestamp }],
    });
    expect(response.status).toBe(200);
    const [result] = response.json.Results;
    expect(result.Status).toBe('Success');
    expect(typeof result.UsageRecord.Timestamp).toBe('number');
    expect(result.UsageRecord.Timestamp).toBe(timestamp);
    expect(result.MeteringRecordId).toEqual(expect.any(String));
  });

  test('an ISO string where epoch seconds belong is refused', async () => {
    const response = await rawCall(ctx.sim.url, TARGET.batchMeterUsage, {
      UsageRecords: [{ ...licenseRecord(world.alice), Timestamp: '2026-11-02T10:05:00Z' }],
    });
    expect(response.status).toBe(400);
    expect(errorType(response.json)).toBe('ValidationException');
  });

  test('BatchMeterUsage through the wire: Results carry the echoed UsageRecord', async () => {
    const record = { Timestamp: epochSeconds(new Date('2026-11-02T10:05:00Z')), Dimension: 'requests', Quantity: 5, CustomerAWSAccountId: world.bob.customerAWSAccountId, LicenseArn: world.bob.licenseArn };
    const response = await rawCall(ctx.sim.url, TARGET.batchMeterUsage, { UsageRecords: [record] });
    expect(response.status).toBe(200);
    expect(response.json.Results[0].UsageRecord).toMatchObject(record);
    expect(response.json.UnprocessedRecords ?? []).toEqual([]);
  });
});
