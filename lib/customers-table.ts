import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { CustomersTableSchema } from '../lambda/core/customers-table-schema';

export interface CustomersTableProps {
  /**
   * What happens to the table when the stack is deleted. It holds who the seller's customers are and
   * what they are entitled to: keep it unless you are sure. DESTROY (a test stack) also turns the
   * table's deletion protection off, which would otherwise make the stack's deletion fail.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The Customers table: one item per customer key (the licence in license mode; product code +
 * CustomerIdentifier in legacy mode), looked up by AWS account through a secondary index.
 * Registration writes identity fields once; lifecycle and metering add their own attributes
 * (status, entitlements, event times) to the same item without a migration.
 */
export class CustomersTable extends Construct {
  /** Name of the index that finds every customer (licence) of one AWS account. */
  public static readonly ACCOUNT_INDEX = CustomersTableSchema.accountIndex.name;

  public readonly table: dynamodb.Table;

  constructor(scope: Construct, id: string, props: CustomersTableProps = {}) {
    super(scope, id);
    const { partitionKey, accountIndex } = CustomersTableSchema;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: partitionKey, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      // Only kept agreement events carry it: customers never expire.
      timeToLiveAttribute: CustomersTableSchema.ttlAttribute,
      deletionProtection: removalPolicy !== RemovalPolicy.DESTROY,
      removalPolicy,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: accountIndex.name,
      partitionKey: { name: accountIndex.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: accountIndex.sortKey, type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.ALL,
    });
  }

  /** Read access to customers, by key and by account. */
  public grantRead(grantee: iam.IGrantable): iam.Grant {
    return this.table.grantReadData(grantee);
  }

  /**
   * BatchGetItem by customer key, nothing else: what ingestion needs to find the customers of a
   * batch of usage messages.
   */
  public grantLookup(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({ grantee, actions: ['dynamodb:BatchGetItem'], resourceArns: [this.table.tableArn] });
  }

  /**
   * What registration needs: UpdateItem on the table only (the upsert and the contact details),
   * nothing else.
   */
  public grantRegistrationWrite(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({ grantee, actions: ['dynamodb:UpdateItem'], resourceArns: [this.table.tableArn] });
  }
}
