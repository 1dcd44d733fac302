import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SNSClient } from '@aws-sdk/client-sns';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { getSecret } from '@aws-lambda-powertools/parameters/secrets';
import middy from '@middy/core';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { adminNotifierOrNone, registrationPorts } from './ports';
import { handleRegistrationRequest } from './http';
import { parseProductList } from '../core/product-config';
import { DEFAULT_MAX_BODY_BYTES } from '../core/registration/request-body';
import { RegistrationService } from '../core/registration/registration-service';
import { meteringClient } from '../adapters/marketplace-customer-resolver';
import { entitlementClient } from '../adapters/entitlements';
import { requiredEnv } from '../handler-environment';

/**
 * The registration Lambda behind API Gateway: `POST /register` (the fulfillment URL), `GET /register`,
 * `POST /register/details`. Configuration comes from the environment the stack sets.
 */

const logger = new Logger({ serviceName: 'marketplace-registration' });
const products = parseProductList(process.env.PRODUCTS);
const ports = registrationPorts({
  metering: meteringClient({ endpoint: process.env.MARKETPLACE_ENDPOINT || undefined }),
  documents: DynamoDBDocumentClient.from(new DynamoDBClient({}), { marshallOptions: { removeUndefinedValues: true } }),
  tableName: requiredEnv('CUSTOMERS_TABLE'),
  events: new EventBridgeClient({}),
  eventBusName: process.env.EVENT_BUS_NAME || 'default',
  entitlements: products.some((p) => p.contract)
    ? entitlementClient({ endpoint: process.env.MARKETPLACE_ENTITLEMENT_ENDPOINT || undefined })
    : undefined,
  notifyAdmin: adminNotifierOrNone(new SNSClient({}), process.env.ADMIN_TOPIC_ARN),
});
const maxBodyBytes = Number(process.env.MAX_BODY_BYTES || DEFAULT_MAX_BODY_BYTES);

/** The signing secret, from Secrets Manager, cached by Powertools between invocations. */
async function referenceSecret(): Promise<string> {
  const secret = await getSecret<string>(requiredEnv('REFERENCE_SECRET_ARN'), { maxAge: 300 });
  if (!secret) throw new Error('The reference signing secret is empty');
  return secret;
}

async function registration(event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> {
  // Made inside the request's error handling: Secrets Manager throttled or unreachable is a 503 page.
  const service = async () => new RegistrationService(ports, { products, referenceSecret: await referenceSecret() });
  return handleRegistrationRequest(event, service, logger, { maxBodyBytes });
}

export const handler = middy(registration).use(injectLambdaContext(logger));
