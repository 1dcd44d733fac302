/** The usageEvent definition of schema/usage-message.v1.json, compiled by ajv (see the .js beside). */
declare function validateUsageEvent(
  data: unknown,
  context?: { readonly instancePath: string; readonly dynamicAnchors: Readonly<Record<string, unknown>> },
): boolean;
export default validateUsageEvent;
