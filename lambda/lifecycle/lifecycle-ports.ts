import { MarketplaceEntitlementServiceClient } from '@aws-sdk/client-marketplace-entitlement-service';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { entitlementReader } from '../adapters/entitlements';
import { LifecycleStore } from '../adapters/lifecycle-store';
import { LifecyclePorts } from '../core/lifecycle/lifecycle-service';

/** The lifecycle service's ports on real clients, shared by the Lambda handler and the local runner. */
export function lifecyclePorts(options: {
  documents: DynamoDBDocumentClient;
  customersTable: string;
  /** GetEntitlements: a client (the SDK paginator reads every page), or a reader of its own. */
  entitlements: MarketplaceEntitlementServiceClient | LifecyclePorts['getEntitlements'];
  publish: LifecyclePorts['publish'];
  flushUsage: LifecyclePorts['flushUsage'];
}): LifecyclePorts {
  const store = new LifecycleStore(options.documents, options.customersTable);
  return {
    applyStatus: (key, change, identity) => store.applyStatus(key, change, identity),
    customer: (key) => store.customer(key),
    rememberIdentity: (key, identity, activeSince) => store.rememberIdentity(key, identity, activeSince),
    customerKeyForAgreement: (id) => store.customerKeyForAgreement(id),
    customerKeysOfAccount: (account) => store.customerKeysOfAccount(account),
    rememberAgreement: (id, key) => store.rememberAgreement(id, key),
    keepForLater: (signal) => store.keepForLater(signal),
    takeKeptSignals: (id) => store.takeKeptSignals(id),
    getEntitlements: typeof options.entitlements === 'function' ? options.entitlements : entitlementReader(options.entitlements),
    saveEntitlements: (key, list, version) => store.saveEntitlements(key, list, version),
    publish: options.publish,
    flushUsage: options.flushUsage,
  };
}
