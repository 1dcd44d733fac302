import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { MarketplaceEntitlementServiceClient } from '@aws-sdk/client-marketplace-entitlement-service';
import { entitlementReader } from '../adapters/entitlements';
import { LifecycleStore } from '../adapters/lifecycle-store';
import { MarketplaceMeteringClient } from '@aws-sdk/client-marketplace-metering';
import { SNSClient } from '@aws-sdk/client-sns';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { snsAdminNotifier } from '../adapters/admin-notifier';
import { CustomerRepository } from '../adapters/customer-repository';
import { eventBridgePublisher } from '../adapters/event-publisher';
import { marketplaceCustomerResolver } from '../adapters/marketplace-customer-resolver';
import { ProvisioningEvent, RegistrationPorts } from '../core/registration/registration-service';

/**
 * The registration service's ports on real clients: shared by the Lambda handler and the local
 * runner, which differ only in endpoints.
 */
export interface RegistrationClients {
  readonly metering: MarketplaceMeteringClient;
  readonly documents: DynamoDBDocumentClient;
  readonly tableName: string;
  readonly events: EventBridgeClient | ((event: ProvisioningEvent) => Promise<void>);
  readonly eventBusName?: string;
  /** Tells the seller's admin about new customers; failures are logged by the caller, never fatal. */
  readonly notifyAdmin?: (event: ProvisioningEvent) => Promise<void>;
  readonly now?: () => Date;
  /** For contract products: GetEntitlements, and the table where the lifecycle keeps entitlements. */
  readonly entitlements?: MarketplaceEntitlementServiceClient;
}

export function registrationPorts(clients: RegistrationClients): RegistrationPorts {
  const customers = new CustomerRepository(clients.documents, clients.tableName);
  const publishEvent =
    typeof clients.events === 'function' ? clients.events : eventBridgePublisher(clients.events, clients.eventBusName ?? 'default');
  return {
    resolveCustomer: marketplaceCustomerResolver(clients.metering),
    saveRegistration: (r) => customers.saveRegistration(r),
    markRegisteredEventPublished: (key, at) => customers.markRegisteredEventPublished(key, at),
    saveContactDetails: (key, details, at) => customers.saveContactDetails(key, details, at),
    publish: async (event) => {
      await publishEvent(event);
      // The admin e-mail is a courtesy: its failure must not fail the buyer's registration.
      await clients.notifyAdmin?.(event).catch(() => undefined);
    },
    now: clients.now ?? (() => new Date()),
    refreshEntitlements: clients.entitlements
      ? async (identity, at) => {
          const list = await entitlementReader(clients.entitlements!)(identity);
          await new LifecycleStore(clients.documents, clients.tableName).saveEntitlements(identity.customerKey, list, at.toISOString());
          return list;
        }
      : undefined,
  };
}

export function adminNotifierOrNone(client: SNSClient, topicArn: string | undefined) {
  return topicArn ? snsAdminNotifier(client, topicArn) : undefined;
}
