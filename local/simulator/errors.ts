/**
 * An error answered on the wire as AWS does for JSON 1.1 services: `{"__type", "message"}` with
 * HTTP 400, or 500 for InternalServiceErrorException. The SDK maps `__type` to its exception class.
 */
export class MarketplaceApiError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly httpStatus: number = type === 'InternalServiceErrorException' ? 500 : 400,
  ) {
    super(message);
    this.name = type;
  }
}

/** The error names each operation is modelled to raise (the ones a fault may inject). */
export const MODELLED_ERRORS = {
  ResolveCustomer: [
    'InvalidTokenException',
    'ExpiredTokenException',
    'ThrottlingException',
    'InternalServiceErrorException',
    'DisabledApiException',
  ],
  BatchMeterUsage: [
    'InternalServiceErrorException',
    'InvalidProductCodeException',
    'InvalidUsageDimensionException',
    'InvalidTagException',
    'InvalidUsageAllocationsException',
    'InvalidCustomerIdentifierException',
    'InvalidLicenseException',
    'TimestampOutOfBoundsException',
    'ThrottlingException',
    'DisabledApiException',
  ],
  GetEntitlements: ['InvalidParameterException', 'ThrottlingException', 'InternalServiceErrorException'],
} as const;

export type OperationName = keyof typeof MODELLED_ERRORS;
export const OPERATION_NAMES = Object.keys(MODELLED_ERRORS) as OperationName[];
