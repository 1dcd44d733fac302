import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ContactDetails } from '../core/registration/contact-details';
import { CustomerRegistration } from '../core/registration/registration-service';

/**
 * The Customers table (one item per customer key). Registration writes only identity fields (once),
 * registration times and contact details; lifecycle fields (status, entitlements, event times) belong
 * to the lifecycle handler and are never touched here.
 */
export class CustomerRepository {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async saveRegistration(registration: CustomerRegistration): Promise<{ firstRegistration: boolean }> {
    const { identity, freeTrial, registeredAt } = registration;
    const setOnce: Record<string, unknown> = {
      productCode: identity.productCode,
      identityMode: identity.identityMode,
      customerAWSAccountId: identity.customerAWSAccountId,
      licenseArn: identity.licenseArn,
      customerIdentifier: identity.customerIdentifier,
      firstRegisteredAt: registeredAt.toISOString(),
      freeTrial,
    };
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = { ':now': registeredAt.toISOString(), ':one': 1 };
    const assignments = ['#lastRegisteredAt = :now'];
    names['#lastRegisteredAt'] = 'lastRegisteredAt';
    for (const [field, value] of Object.entries(setOnce)) {
      if (value === undefined) continue;
      names[`#${field}`] = field;
      values[`:${field}`] = value;
      assignments.push(`#${field} = if_not_exists(#${field}, :${field})`);
    }
    const result = await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { customerKey: identity.customerKey },
        UpdateExpression: `SET ${assignments.join(', ')} ADD #registrationCount :one`,
        ExpressionAttributeNames: { ...names, '#registrationCount': 'registrationCount' },
        ExpressionAttributeValues: values,
        // The whole old item: registeredEventAt is not among the attributes this update sets.
        ReturnValues: 'ALL_OLD',
      }),
    );
    return { firstRegistration: result.Attributes?.registeredEventAt === undefined };
  }

  async markRegisteredEventPublished(customerKey: string, at: Date): Promise<void> {
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { customerKey },
        UpdateExpression: 'SET #registeredEventAt = if_not_exists(#registeredEventAt, :at)',
        ExpressionAttributeNames: { '#registeredEventAt': 'registeredEventAt' },
        ExpressionAttributeValues: { ':at': at.toISOString() },
      }),
    );
  }

  async saveContactDetails(customerKey: string, details: ContactDetails, at: Date): Promise<'saved' | 'unknown-customer'> {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { customerKey },
          UpdateExpression: 'SET #contact = :contact, #contactUpdatedAt = :at',
          ConditionExpression: 'attribute_exists(customerKey)',
          ExpressionAttributeNames: { '#contact': 'contact', '#contactUpdatedAt': 'contactUpdatedAt' },
          ExpressionAttributeValues: { ':contact': details, ':at': at.toISOString() },
        }),
      );
      return 'saved';
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return 'unknown-customer';
      throw error;
    }
  }
}
