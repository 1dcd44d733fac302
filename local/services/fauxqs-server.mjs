// @ts-check
/**
 * Runs fauxqs (an SQS emulator published as ESM only) in a Node process of its own, so CommonJS
 * callers, Jest's module sandbox included, can use it without ESM loader flags.
 * Started by local/services/sqs-local.ts. Contract with that parent:
 * - argv[2]: the port to listen on, 0 for any free port; it listens on 127.0.0.1 only;
 * - prints one JSON line `{"port": <number>}` on stdout once it listens;
 * - exits on SIGTERM / SIGINT, and when its stdin closes (the parent is gone, however it died).
 */
import { buildApp } from 'fauxqs';

const requestedPort = Number(process.argv[2] ?? '0');
// buildApp rather than startFauxqs: the latter always listens on 0.0.0.0, and a test queue has no
// business being reachable from the network.
const app = buildApp({ logger: false });

let closing = false;
/** @param {number} code */
async function shutdown(code) {
  if (closing) return;
  closing = true;
  try {
    await app.close();
  } finally {
    process.exit(code);
  }
}
process.on('SIGTERM', () => void shutdown(0));
process.on('SIGINT', () => void shutdown(0));
process.stdin.on('end', () => void shutdown(0));
process.stdin.on('error', () => void shutdown(0));
process.stdin.resume();

try {
  await app.listen({ port: requestedPort, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address after listen');
  process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);
} catch (error) {
  process.stderr.write(`fauxqs could not start: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
}
