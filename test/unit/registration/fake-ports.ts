/**
 * In-memory stand-ins for the registration service's ports (ResolveCustomer, the Customers table,
 * EventBridge, the clock), for unit tests of the service and of the HTTP routes. They keep the
 * contract the real adapters keep: identity fields and the first registration time are set once,
 * contact details only for a customer that exists.
 */
import { ResolvedCustomer } from '../../../lambda/core/customer';
import { ProductConfig } from '../../../lambda/core/product-config';
import { ContactDetails } from '../../../lambda/core/registration/contact-details';
import {
  CustomerRegistration,
  ProvisioningEvent,
  RegistrationPorts,
  ResolveCustomerFailure,
} from '../../../lambda/core/registration/registration-service';

export const SECRET = 'unit-test-secret-that-is-long-enough-0123456789';
export const NOW = new Date('2026-11-02T10:20:00Z');

export const ACCOUNT = '111122223333';
export const LICENSE_ARN = 'arn:aws:license-manager::111122223333:license:l-0123456789abcdef0123';
export const LICENSE_ID = 'l-0123456789abcdef0123';

export const LICENSE_PRODUCT: ProductConfig = {
  productCode: 'prod-license',
  identityMode: 'license',
  dimensions: ['requests'],
  displayName: 'License Product',
};
export const LEGACY_PRODUCT: ProductConfig = {
  productCode: 'prod-legacy',
  identityMode: 'legacy',
  dimensions: ['requests'],
};
export const ONBOARDING_PRODUCT: ProductConfig = {
  productCode: 'prod-onboarding',
  identityMode: 'license',
  dimensions: ['requests'],
  onboardingUrl: 'https://app.example.com/onboard?source=marketplace',
  productUrl: 'https://app.example.com/',
};
export const PRODUCTS = [LICENSE_PRODUCT, LEGACY_PRODUCT, ONBOARDING_PRODUCT];

/** A token with every character that a double decode (or a `+`-as-space decode) would corrupt. */
export const NASTY_TOKEN = 'mpt+AbC/dEf==%2Bx.y:z_w-v+/=';

export interface StoredCustomer {
  identity: CustomerRegistration['identity'];
  freeTrial: boolean;
  firstRegisteredAt: Date;
  lastRegisteredAt: Date;
  registrationCount: number;
  /** When the first Registered event went out. */
  registeredEventAt?: Date;
  contact?: ContactDetails;
  contactUpdatedAt?: Date;
}

export class FakePorts implements RegistrationPorts {
  /** What ResolveCustomer answers per token; an Error (or ResolveCustomerFailure) is thrown. */
  readonly tokens = new Map<string, ResolvedCustomer | Error>();
  readonly customers = new Map<string, StoredCustomer>();
  readonly events: ProvisioningEvent[] = [];
  readonly resolvedTokens: string[] = [];
  /** Makes the next calls of a port throw. */
  failSave?: Error;
  failContact?: Error;
  failPublish?: Error;
  clock = NOW;

  async resolveCustomer(token: string): Promise<ResolvedCustomer> {
    this.resolvedTokens.push(token);
    const answer = this.tokens.get(token);
    if (answer === undefined) throw new ResolveCustomerFailure('invalid-token', 'InvalidTokenException');
    if (answer instanceof Error) throw answer;
    return answer;
  }

  async saveRegistration(registration: CustomerRegistration): Promise<{ readonly firstRegistration: boolean }> {
    if (this.failSave) throw this.failSave;
    const existing = this.customers.get(registration.identity.customerKey);
    if (existing) {
      existing.lastRegisteredAt = registration.registeredAt;
      existing.registrationCount += 1;
      return { firstRegistration: existing.registeredEventAt === undefined };
    }
    this.customers.set(registration.identity.customerKey, {
      identity: registration.identity,
      freeTrial: registration.freeTrial,
      firstRegisteredAt: registration.registeredAt,
      lastRegisteredAt: registration.registeredAt,
      registrationCount: 1,
    });
    return { firstRegistration: true };
  }

  async markRegisteredEventPublished(customerKey: string, at: Date): Promise<void> {
    const customer = this.customers.get(customerKey);
    if (customer) customer.registeredEventAt ??= at;
  }

  async saveContactDetails(customerKey: string, details: ContactDetails, at: Date): Promise<'saved' | 'unknown-customer'> {
    if (this.failContact) throw this.failContact;
    const customer = this.customers.get(customerKey);
    if (!customer) return 'unknown-customer';
    customer.contact = details;
    customer.contactUpdatedAt = at;
    return 'saved';
  }

  async publish(event: ProvisioningEvent): Promise<void> {
    if (this.failPublish) throw this.failPublish;
    this.events.push(event);
  }

  now(): Date {
    return this.clock;
  }

  /** A licence-mode buyer of `product` whose token resolves. */
  licenseBuyer(token: string, product: ProductConfig = LICENSE_PRODUCT, licenseArn = LICENSE_ARN): ResolvedCustomer {
    const resolved = { productCode: product.productCode, customerAWSAccountId: ACCOUNT, licenseArn };
    this.tokens.set(token, resolved);
    return resolved;
  }

  /** A legacy buyer: ResolveCustomer also returns the CustomerIdentifier. */
  legacyBuyer(token: string, customerIdentifier = 'cust-AbC123', product: ProductConfig = LEGACY_PRODUCT): ResolvedCustomer {
    const resolved = { productCode: product.productCode, customerAWSAccountId: ACCOUNT, licenseArn: LICENSE_ARN, customerIdentifier };
    this.tokens.set(token, resolved);
    return resolved;
  }
}
