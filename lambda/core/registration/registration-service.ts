import { customerIdentity, CustomerIdentity, CustomerIdentityError, ResolvedCustomer } from '../customer';
import { ProductConfig } from '../product-config';
import { ContactDetails, ContactField, parseContactDetails } from './contact-details';
import { createRegistrationReference, verifyRegistrationReference } from './registration-reference';

/**
 * Buyer registration, free of AWS: resolve the token, check the product is ours, store the customer
 * (an idempotent upsert), announce it, and hand back a signed reference instead of the token.
 * The ports are implemented by adapters (DynamoDB, Marketplace, EventBridge, SNS) or by tests.
 */

/** Why ResolveCustomer failed, as far as the buyer's page is concerned. */
export type ResolveFailureKind = 'invalid-token' | 'expired-token' | 'throttled' | 'unavailable' | 'disabled';

export class ResolveCustomerFailure extends Error {
  constructor(
    readonly kind: ResolveFailureKind,
    message: string,
  ) {
    super(message);
    this.name = 'ResolveCustomerFailure';
  }
}

export interface CustomerRegistration {
  readonly identity: CustomerIdentity;
  readonly freeTrial: boolean;
  readonly registeredAt: Date;
}

export const REGISTERED_EVENT = 'Marketplace Customer Registered';
export const DETAILS_SUBMITTED_EVENT = 'Marketplace Customer Details Submitted';

export interface ProvisioningEvent {
  /** `Marketplace Customer …`: registration's and the lifecycle's detail-types. */
  readonly detailType: string;
  /** Identifiers only: contact details stay in the Customers table. */
  readonly detail: Record<string, unknown>;
}

export interface RegistrationPorts {
  resolveCustomer(token: string): Promise<ResolvedCustomer>;
  /**
   * Upserts the customer; identity fields and the first registration time are only ever set once.
   * `firstRegistration`: no Registered event has been published for the customer yet (see
   * markRegisteredEventPublished), so a registration whose event failed to publish is still the
   * first when the buyer tries again.
   */
  saveRegistration(registration: CustomerRegistration): Promise<{ readonly firstRegistration: boolean }>;
  /** Records that the customer's first Registered event was published. */
  markRegisteredEventPublished(customerKey: string, at: Date): Promise<void>;
  saveContactDetails(customerKey: string, details: ContactDetails, at: Date): Promise<'saved' | 'unknown-customer'>;
  publish(event: ProvisioningEvent): Promise<void>;
  now(): Date;
  /**
   * Contract products: reads the customer's entitlements (GetEntitlements) and stores them on the
   * customer; returns them for the provisioning event. @default not available: contract products
   * get their entitlements from the lifecycle's License Updated event only
   */
  refreshEntitlements?(identity: CustomerIdentity, at: Date): Promise<readonly unknown[]>;
}

export interface RegistrationSettings {
  readonly products: readonly ProductConfig[];
  readonly referenceSecret: string;
  /** @default DEFAULT_REFERENCE_LIFETIME_SECONDS */
  readonly referenceLifetimeSeconds?: number;
}

export const TOKEN_FIELD = 'x-amzn-marketplace-token';
export const OFFER_TYPE_FIELD = 'x-amzn-marketplace-offer-type';

export type RegistrationOutcome =
  | { readonly kind: 'no-token' }
  | { readonly kind: 'token-rejected'; readonly reason: 'invalid' | 'expired' }
  | { readonly kind: 'unavailable'; readonly retryAfterSeconds: number; readonly cause: string }
  | { readonly kind: 'configuration-error'; readonly cause: string }
  | { readonly kind: 'unknown-product'; readonly productCode: string }
  | {
      readonly kind: 'registered';
      readonly product: ProductConfig;
      readonly identity: CustomerIdentity;
      readonly reference: string;
      readonly firstRegistration: boolean;
      readonly freeTrial: boolean;
    };

export type DetailsOutcome =
  | { readonly kind: 'reference-rejected'; readonly reason: string }
  | { readonly kind: 'unknown-product'; readonly productCode: string }
  | {
      readonly kind: 'details-invalid';
      readonly product: ProductConfig;
      readonly reference: string;
      readonly values: Partial<Record<ContactField, string>>;
      readonly errors: Partial<Record<ContactField, string>>;
    }
  | { readonly kind: 'details-saved'; readonly product: ProductConfig; readonly customerKey: string };

