import {
  BatchMeterUsageCommand,
  MarketplaceMeteringClient,
  MarketplaceMeteringServiceException,
} from '@aws-sdk/client-marketplace-metering';
import { isThrottlingError, isTransientError } from '@smithy/core/retry';
import { MeteringRecord } from '../core/metering/hour-bucket';
import { BatchMeterUsageAnswer, BatchMeterUsageCall, MeteringApi, MeteringApiError } from '../core/metering/metering-run';

/**
 * BatchMeterUsage through the AWS SDK. The client must be built with `maxAttempts: 1`: the metering
 * run does its own retries, paced under the API's 10 calls per second, and stores each attempt.
 */
export function sdkMeteringApi(client: MarketplaceMeteringClient): MeteringApi {
  return {
    async batchMeterUsage(call: BatchMeterUsageCall): Promise<BatchMeterUsageAnswer> {
      try {
        const output = await client.send(
          new BatchMeterUsageCommand({
            ProductCode: call.productCode,
            UsageRecords: call.records.map((r) => ({
              ...r,
              UsageAllocations: r.UsageAllocations?.map((a) => ({ ...a, Tags: a.Tags ? [...a.Tags] : undefined })),
            })),
          }),
        );
        return {
          results: (output.Results ?? []).map((r) => ({
            record: r.UsageRecord as Partial<MeteringRecord> | undefined,
            status: r.Status,
            meteringRecordId: r.MeteringRecordId,
          })),
          unprocessed: (output.UnprocessedRecords ?? []) as Partial<MeteringRecord>[],
        };
      } catch (error) {
        if (error instanceof MarketplaceMeteringServiceException) {
          // The exception's `cause` is typed more loosely than smithy's SdkError; the fields read are the same.
          const classified = error as unknown as Parameters<typeof isThrottlingError>[0];
          throw new MeteringApiError(error.name, error.message, error.$metadata?.httpStatusCode, isThrottlingError(classified) || isTransientError(classified));
        }
        // Timeouts, connection resets: no answer at all, retryable. Anything else (a bug, bad
        // configuration) must fail the run loudly rather than look like a passing network problem.
        if (isNetworkError(error)) throw new MeteringApiError((error as Error).name, (error as Error).message);
        throw error;
      }
    },
  };
}

/** The client the metering engine uses: us-east-1, no SDK retries (the engine retries), optional local endpoint. */
export function meteringEngineClient(options: { endpoint?: string; region?: string; credentials?: { accessKeyId: string; secretAccessKey: string } } = {}): MarketplaceMeteringClient {
  return new MarketplaceMeteringClient({
    region: options.region ?? 'us-east-1',
    maxAttempts: 1,
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
  });
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'ENETUNREACH', 'EHOSTUNREACH']);

function isNetworkError(error: unknown): boolean {
  const e = error as { name?: string; code?: string; $metadata?: unknown };
  return (
    e?.$metadata !== undefined ||
    ['TimeoutError', 'AbortError', 'RequestTimeout', 'ProviderError'].includes(e?.name ?? '') ||
    NETWORK_CODES.has(e?.code ?? '')
  );
}
