import { ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import { ListQueuesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { localClientConfig } from './aws-local';
import { describeExit, guardChildProcess, OutputTail, stopChildProcess, waitUntilAnswering } from './managed-process';

/**
 * A local SQS endpoint for `@aws-sdk/client-sqs` v3 (JSON protocol), served by fauxqs.
 *
 * fauxqs is ESM-only. Loading it in-process from this CommonJS code would need `import()`, which
 * Jest's CommonJS sandbox refuses without `--experimental-vm-modules`; a child process running
 * fauxqs-server.mjs behaves the same under Jest, tsx and plain Node, and keeps its timers and sockets
 * out of the caller's event loop.
 */

export interface LocalSqsOptions {
  /** The port to listen on; by default the OS picks a free one (no race). */
  port?: number;
  /** How long to wait for the first answer (default 15 s). */
  startTimeoutMs?: number;
}

export interface LocalSqs {
  /** `http://127.0.0.1:<port>`, for the `endpoint` of an `SQSClient`. */
  readonly endpoint: string;
  readonly port: number;
  /** Stops the server and resolves once its process has exited (its port is free again). */
  stop(): Promise<void>;
}

const SERVER_SCRIPT = path.join(__dirname, 'fauxqs-server.mjs');

/** Starts fauxqs on 127.0.0.1 and resolves once it answers ListQueues. */
export async function startLocalSqs(options: LocalSqsOptions = {}): Promise<LocalSqs> {
  const timeoutMs = options.startTimeoutMs ?? 15_000;
  const startedAt = Date.now();
  const child = spawn(process.execPath, [SERVER_SCRIPT, String(options.port ?? 0)], {
    // Plain Node runs the .mjs: no loader of the parent (tsx, ts-jest) is needed or inherited.
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let spawnError: Error | undefined;
  child.on('error', (error) => {
    spawnError = error;
  });
  // No watchdog needed: the server exits by itself when its stdin (our pipe) closes.
  guardChildProcess(child);
  child.stdin?.on('error', () => undefined);
  const output = new OutputTail();

  try {
    const port = await readListeningPort(child, output, timeoutMs);
    const endpoint = `http://127.0.0.1:${port}`;
    const client = new SQSClient({
      ...localClientConfig(endpoint),
      maxAttempts: 1,
      // Without throwOnRequestTimeout the SDK only logs a request that never gets an answer.
      requestHandler: { connectionTimeout: 1000, requestTimeout: 2000, throwOnRequestTimeout: true },
    });
    try {
      await waitUntilAnswering({
        name: `fauxqs on ${endpoint}`,
        child,
        output,
        probe: () => client.send(new ListQueuesCommand({})),
        timeoutMs: Math.max(1000, timeoutMs - (Date.now() - startedAt)),
        spawnError: () => spawnError,
      });
    } finally {
      client.destroy();
    }
    let stopping: Promise<void> | undefined;
    return {
      endpoint,
      port,
      stop: () => (stopping ??= stopChildProcess(child)),
    };
  } catch (error) {
    await stopChildProcess(child);
    throw error;
  }
}

/** Waits for the server's `{"port": n}` line, while keeping everything it writes for error messages. */
function readListeningPort(child: ChildProcess, output: OutputTail, timeoutMs: number): Promise<number> {
  output.attach(child.stderr);
  return new Promise<number>((resolve, reject) => {
    let pending = '';
    let settled = false;
    const finish = (result: { port: number } | { error: Error }): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.off('exit', onExit);
      child.off('error', onError);
      if ('port' in result) resolve(result.port);
      else reject(result.error);
    };
    const onExit = (): void =>
      finish({ error: new Error(`fauxqs stopped (${describeExit(child)}) before it listened.${output.describe()}`) });
    const onError = (error: Error): void => finish({ error: new Error(`fauxqs could not be started: ${error.message}`) });
    const timer = setTimeout(
      () => finish({ error: new Error(`fauxqs did not start listening within ${timeoutMs} ms.${output.describe()}`) }),
      timeoutMs,
    );

    child.once('exit', onExit);
    child.once('error', onError);
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      output.append(chunk);
      if (settled) return;
      pending += chunk;
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const port = parsePortLine(pending.slice(0, newline));
        pending = pending.slice(newline + 1);
        if (port !== undefined) {
          finish({ port });
          return;
        }
      }
    });
  });
}

function parsePortLine(line: string): number | undefined {
  try {
    const parsed: unknown = JSON.parse(line);
    if (typeof parsed === 'object' && parsed !== null && 'port' in parsed) {
      const port = (parsed as { port: unknown }).port;
      if (typeof port === 'number' && Number.isInteger(port) && port > 0) return port;
    }
  } catch {
    // Not our line.
  }
  return undefined;
}
