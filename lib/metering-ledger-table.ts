import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { MeteringTableSchema as Schema } from '../lambda/core/metering-table-schema';

export interface MeteringLedgerTableProps {
  /**
   * What happens to the ledger when the stack is deleted. It is the record of what was billed:
   * keep it.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The Metering ledger: hour buckets (customer x dimension x UTC hour, with their audit trail) and
 * the usage events' de-duplication markers (expired by TTL), plus a sparse index of the buckets that
 * still need metering.
 */
export class MeteringLedgerTable extends Construct {
  public readonly table: dynamodb.Table;

  constructor(scope: Construct, id: string, props: MeteringLedgerTableProps = {}) {
    super(scope, id);
    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: Schema.partitionKey, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: true,
      timeToLiveAttribute: Schema.ttlAttribute,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: Schema.workIndex.name,
      partitionKey: { name: Schema.workIndex.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: Schema.workIndex.sortKey, type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.ALL,
    });
  }

  /** What ingestion needs: transactional writes of buckets and markers. */
  public grantIngest(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:ConditionCheckItem'],
      resourceArns: [this.table.tableArn],
    });
  }

  /** What metering needs: read the work index, update buckets. */
  public grantMetering(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['dynamodb:Query', 'dynamodb:UpdateItem', 'dynamodb:GetItem', 'dynamodb:PutItem'],
      resourceArns: [this.table.tableArn, `${this.table.tableArn}/index/${Schema.workIndex.name}`],
    });
  }
}
