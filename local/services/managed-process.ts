import { ChildProcess, spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Plumbing shared by the local services that run as child processes (DynamoDB Local, fauxqs):
 * keep their last output for error messages, wait until they answer, stop them, and make sure they
 * never outlive the process that started them.
 */

/** Keeps the last characters a child process wrote, so a failure can say why. */
export class OutputTail {
  private text = '';

  constructor(private readonly limit = 8192) {}

  /** Reads a stream to the end; reading also keeps the child from blocking on a full pipe. */
  attach(stream: Readable | null): void {
    if (stream === null) return;
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => this.append(chunk));
  }

  append(chunk: string): void {
    this.text = (this.text + chunk).slice(-this.limit);
  }

  toString(): string {
    return this.text.trim();
  }

  /** A block for an error message, or nothing when the child said nothing. */
  describe(): string {
    const text = this.toString();
    return text === '' ? ' It wrote no output.' : `\nIts last output:\n${text}`;
  }
}

export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Resolves once the child has exited (at once if it already has); never rejects. */
export function exitOf(child: ChildProcess): Promise<void> {
  if (hasExited(child)) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

export function describeExit(child: ChildProcess): string {
  return child.signalCode !== null ? `signal ${child.signalCode}` : `exit code ${child.exitCode}`;
}

// Every guarded child still running, killed synchronously when this process exits normally.
const guarded = new Set<ChildProcess>();
let exitHookInstalled = false;

function killGuardedChildren(): void {
  for (const child of guarded) {
    try {
      child.kill('SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

/*
 * The watchdog covers what an 'exit' hook cannot: this process being killed by a signal (Jest
 * force-killing a worker, SIGKILL, a crash in native code). It holds the read end of a pipe whose
 * only writer is this process; the kernel closes the pipe however this process dies, and the
 * watchdog then kills the child. Java has no "die with your parent" switch, hence a separate process.
 */
const WATCHDOG_SOURCE = `
const pid = Number(process.argv[1]);
const killChild = () => { try { process.kill(pid, 'SIGKILL'); } catch {} process.exit(0); };
process.stdin.on('end', killChild);
process.stdin.on('error', killChild);
process.stdin.resume();
`;

function startWatchdog(pid: number): ChildProcess {
  const watchdog = spawn(process.execPath, ['-e', WATCHDOG_SOURCE, String(pid)], {
    stdio: ['pipe', 'ignore', 'ignore'],
    // Ctrl-C in a terminal must not take the watchdog down before the child it guards.
    detached: true,
  });
  // Neither the watchdog nor its pipe may keep this process alive.
  watchdog.on('error', () => undefined);
  watchdog.stdin?.on('error', () => undefined);
  watchdog.unref();
  (watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  return watchdog;
}

/**
 * Makes sure `child` dies with this process: killed on a normal exit, and, with `watchdog`, also
 * when this process is killed outright.
 */
export function guardChildProcess(child: ChildProcess, options: { watchdog?: boolean } = {}): void {
  if (child.pid === undefined || hasExited(child)) return;
  if (!exitHookInstalled) {
    process.on('exit', killGuardedChildren);
    exitHookInstalled = true;
  }
  guarded.add(child);
  const watchdog = options.watchdog ? startWatchdog(child.pid) : undefined;
  child.once('exit', () => {
    guarded.delete(child);
    // SIGTERM ends the watchdog without it firing (its stdin is still open), so a recycled pid is never hit.
    if (watchdog !== undefined && !hasExited(watchdog)) watchdog.kill('SIGTERM');
  });
}

/** Asks the child to stop (SIGTERM), kills it after `graceMs`, and resolves once it has exited. */
export async function stopChildProcess(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.pid === undefined || hasExited(child)) return;
  const exited = exitOf(child);
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Calls `probe` until it resolves. Fails fast, with the child's output, when the child dies first
 * (even while a probe is in flight), and fails after `timeoutMs` with the last probe error and the
 * child's output. Probes must time out on their own; a probe that never settles is abandoned only
 * when the child dies.
 */
export async function waitUntilAnswering(options: {
  name: string;
  child: ChildProcess;
  output: OutputTail;
  probe: () => Promise<unknown>;
  timeoutMs: number;
  intervalMs?: number;
  /** Set when the child could not even be spawned (the 'error' event). */
  spawnError?: () => Error | undefined;
}): Promise<void> {
  const { name, child, output, probe, timeoutMs, intervalMs = 100 } = options;
  const deadline = Date.now() + timeoutMs;
  const died = (): Error | undefined => {
    const spawnError = options.spawnError?.();
    if (spawnError !== undefined) return new Error(`${name} could not be started: ${spawnError.message}`);
    if (hasExited(child)) return new Error(`${name} stopped (${describeExit(child)}) before it answered.${output.describe()}`);
    return undefined;
  };
  const exited = exitOf(child);
  let lastError: unknown;
  for (;;) {
    const before = died();
    if (before !== undefined) throw before;
    const outcome = await Promise.race([
      probe().then(
        () => 'answered' as const,
        (error: unknown) => {
          lastError = error;
          return 'failed' as const;
        },
      ),
      exited.then(() => 'exited' as const),
    ]);
    // A process that died is never "ready", even if something else answered on its port.
    const after = died();
    if (after !== undefined) throw after;
    if (outcome === 'answered') return;
    if (Date.now() >= deadline) {
      const reason = lastError instanceof Error ? `${lastError.name}: ${lastError.message}` : String(lastError);
      throw new Error(`${name} did not answer within ${timeoutMs} ms (last attempt: ${reason}).${output.describe()}`);
    }
    await sleep(intervalMs);
  }
}
