import { z } from 'zod';
// The product schema is a domain rule shared with the functions that read the same settings at run time.
import { IDENTITY_MODES, ProductConfig, productListSchema } from '../lambda/core/product-config';

/**
 * The seller's product settings, given as CDK context (`cdk.json`, `--context`) or as construct props.
 * Validated once here so a typo fails `cdk synth` with a readable message instead of a broken deploy.
 */

export { IDENTITY_MODES, productConfigSchema, productListSchema } from '../lambda/core/product-config';
export type { ProductConfig } from '../lambda/core/product-config';
export type IdentityMode = (typeof IDENTITY_MODES)[number];

export const stackConfigSchema = z.object({
  products: productListSchema,
  /** An e-mail address told about new registrations and alarms. */
  adminEmail: z.email().optional(),
});
export type StackConfig = z.infer<typeof stackConfigSchema>;

/** Raised when the CDK context does not describe a valid configuration. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/**
 * Reads the stack configuration from raw values (CDK context values are strings when passed with
 * `--context key=value`, objects when set in cdk.json).
 */
export function parseStackConfig(raw: { products?: unknown; adminEmail?: unknown }): StackConfig {
  const products = typeof raw.products === 'string' ? parseJson(raw.products, 'products') : raw.products;
  const result = stackConfigSchema.safeParse({ products, adminEmail: raw.adminEmail || undefined });
  if (!result.success) {
    throw new ConfigError(`Invalid marketplace configuration:\n${z.prettifyError(result.error)}`);
  }
  return result.data;
}

/**
 * The products a construct was given, checked as the functions will read them (their PRODUCTS
 * variable), with defaults filled in: a product the schema refuses (an http onboarding URL, an
 * empty dimension list, a code given twice) fails synthesis, not every invocation after a deploy.
 */
export function checkedProducts(products: readonly ProductConfig[]): ProductConfig[] {
  const result = productListSchema.safeParse(products);
  if (!result.success) throw new ConfigError(`Invalid products:\n${z.prettifyError(result.error)}`);
  return result.data;
}

function parseJson(text: string, name: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ConfigError(`Context "${name}" must be JSON, for example [{"productCode":"abc123","dimensions":["requests"]}]`);
  }
}
