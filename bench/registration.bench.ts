import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { build } from 'esbuild';
import { DEMO_PRODUCT, startLocalEnvironment } from '../local/local-environment';
import { percentile, printFigures } from './figures';

/**
 * The registration endpoint: how long a buyer's form POST takes end to end on the local stack, how
 * big the registration Lambda's bundle is, and how long a fresh Node.js process takes to load it
 * (the module-loading part of a Lambda cold start).
 */
const REGISTRATIONS = 1000;
const WARM_UP = 100;
const COLD_RUNS = 15;
const ENTRY = path.join(__dirname, '..', 'lambda', 'registration', 'handler.ts');

export async function benchRegistration(): Promise<void> {
  await benchRegistrationLatency();
  const dir = mkdtempSync(path.join(tmpdir(), 'registration-bundle-'));
  try {
    await benchBundle(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Form POSTs of fresh tokens to the local API (simulator ResolveCustomer + DynamoDB Local upsert), one at a time. */
async function benchRegistrationLatency(): Promise<void> {
  const env = await startLocalEnvironment({ apiPort: 0, simulatorPort: 0 });
  try {
    // Outside the timed part: one new customer (and its token) per registration.
    const tokens: string[] = [];
    for (let i = 0; i < WARM_UP + REGISTRATIONS; i++) {
      const res = await fetch(`${env.simulator.url}/_admin/customers`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ productCode: env.product.productCode }),
      });
      if (res.status !== 201) throw new Error(`the simulator refused a customer: ${res.status} ${await res.text()}`);
      tokens.push(((await res.json()) as { registrationToken: string }).registrationToken);
    }

    const register = async (token: string) => {
      const res = await fetch(env.registrationUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' },
        body: new URLSearchParams({ 'x-amzn-marketplace-token': token }).toString(),
      });
      const page = await res.text();
      if (res.status !== 200 || !page.includes('name="reference"')) {
        throw new Error(`registration failed: ${res.status} ${page.slice(0, 200)}`);
      }
    };
    for (const token of tokens.slice(0, WARM_UP)) await register(token);
    const samples: number[] = [];
    const started = performance.now();
    for (const token of tokens.slice(WARM_UP)) {
      const t0 = performance.now();
      await register(token);
      samples.push(performance.now() - t0);
    }
    const seconds = (performance.now() - started) / 1000;

    const stored = await countCustomers(env);
    if (stored !== WARM_UP + REGISTRATIONS) throw new Error(`expected ${WARM_UP + REGISTRATIONS} customers stored, found ${stored}`);
    printFigures(`Registration, local stack (form POST -> ResolveCustomer on the simulator -> DynamoDB Local), ${REGISTRATIONS} new customers one at a time after ${WARM_UP} warm-up`, {
      'p50 (ms)': percentile(samples, 50),
      'p99 (ms)': percentile(samples, 99),
      'max (ms)': Math.max(...samples),
      'registrations/s': REGISTRATIONS / seconds,
    });
  } finally {
    await env.stop();
  }
}

async function countCustomers(env: Awaited<ReturnType<typeof startLocalEnvironment>>): Promise<number> {
  let count = 0;
  let start: Record<string, unknown> | undefined;
  do {
    const page = await env.registration.documents.send(
      // Customers only: the lifecycle keeps agreement items in the same table.
      new ScanCommand({
        TableName: env.registration.tableName,
        Select: 'COUNT',
        ExclusiveStartKey: start,
        FilterExpression: 'begins_with(customerKey, :customer)',
        ExpressionAttributeValues: { ':customer': 'license#' },
      }),
    );
    count += page.Count ?? 0;
    start = page.LastEvaluatedKey;
  } while (start);
  return count;
}

/**
 * The handler bundled as lib/handler-function.ts has NodejsFunction bundle it (CJS, node22, minified,
 * source map, platform node, bundleAwsSDK: every dependency, so the pinned SDK the tests ran against
 * is the one deployed). A bundle leaving `@aws-sdk/*` to the runtime is measured for comparison.
 */
