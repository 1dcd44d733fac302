import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

export interface HandlerFunctionProps {
  /** Folder under `lambda/` holding `handler.ts`. */
  readonly handlerFolder: 'registration' | 'ingest' | 'metering' | 'lifecycle';
  readonly description: string;
  readonly environment: Record<string, string>;
  /** @default Duration.seconds(30) */
  readonly timeout?: Duration;
  /** @default 512 */
  readonly memorySize?: number;
  /** @default logs.RetentionDays.ONE_YEAR */
  readonly logRetention?: logs.RetentionDays;
  /** @default no reservation */
  readonly reservedConcurrentExecutions?: number;
}

/**
 * The handler's source: `handler.ts` in this repository, `handler.js` in the built package (dist/),
 * which is what a seller's CDK app gets from npm.
 */
function handlerEntry(folder: HandlerFunctionProps['handlerFolder']): string {
  const base = path.join(__dirname, '..', 'lambda', folder, 'handler');
  return existsSync(`${base}.ts`) ? `${base}.ts` : `${base}.js`;
}

/**
 * A function of this stack, built the same way for every handler: Node.js 22 on arm64, bundled by
 * the local esbuild (no Docker) with the AWS SDK version the tests ran against, X-Ray tracing, and a
 * retained log group.
 */
export function handlerFunction(scope: Construct, id: string, props: HandlerFunctionProps): NodejsFunction {
  const fn = new NodejsFunction(scope, id, {
    description: props.description,
    entry: handlerEntry(props.handlerFolder),
    handler: 'handler',
    runtime: lambda.Runtime.NODEJS_22_X,
    architecture: lambda.Architecture.ARM_64,
    memorySize: props.memorySize ?? 512,
    timeout: props.timeout ?? Duration.seconds(30),
    tracing: lambda.Tracing.ACTIVE,
    reservedConcurrentExecutions: props.reservedConcurrentExecutions,
    logGroup: new logs.LogGroup(scope, `${id}Logs`, {
      retention: props.logRetention ?? logs.RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.RETAIN,
    }),
    environment: { ...props.environment, NODE_OPTIONS: '--enable-source-maps' },
    // bundleAwsSDK: the runtime's own SDK would differ from the pinned one the tests exercised.
    bundling: { format: OutputFormat.CJS, target: 'node22', minify: true, sourceMap: true, bundleAwsSDK: true },
  });
  const nag = Validations.of(fn);
  nag.acknowledge({
    id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
    reason: "AWSLambdaBasicExecutionRole only allows writing the function's own logs.",
  });
  nag.acknowledge({
    id: 'AwsSolutions-IAM5[Resource::*]',
    reason:
      'X-Ray PutTraceSegments/PutTelemetryRecords and the aws-marketplace actions (ResolveCustomer, BatchMeterUsage, GetEntitlements) support no resource-level permissions: the resource must be *.',
  });
  nag.acknowledge({ id: 'AwsSolutions-L1', reason: 'Node.js 22 is the runtime this project builds and tests for.' });
  return fn;
}
