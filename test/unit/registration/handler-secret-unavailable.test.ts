import type { APIGatewayProxyEvent, Context } from 'aws-lambda';

/**
 * The registration Lambda reads its signing secret (Secrets Manager, cached 5 minutes) for each
 * request that needs it. When Secrets Manager is throttled or unreachable, the buyer gets the 503
 * page with Retry-After that every other transient failure gets, not API Gateway's bare 502.
 */
jest.mock('@aws-lambda-powertools/parameters/secrets', () => ({
  getSecret: jest.fn(async () => {
    const error = new Error('Rate exceeded');
    error.name = 'ThrottlingException';
    throw error;
  }),
}));

const products = [{ productCode: 'prod-license', identityMode: 'license', dimensions: ['requests'] }];

it('a transient Secrets Manager failure: 503 with Retry-After, not an error escaping to API Gateway', async () => {
  Object.assign(process.env, {
    PRODUCTS: JSON.stringify(products),
    CUSTOMERS_TABLE: 'Customers',
    REFERENCE_SECRET_ARN: 'arn:aws:secretsmanager:us-east-1:111122223333:secret:ref',
    AWS_REGION: 'us-east-1',
  });
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { handler } = require('../../../lambda/registration/handler');
  const event = {
    resource: '/register',
    path: '/register',
    httpMethod: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'text/html' },
    body: 'x-amzn-marketplace-token=abc',
    isBase64Encoded: false,
    requestContext: { path: '/prod/register' },
  } as unknown as APIGatewayProxyEvent;
  const context = { functionName: 'f', awsRequestId: 'r', invokedFunctionArn: 'arn', memoryLimitInMB: '512', functionVersion: '1', getRemainingTimeInMillis: () => 10000 } as unknown as Context;
  const outcome = await handler(event, context).then(
    (result: { statusCode: number; headers: Record<string, string> }) => ({ statusCode: result.statusCode, retryAfter: result.headers['Retry-After'] }),
    (error: Error) => ({ escaped: `${error.name}: ${error.message}` }),
  );
  expect(outcome).toEqual({ statusCode: 503, retryAfter: '5' });
});
