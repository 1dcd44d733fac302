/** Local stand-ins for AWS services, shared by the integration tests and the local runner (`npm start`). */
export { LOCAL_CREDENTIALS, LOCAL_REGION, localClientConfig } from './aws-local';
export {
  checkJava,
  JAVA_INSTALL_HINT,
  JavaUnavailableError,
  MINIMUM_JAVA_MAJOR,
  startDynamoDbLocal,
  type DynamoDbLocalOptions,
  type LocalDynamoDb,
} from './dynamodb-local';
export { findFreePort, isPortFree } from './free-port';
export { startLocalSqs, type LocalSqs, type LocalSqsOptions } from './sqs-local';
