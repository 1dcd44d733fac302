import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { MarketplaceMeteringClient } from '@aws-sdk/client-marketplace-metering';
import { MarketplaceEntitlementServiceClient } from '@aws-sdk/client-marketplace-entitlement-service';
import { ProductConfig } from '../lambda/core/product-config';
import { ProvisioningEvent, RegistrationService } from '../lambda/core/registration/registration-service';
import { DEFAULT_MAX_BODY_BYTES } from '../lambda/core/registration/request-body';
import { handleRegistrationRequest, RegistrationLog } from '../lambda/registration/http';
import { registrationPorts } from '../lambda/registration/ports';
import { LocalRoute } from './api-gateway-server';
import { createCustomersTable } from './local-tables';
import { localClientConfig } from './services';

/**
 * The registration handler wired to local services: the simulator for ResolveCustomer, DynamoDB
 * Local for the Customers table, and an in-memory list instead of EventBridge.
 */

export interface LocalRegistrationOptions {
  readonly simulatorUrl: string;
  readonly dynamoDbEndpoint: string;
  readonly products: readonly ProductConfig[];
  /** @default 'Customers' */
  readonly tableName?: string;
  /** The reference signing secret (at least 32 characters). */
  readonly referenceSecret: string;
  readonly log?: RegistrationLog;
  /** Called with every provisioning event, after it is kept in `events`. */
  readonly onEvent?: (event: ProvisioningEvent) => void;
  /** The local stack's time (first registration times are compared with the simulator's licences). @default the real time */
  readonly now?: () => Date;
}

export interface LocalRegistration {
  readonly routes: readonly LocalRoute[];
  /** Every provisioning event published so far. */
  readonly events: ProvisioningEvent[];
  readonly tableName: string;
  readonly documents: DynamoDBDocumentClient;
}

export const SILENT_LOG: RegistrationLog = { info: () => undefined, error: () => undefined };

export async function createLocalRegistration(options: LocalRegistrationOptions): Promise<LocalRegistration> {
  const tableName = options.tableName ?? 'Customers';
  const dynamoDb = new DynamoDBClient(localClientConfig(options.dynamoDbEndpoint));
  await createCustomersTable(dynamoDb, tableName);
  const documents = DynamoDBDocumentClient.from(dynamoDb, { marshallOptions: { removeUndefinedValues: true } });
  const events: ProvisioningEvent[] = [];
  const ports = registrationPorts({
    metering: new MarketplaceMeteringClient(localClientConfig(options.simulatorUrl)),
    entitlements: new MarketplaceEntitlementServiceClient(localClientConfig(options.simulatorUrl)),
    documents,
    tableName,
    events: async (event) => {
      events.push(event);
      options.onEvent?.(event);
    },
    now: options.now,
  });
  const service = new RegistrationService(ports, { products: options.products, referenceSecret: options.referenceSecret });
  const log = options.log ?? SILENT_LOG;
  const handler: LocalRoute['handler'] = (event) =>
    handleRegistrationRequest(event, service, log, { maxBodyBytes: DEFAULT_MAX_BODY_BYTES });
  return {
    routes: [
      { method: 'GET', resource: '/register', handler },
      { method: 'POST', resource: '/register', handler },
      { method: 'POST', resource: '/register/details', handler },
    ],
    events,
    tableName,
    documents,
  };
}