async function benchBundle(dir: string): Promise<void> {
  const asDeployed = await bundle(path.join(dir, 'runtime-sdk'), ['@aws-sdk/*']);
  const allBundled = await bundle(path.join(dir, 'as-deployed'), []);

  const childEnv: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    PRODUCTS: JSON.stringify([DEMO_PRODUCT]),
    CUSTOMERS_TABLE: 'Customers',
    REFERENCE_SECRET_ARN: 'arn:aws:secretsmanager:us-east-1:111122223333:secret:registration-reference-AbCdEf',
    AWS_REGION: 'us-east-1',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  // On Lambda the runtime's SDK is found through NODE_PATH (/var/runtime/node_modules); here, the project's.
  const sdkPath = { NODE_PATH: path.join(__dirname, '..', 'node_modules') };
  const variants = {
    'as deployed (every dependency bundled)': { file: allBundled.file, env: childEnv },
    'as deployed with NODE_OPTIONS=--enable-source-maps (the stack sets it)': {
      file: allBundled.file,
      env: { ...childEnv, NODE_OPTIONS: '--enable-source-maps' },
    },
    '@aws-sdk/* left to the runtime (comparison)': { file: asDeployed.file, env: { ...childEnv, ...sdkPath } },
  };
  // Interleaved, so a machine busy for a moment weighs on every variant alike; one discarded run
  // each first, so the files are in the OS page cache for all of them.
  const samples = Object.fromEntries(Object.keys(variants).map((name) => [name, [] as number[]]));
  for (let run = -1; run < COLD_RUNS; run++) {
    for (const [name, variant] of Object.entries(variants)) {
      const ms = coldRequire(variant.file, variant.env);
      if (run >= 0) samples[name].push(ms);
    }
  }
  printFigures(`Registration Lambda bundle (esbuild, as lib/handler-function.ts bundles it)`, {
    'as deployed (every dependency bundled): index.js bytes': allBundled.bytes,
    'as deployed: index.js gzip bytes': allBundled.gzipBytes,
    'as deployed: index.js.map bytes': allBundled.mapBytes,
    '@aws-sdk/* left to the runtime: index.js bytes': asDeployed.bytes,
    '@aws-sdk/* left to the runtime: index.js gzip bytes': asDeployed.gzipBytes,
  });
  printFigures(
    `Registration Lambda cold require (a fresh node ${process.version} process per run, timed inside it; median and fastest of ${COLD_RUNS})`,
    Object.fromEntries(
      Object.entries(samples).flatMap(([name, ms]) => [
        [`${name}: median (ms)`, percentile(ms, 50)],
        [`${name}: fastest (ms)`, Math.min(...ms)],
      ]),
    ),
  );
}

async function bundle(outdir: string, external: string[]): Promise<{ file: string; bytes: number; gzipBytes: number; mapBytes: number }> {
  const file = path.join(outdir, 'index.js');
  await build({
    entryPoints: [ENTRY],
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    minify: true,
    sourcemap: true,
    external,
    outfile: file,
    logLevel: 'error',
  });
  return {
    file,
    bytes: statSync(file).size,
    gzipBytes: gzipSync(readFileSync(file), { level: 9 }).length,
    mapBytes: statSync(`${file}.map`).size,
  };
}

/** The time, measured inside a fresh `node` process, to `require()` the bundle (module initialisation included). */
function coldRequire(file: string, env: NodeJS.ProcessEnv): number {
  const script = `const t0 = process.hrtime.bigint(); const m = require(${JSON.stringify(file)});
const ms = Number(process.hrtime.bigint() - t0) / 1e6;
if (typeof m.handler !== 'function') throw new Error('no handler export');
process.stdout.write(String(ms));`;
  const child = spawnSync(process.execPath, ['-e', script], { env, cwd: path.dirname(file), encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`loading ${file} failed: ${child.stderr}`);
  const ms = Number(child.stdout);
  if (!Number.isFinite(ms)) throw new Error(`loading ${file} printed ${JSON.stringify(child.stdout)}`);
  return ms;
}
