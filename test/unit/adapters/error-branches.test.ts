import { MarketplaceMeteringClient, MarketplaceMeteringServiceException, ThrottlingException } from '@aws-sdk/client-marketplace-metering';
import { sdkMeteringApi } from '../../../lambda/adapters/metering-api';
import { MeteringApiError } from '../../../lambda/core/metering/metering-run';

/**
 * Error branches of the adapters that DynamoDB Local and the simulator do not produce on demand.
 * The usage journal's and the customer directory's are in usage-journal-errors.test.ts.
 */

describe('BatchMeterUsage through the SDK: errors', () => {
  const api = (error: unknown) =>
    sdkMeteringApi({ send: async () => Promise.reject(error) } as unknown as MarketplaceMeteringClient);
  const call = { records: [{ Timestamp: new Date(), Dimension: 'requests', Quantity: 1 }] };

  it('turns a modelled AWS error into a MeteringApiError with its name and status', async () => {
    const error = new ThrottlingException({ message: 'Rate exceeded', $metadata: { httpStatusCode: 400 } });
    await expect(api(error).batchMeterUsage(call)).rejects.toMatchObject({ errorName: 'ThrottlingException', httpStatus: 400 });
  });

  it.each([
    ['Throttling', 400, true],
    ['TooManyRequestsException', 400, true],
    ['RequestTimeoutException', 408, true],
    ['InvalidUsageDimensionException', 400, false],
    ['SomethingNewException', 400, false],
  ])('marks %s (HTTP %p) transient: %p, as the SDK\'s own retry classification says', async (name, httpStatusCode, transient) => {
    const error = new MarketplaceMeteringServiceException({ name, $fault: 'client', message: name, $metadata: { httpStatusCode } });
    await expect(api(error).batchMeterUsage(call)).rejects.toMatchObject({ errorName: name, httpStatus: httpStatusCode, transient });
  });

  it('treats a network failure as retryable', async () => {
    const error = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    await expect(api(error).batchMeterUsage(call)).rejects.toBeInstanceOf(MeteringApiError);
  });

  it('does not hide a bug as a network problem', async () => {
    const bug = new TypeError("Cannot assign to read only property 'accessKeyId'");
    await expect(api(bug).batchMeterUsage(call)).rejects.toBe(bug);
  });
});
