import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { MarketplaceMeteringClient, ThrottlingException } from '@aws-sdk/client-marketplace-metering';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { sdkMeteringApi } from '../../../lambda/adapters/metering-api';
import { DynamoDbMeteringLedger } from '../../../lambda/adapters/metering-ledger';
import { MeteringApiError } from '../../../lambda/core/metering/metering-run';
import { UsageAddition } from '../../../lambda/core/usage/ingest';

/** Error branches of the adapters that DynamoDB Local and the simulator do not produce on demand. */

const addition: UsageAddition = {
  bucket: {
    bucketKey: 'license#l-1|requests|2026-11-02T10:00:00.000Z',
    customerKey: 'license#l-1',
    productCode: 'p',
    identityMode: 'license',
    customerAWSAccountId: '123456789012',
    licenseArn: 'arn:aws:license-manager::123456789012:license:l-1',
    dimension: 'requests',
    hourStart: '2026-11-02T10:00:00.000Z',
  },
  eventKey: 'license#l-1|e1',
  quantity: 1,
  allocations: {},
  at: new Date('2026-11-02T10:05:00Z'),
};

const cancelled = (...codes: string[]) =>
  new TransactionCanceledException({ message: 'cancelled', $metadata: {}, CancellationReasons: codes.map((Code) => ({ Code })) });

function ledgerAnswering(...answers: (Error | undefined)[]) {
  const calls: unknown[] = [];
  const client = {
    send: async (command: unknown) => {
      calls.push(command);
      const answer = answers.shift();
      if (answer) throw answer;
      return {};
    },
  } as unknown as DynamoDBDocumentClient;
  return { ledger: new DynamoDbMeteringLedger(client, 'Ledger'), calls };
}

describe('Metering ledger: adding usage', () => {
  it('tries a transaction again after a TransactionConflict (concurrent events for one bucket)', async () => {
    const { ledger, calls } = ledgerAnswering(cancelled('None', 'TransactionConflict'), cancelled('TransactionConflict', 'None'));
    await expect(ledger.addUsage([addition])).resolves.toEqual(['added']);
    expect(calls).toHaveLength(3);
  });

  it('gives up, loudly, when the conflicts do not stop', async () => {
    const { ledger } = ledgerAnswering(...Array.from({ length: 20 }, () => cancelled('None', 'TransactionConflict')));
    await expect(ledger.addUsage([addition])).rejects.toThrow(/TransactionConflict/);
  }, 20_000);

  it.each([
    [['ConditionalCheckFailed', 'None'], 'duplicate'],
    [['None', 'ConditionalCheckFailed'], 'sealed'],
    [['ConditionalCheckFailed', 'ConditionalCheckFailed'], 'duplicate'],
    [['None', 'ValidationError'], 'too-large'],
  ])('reads cancellation reasons %j as %s', async (codes, outcome) => {
    const { ledger } = ledgerAnswering(cancelled(...codes));
    await expect(ledger.addUsage([addition])).resolves.toEqual([outcome]);
  });

  it('lets other errors through (the message is retried by SQS)', async () => {
    const { ledger } = ledgerAnswering(new Error('ProvisionedThroughputExceeded'));
    await expect(ledger.addUsage([addition])).rejects.toThrow('ProvisionedThroughputExceeded');
  });
});

describe('BatchMeterUsage through the SDK: errors', () => {
  const api = (error: unknown) =>
    sdkMeteringApi({ send: async () => Promise.reject(error) } as unknown as MarketplaceMeteringClient);
  const call = { records: [{ Timestamp: new Date(), Dimension: 'requests', Quantity: 1 }] };

  it('turns a modelled AWS error into a MeteringApiError with its name and status', async () => {
    const error = new ThrottlingException({ message: 'Rate exceeded', $metadata: { httpStatusCode: 400 } });
    await expect(api(error).batchMeterUsage(call)).rejects.toMatchObject({ errorName: 'ThrottlingException', httpStatus: 400 });
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
