import { z } from 'zod';

/**
 * The seller's product settings, given as CDK context (`cdk.json`, `--context`) or as construct props.
 * Validated once here so a typo fails `cdk synth` with a readable message instead of a broken deploy.
 */

/** How a product identifies its buyers when metering (see ../shared/marketplace-facts.md, Identity modes). */
export const IDENTITY_MODES = ['license', 'legacy'] as const;
export type IdentityMode = (typeof IDENTITY_MODES)[number];

const dimensionName = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[A-Za-z0-9_.-]+$/, 'dimension API names use letters, digits, "_", "." and "-"');

export const productConfigSchema = z.object({
  /** The product code AWS Marketplace assigned to the listing. */
  productCode: z.string().min(1).max(255),
  /** `license` (Concurrent Agreements, mandatory for products listed from 2026-06-01) or `legacy`. */
  identityMode: z.enum(IDENTITY_MODES).default('license'),
  /** The API names of the product's metering dimensions. */
  dimensions: z.array(dimensionName).min(1).refine((d) => new Set(d).size === d.length, 'dimension names must be unique'),
  /** Where the buyer is sent after registration (the seller's onboarding page), if anywhere. */
  onboardingUrl: z.url({ protocol: /^https?$/ }).optional(),
});
export type ProductConfig = z.infer<typeof productConfigSchema>;

export const stackConfigSchema = z.object({
  products: z
    .array(productConfigSchema)
    .min(1)
    .refine((p) => new Set(p.map((x) => x.productCode)).size === p.length, 'product codes must be unique'),
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

function parseJson(text: string, name: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ConfigError(`Context "${name}" must be JSON, for example [{"productCode":"abc123","dimensions":["requests"]}]`);
  }
}
