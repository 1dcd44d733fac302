import { z } from 'zod';

/**
 * A product the stack serves. The same schema validates CDK context at synth time and the
 * configuration handed to the Lambda functions at run time.
 */

export const IDENTITY_MODES = ['license', 'legacy'] as const;

const dimensionName = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[A-Za-z0-9_.-]+$/, 'dimension API names use letters, digits, "_", "." and "-"');

/** Buyers' browsers go there: https, except http on the local machine for development. */
const httpsUrl = z
  .url({ protocol: /^https?$/ })
  .refine((url) => {
    const { protocol, hostname } = new URL(url);
    return protocol === 'https:' || ['localhost', '127.0.0.1', '[::1]'].includes(hostname);
  }, 'must be an https URL (http only for localhost)');

const snsTopicArn = z.string().regex(/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]+$/, 'an SNS topic ARN');

export const productConfigSchema = z.object({
  /** The product code AWS Marketplace assigned to the listing. */
  productCode: z.string().min(1).max(255),
  /** `license` (Concurrent Agreements, mandatory for products listed from 2026-06-01) or `legacy`. */
  identityMode: z.enum(IDENTITY_MODES).default('license'),
  /** The API names of the product's metering dimensions. */
  dimensions: z
    .array(dimensionName)
    .min(1)
    .refine((d) => new Set(d).size === d.length, 'dimension names must be unique'),
  /** The seller's onboarding page: when set, registration answers 303 there with a signed reference. */
  onboardingUrl: httpsUrl.optional(),
  /** The seller's product, linked from the thank-you page. */
  productUrl: httpsUrl.optional(),
  /** A name for buyers to read on the registration pages. @default the product code */
  displayName: z.string().min(1).max(200).optional(),
  /** A contract product: its customers' entitlements are read (GetEntitlements) when they register. @default false */
  contract: z.boolean().optional(),
  /**
   * Legacy products: the SNS topics AWS Marketplace gave the product
   * (`aws-mp-subscription-notification-<code>`, `aws-mp-entitlement-notification-<code>`, us-east-1).
   */
  subscriptionTopicArn: snsTopicArn.optional(),
  entitlementTopicArn: snsTopicArn.optional(),
});
export type ProductConfig = z.infer<typeof productConfigSchema>;

export const productListSchema = z
  .array(productConfigSchema)
  .min(1)
  .refine((p) => new Set(p.map((x) => x.productCode)).size === p.length, 'product codes must be unique');

/** Parses the products list the stack hands to its functions (environment variable, JSON). */
export function parseProductList(json: string | undefined): ProductConfig[] {
  if (!json) throw new Error('No products configured');
  return productListSchema.parse(JSON.parse(json));
}