/** Seconds a buyer is asked to wait before retrying when AWS or our storage is busy. */
export const RETRY_AFTER_SECONDS = 5;

export class RegistrationService {
  constructor(
    private readonly ports: RegistrationPorts,
    private readonly settings: RegistrationSettings,
  ) {}

  async register(fields: Readonly<Record<string, string>>): Promise<RegistrationOutcome> {
    const token = fields[TOKEN_FIELD]?.trim();
    if (!token) return { kind: 'no-token' };

    let resolved: ResolvedCustomer;
    try {
      resolved = await this.ports.resolveCustomer(token);
    } catch (error) {
      if (!(error instanceof ResolveCustomerFailure)) throw error;
      switch (error.kind) {
        case 'invalid-token':
          return { kind: 'token-rejected', reason: 'invalid' };
        case 'expired-token':
          return { kind: 'token-rejected', reason: 'expired' };
        case 'disabled':
          return { kind: 'configuration-error', cause: `ResolveCustomer: ${error.message}` };
        default:
          return { kind: 'unavailable', retryAfterSeconds: RETRY_AFTER_SECONDS, cause: `ResolveCustomer: ${error.message}` };
      }
    }

    const product = this.settings.products.find((p) => p.productCode === resolved.productCode);
    if (!product) return { kind: 'unknown-product', productCode: resolved.productCode };

    let identity: CustomerIdentity;
    try {
      identity = customerIdentity(resolved, product.identityMode);
    } catch (error) {
      if (error instanceof CustomerIdentityError) return { kind: 'configuration-error', cause: error.message };
      throw error;
    }

    const now = this.ports.now();
    const freeTrial = fields[OFFER_TYPE_FIELD] === 'free-trial';
    const { firstRegistration } = await this.ports.saveRegistration({ identity, freeTrial, registeredAt: now });
    const entitlements =
      product.contract && this.ports.refreshEntitlements ? await this.ports.refreshEntitlements(identity, now) : undefined;
    await this.ports.publish({
      detailType: REGISTERED_EVENT,
      detail: { ...identityDetail(identity), freeTrial, firstRegistration, ...(entitlements ? { entitlements } : {}) },
    });
    // Only once it is out: should publishing fail, the buyer's retry is still the first registration
    // (a seller provisioning on firstRegistration must not miss it; two racing first registrations
    // may both say so, and EventBridge delivers at least once anyway).
    if (firstRegistration) await this.ports.markRegisteredEventPublished(identity.customerKey, now);
    const reference = createRegistrationReference(identity, this.settings.referenceSecret, now, this.settings.referenceLifetimeSeconds);
    return { kind: 'registered', product, identity, reference, firstRegistration, freeTrial };
  }

  async submitDetails(fields: Readonly<Record<string, string>>): Promise<DetailsOutcome> {
    const now = this.ports.now();
    const check = verifyRegistrationReference(fields.reference ?? '', this.settings.referenceSecret, now);
    if (!check.valid) return { kind: 'reference-rejected', reason: check.reason };
    const { reference } = check;
    const product = this.settings.products.find((p) => p.productCode === reference.productCode);
    if (!product) return { kind: 'unknown-product', productCode: reference.productCode };

    const parsed = parseContactDetails(fields);
    if (!parsed.ok) {
      const values = { company: fields.company, name: fields.name, email: fields.email, phone: fields.phone };
      return { kind: 'details-invalid', product, reference: fields.reference, values, errors: parsed.errors };
    }
    const saved = await this.ports.saveContactDetails(reference.customerKey, parsed.details, now);
    if (saved === 'unknown-customer') return { kind: 'reference-rejected', reason: 'unknown-customer' };
    await this.ports.publish({
      detailType: DETAILS_SUBMITTED_EVENT,
      detail: {
        customerKey: reference.customerKey,
        productCode: reference.productCode,
        customerAWSAccountId: reference.customerAWSAccountId,
        licenseArn: reference.licenseArn,
      },
    });
    return { kind: 'details-saved', product, customerKey: reference.customerKey };
  }
}

function identityDetail(identity: CustomerIdentity): Record<string, unknown> {
  return {
    customerKey: identity.customerKey,
    productCode: identity.productCode,
    identityMode: identity.identityMode,
    customerAWSAccountId: identity.customerAWSAccountId,
    licenseArn: identity.licenseArn,
    customerIdentifier: identity.customerIdentifier,
  };
}
