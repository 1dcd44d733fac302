import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { MeteringTableSchema as Schema } from '../lambda/core/metering-table-schema';
import { UsageJournalSchema as JournalSchema } from '../lambda/core/usage-journal-schema';

export interface MeteringLedgerTableProps {
  /**
   * What happens to the ledger and the Usage journal when the stack is deleted. The ledger is the
   * record of what was billed, and the journal holds usage not yet billed: keep them. DESTROY (a
   * test stack) also turns their deletion protection off, which would otherwise make the stack's
   * deletion fail.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The Metering ledger and the Usage journal, two tables with the same protection (point-in-time
 * recovery, AWS-managed encryption, deletion protection, retained by default).
 * - The ledger holds the hour buckets (customer x dimension x UTC hour, with their audit trail) and
 *   a sparse index of the buckets that still need metering (the work index).
 * - The journal holds what ingestion writes: the usage entries (one per queue message and hour), and
 *   what metering writes while folding them into buckets: hour seals, early-metering records and
 *   the hashes of the eventIds an hour counted. All of it expires through TTL.
 */
export class MeteringLedgerTable extends Construct {
  /** The Metering ledger: hour buckets and the work index. */
  public readonly table: dynamodb.Table;
  /**
   * The Usage journal (keys in lambda/core/usage-journal-schema.ts): usage entries, hour seals,
   * early-metering records and counted eventId hashes, expired by TTL on `expiresAt`. No index.
   */
  public readonly journalTable: dynamodb.Table;

  constructor(scope: Construct, id: string, props: MeteringLedgerTableProps = {}) {
    super(scope, id);
    // Both tables are the record of what was counted and billed: encrypted, recoverable, kept.
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const protection = {
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: removalPolicy !== RemovalPolicy.DESTROY,
      removalPolicy,
    };
    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: Schema.partitionKey, type: dynamodb.AttributeType.STRING },
      timeToLiveAttribute: Schema.ttlAttribute,
      ...protection,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: Schema.workIndex.name,
      partitionKey: { name: Schema.workIndex.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: Schema.workIndex.sortKey, type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.ALL,
    });
    this.journalTable = new dynamodb.Table(this, 'JournalTable', {
      partitionKey: { name: JournalSchema.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: JournalSchema.sortKey, type: dynamodb.AttributeType.STRING },
      timeToLiveAttribute: JournalSchema.ttlAttribute,
      ...protection,
    });
  }

  /**
   * What ingestion needs: appending usage entries to the journal, PutItem and ConditionCheckItem
   * (entries are written in TransactWriteItems with a ConditionCheck on their hour's seal) and Query
   * (what a redelivered message's earlier deliveries counted). Nothing on the ledger.
   */
  public grantAppendUsage(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      // Entries are written in TransactWriteItems with a seal check; Query reads a message's entries
      // (a redelivery, or a refusal another delivery may have counted).
      actions: ['dynamodb:PutItem', 'dynamodb:ConditionCheckItem', 'dynamodb:Query'],
      resourceArns: [this.journalTable.tableArn],
    });
  }

  /**
   * What metering needs (the metering function): on the ledger, read the work index and write
   * buckets; on the journal, seal hours, query entries and write journal items. The same actions on
   * both tables (BatchWriteItem: folded buckets, audit writes and hour seals go 25 a call;
   * BatchGetItem: the buckets to meter are read back), and DeleteItem on the journal (a customer's
   * final usage flush, once done).
   */
  public grantMetering(grantee: iam.IGrantable): iam.Grant {
    const actions = ['dynamodb:Query', 'dynamodb:UpdateItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:BatchWriteItem', 'dynamodb:BatchGetItem'];
    return iam.Grant.addToPrincipal({
      grantee,
      actions,
      resourceArns: [this.table.tableArn, `${this.table.tableArn}/index/${Schema.workIndex.name}`],
    }).combine(iam.Grant.addToPrincipal({ grantee, actions: [...actions, 'dynamodb:DeleteItem'], resourceArns: [this.journalTable.tableArn] }));
  }

  /**
   * What the lifecycle function needs when a customer's access ends: PutItem on the journal, to
   * schedule the final usage flush that the metering function carries out.
   */
  public grantScheduleFinalUsage(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({ grantee, actions: ['dynamodb:PutItem'], resourceArns: [this.journalTable.tableArn] });
  }
}
