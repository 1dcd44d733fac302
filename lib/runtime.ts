/**
 * The package's run-time surface, for the seller's own services and onboarding page:
 * `import { UsageProducer } from 'aws-marketplace-saas-integration/runtime'`. Nothing here loads
 * aws-cdk-lib, constructs or cdk-nag (a test bundles this entry and checks), so a service or a
 * Lambda function pays only for the AWS SDK's SQS client, zod and ajv's runtime (the compiled usage
 * schema). The package's main entry re-exports all of it beside the constructs.
 */

// For the seller's onboarding page: check the `reference` query parameter it receives.
export {
  verifyRegistrationReference,
  type RegistrationReference,
  type ReferenceCheck,
} from '../lambda/core/registration/registration-reference';
// For the seller's services: report usage to the usage queue.
export { UsageProducer, type UsageProducerOptions, type SendUsageResult, type UnsentUsage } from '../lambda/adapters/usage-producer';
export { usageEventSchema, type UsageEvent, MAX_EVENTS_PER_MESSAGE } from '../lambda/core/usage/usage-event';
// For the seller's operators: send the usage dead-letter queue's messages again once their cause is mended.
export {
  UsageDeadLetterRedrive,
  type UsageDeadLetterRedriveOptions,
  type UsageDeadLetterRedriveReport,
} from '../lambda/adapters/usage-dead-letter-redrive';
export { REDRIVE_REASONS_BY_DEFAULT } from '../lambda/core/usage/dead-letter-redrive';
