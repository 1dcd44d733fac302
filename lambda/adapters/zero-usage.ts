import { DynamoDBDocumentClient, paginateScan } from '@aws-sdk/lib-dynamodb';
import { bucketKeyOf, HourBucket } from '../core/metering/hour-bucket';
import { ZeroUsage } from '../core/metering/metering-run';
import { ProductConfig } from '../core/product-config';
import { DynamoDbMeteringLedger } from './metering-ledger';

/**
 * Zero-quantity records for an hour: every customer whose status is `subscribed` (and who was
 * subscribed before the hour ended) gets a sealed bucket of 0 for each of its product's dimensions
 * that saw no usage. The hour is marked once done, so later runs skip it.
 */
export class ZeroUsageFiller implements ZeroUsage {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly customersTable: string,
    private readonly ledger: DynamoDbMeteringLedger,
    private readonly products: readonly ProductConfig[],
  ) {}

  async fillHour(hourStart: Date, now: Date): Promise<HourBucket[]> {
    const hour = hourStart.toISOString();
    if (await this.ledger.zeroFillDone(hour)) return [];
    const hourEnd = new Date(hourStart.getTime() + 3_600_000).toISOString();
    const created: HourBucket[] = [];
    const pages = paginateScan(
      { client: this.documents },
      {
        TableName: this.customersTable,
        FilterExpression: '#status = :subscribed AND statusEventTime < :hourEnd',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':subscribed': 'subscribed', ':hourEnd': hourEnd },
      },
    );
    for await (const page of pages) {
      for (const item of page.Items ?? []) {
        const product = this.products.find((p) => p.productCode === item.productCode);
        if (!product || !item.customerAWSAccountId) continue;
        if (product.identityMode === 'license' ? !item.licenseArn : !item.customerIdentifier) continue;
        for (const dimension of product.dimensions) {
          const zero = await this.ledger.addZeroBucket(
            {
              bucketKey: bucketKeyOf(String(item.customerKey), dimension, hour),
              customerKey: String(item.customerKey),
              productCode: product.productCode,
              identityMode: product.identityMode,
              customerAWSAccountId: String(item.customerAWSAccountId),
              licenseArn: item.licenseArn as string | undefined,
              customerIdentifier: item.customerIdentifier as string | undefined,
              dimension,
              hourStart: hour,
            },
            now,
          );
          if (zero) created.push(zero);
        }
      }
    }
    await this.ledger.zeroFillDone(hour, true);
    return created;
  }
}
