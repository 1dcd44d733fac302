import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { buildSync } from 'esbuild';

/**
 * The package as a seller's project gets it (`npm run build`, which `prepare` runs on install):
 * plain JavaScript in dist/ with type declarations. A CDK app in plain JavaScript requires it,
 * builds the stack (the handlers' entries are then the built .js files) and uses the run-time
 * helpers, in a process of its own, from a folder of its own.
 */

const ROOT = path.join(__dirname, '..', '..');
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'package-build-'));
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(ROOT, 'tsconfig.build.json'), '--outDir', path.join(dir, 'dist')], {
    cwd: ROOT,
    stdio: 'pipe',
  });
  // The seller's project: its own lock file (NodejsFunction looks for one), the dependencies beside.
  writeFileSync(path.join(dir, 'package-lock.json'), '{"lockfileVersion": 3}\n');
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
}, 120_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('dist/ holds the entry point, its declarations and the four handlers as JavaScript', () => {
  for (const file of ['lib/index.js', 'lib/index.d.ts', 'lambda/core/usage/generated/usage-event-validator.js']) {
    expect(existsSync(path.join(dir, 'dist', file))).toBe(true);
  }
  for (const handler of ['registration', 'ingest', 'metering', 'lifecycle']) {
    expect(existsSync(path.join(dir, 'dist', 'lambda', handler, 'handler.js'))).toBe(true);
    expect(existsSync(path.join(dir, 'dist', 'lambda', handler, 'handler.ts'))).toBe(false);
  }
});

test('a JavaScript CDK app builds the stack from the package, and a service uses its run-time helpers', () => {
  const app = `
    const assert = require('node:assert');
    const pkg = require('./dist/lib/index.js');
    const { App } = require('aws-cdk-lib');
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const config = pkg.parseStackConfig({ products: [{ productCode: 'p', identityMode: 'license', dimensions: ['requests'] }] });
    new pkg.MarketplaceSaasStack(app, 'Seller', { config });
    const template = app.synth().getStackByName('Seller').template;
    const functions = Object.values(template.Resources).filter((r) => r.Type === 'AWS::Lambda::Function');
    // The producer client validates before sending: an event without a dimension is refused.
    const producer = new pkg.UsageProducer({ queueUrl: 'https://sqs.us-east-1.amazonaws.com/111122223333/usage' });
    assert.equal(typeof producer.send, 'function');
    assert.equal(pkg.usageEventSchema.safeParse({ quantity: 1, timestamp: 0 }).success, false);
    assert.equal(pkg.verifyRegistrationReference('nonsense', 'secret', new Date()).valid, false);
    console.log(JSON.stringify({ functions: functions.length, exports: Object.keys(pkg).sort() }));
  `;
  const out = execFileSync(process.execPath, ['-e', app], { cwd: dir, encoding: 'utf8', env: { ...process.env, CDK_DISABLE_CLI_TELEMETRY: 'true' } });
  const result = JSON.parse(out.trim().split('\n').pop()!);
  expect(result.functions).toBe(4);
  expect(result.exports).toEqual(expect.arrayContaining(['MarketplaceSaasStack', 'MarketplaceSaasIntegration', 'UsageProducer', 'verifyRegistrationReference', 'usageEventSchema']));
});

/**
 * A seller's CDK app has its own aws-cdk-lib and constructs: the package must use those, not bring a
 * copy of its own (two copies make the app's Stack and the package's constructs different types).
 */
test('aws-cdk-lib and constructs are peer dependencies the versions here satisfy, and no production dependency brings them', () => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const lock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8'));
  for (const name of ['aws-cdk-lib', 'constructs']) {
    expect(pkg.dependencies[name]).toBeUndefined();
    const installed: string = lock.packages[`node_modules/${name}`].version;
    const range = /^\^(\d+)\.(\d+)\.(\d+)$/.exec(pkg.peerDependencies[name]);
    expect(range).not.toBeNull();
    const [major, minor, patch] = installed.split('.').map(Number);
    const [, rangeMajor, rangeMinor, rangePatch] = range!.map(Number);
    expect(major).toBe(rangeMajor);
    expect(minor * 1e6 + patch).toBeGreaterThanOrEqual(rangeMinor * 1e6 + rangePatch);
    // Only the development install has it: no production dependency of the package pulls it in.
    expect(lock.packages[`node_modules/${name}`].dev).toBe(true);
  }
  // A service using only the run-time entry needs neither (see below).
  expect(pkg.peerDependenciesMeta['aws-cdk-lib'].optional).toBe(true);
});

/**
 * A seller's service, in a folder of its own, with the package installed under its name: the
 * run-time entry (`/runtime`) loads and bundles no CDK module, and its types resolve under each of
 * TypeScript's module resolutions a service may use.
 */
describe('the run-time entry for services', () => {
  const PACKAGE = 'aws-marketplace-saas-integration';
  let service: string;

  beforeAll(() => {
    service = path.join(dir, 'service');
    const installed = path.join(service, 'node_modules', PACKAGE);
    mkdirSync(installed, { recursive: true });
    copyFileSync(path.join(ROOT, 'package.json'), path.join(installed, 'package.json'));
    symlinkSync(path.join(dir, 'dist'), path.join(installed, 'dist'));
  });

  /** Runs a script in the service's folder; its last line of output, parsed. */
  const runInService = (script: string) => {
    const out = execFileSync(process.execPath, ['-e', script], { cwd: service, encoding: 'utf8' });
    return JSON.parse(out.trim().split('\n').pop()!);
  };
  const cdkModulesLoaded = `Object.keys(require.cache).filter((file) => /[\\\\/]node_modules[\\\\/](aws-cdk-lib|constructs|cdk-nag)[\\\\/]/.test(file)).length`;

  test('requiring it loads no aws-cdk-lib, constructs or cdk-nag module; the main entry does (the check can tell)', () => {
    const runtime = runInService(`
      const runtime = require('${PACKAGE}/runtime');
      const cdk = ${cdkModulesLoaded};
      require('${PACKAGE}');
      console.log(JSON.stringify({ cdk, cdkAfterMain: ${cdkModulesLoaded}, exports: Object.keys(runtime).sort() }));
    `);
    expect(runtime.cdk).toBe(0);
    expect(runtime.cdkAfterMain).toBeGreaterThan(0);
    expect(runtime.exports).toEqual(['MAX_EVENTS_PER_MESSAGE', 'REDRIVE_REASONS_BY_DEFAULT', 'UsageDeadLetterRedrive', 'UsageProducer', 'usageEventSchema', 'verifyRegistrationReference']);
  });

  test("its helpers work and are the main entry's own", () => {
    const result = runInService(`
      const runtime = require('${PACKAGE}/runtime');
      const main = require('${PACKAGE}');
      const producer = new runtime.UsageProducer({ queueUrl: 'https://sqs.us-east-1.amazonaws.com/111122223333/usage' });
      // Refused before anything is sent: no queue is reached.
      producer.send([{ dimension: 'requests', quantity: -1, timestamp: 0 }]).then(({ sent, failed }) => {
        console.log(JSON.stringify({ sent, reasons: failed.map((f) => f.reason), same: main.UsageProducer === runtime.UsageProducer && main.verifyRegistrationReference === runtime.verifyRegistrationReference }));
      });
    `);
    expect(result).toEqual({ sent: 0, reasons: ['invalid-event'], same: true });
  });

  /** The packages a service's esbuild bundle (as NodejsFunction makes one) takes in, importing from `entry`. */
  const bundledPackages = (entry: string) => {
    const { metafile } = buildSync({
      stdin: { contents: `export { UsageProducer } from '${entry}';`, resolveDir: service, loader: 'ts' },
      bundle: true,
      platform: 'node',
      target: 'node22',
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    const packages = new Set<string>();
    for (const input of Object.keys(metafile.inputs)) {
      const match = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
      if (match) packages.add(match[1]);
    }
    return packages;
  };

  test("a service's bundle of it holds no CDK package; bundling the main entry would take in aws-cdk-lib", () => {
    const runtime = bundledPackages(`${PACKAGE}/runtime`);
    expect(runtime).toContain('@aws-sdk/client-sqs');
    expect([...runtime].filter((p) => ['aws-cdk-lib', 'constructs', 'cdk-nag'].includes(p))).toEqual([]);
    expect(bundledPackages(PACKAGE)).toContain('aws-cdk-lib');
  }, 60_000);

  /** Type-checks a TypeScript service file against the installed package; tsc's output, and whether it passed. */
  const typeCheck = (source: string, options: string[]) => {
    writeFileSync(path.join(service, 'service.ts'), source);
    try {
      execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '--noEmit', '--strict', '--skipLibCheck', '--types', 'node', '--typeRoots', path.join(ROOT, 'node_modules', '@types'), ...options, 'service.ts'], {
        cwd: service,
        stdio: 'pipe',
      });
      return { passed: true, output: '' };
    } catch (error) {
      return { passed: false, output: String((error as { stdout?: Buffer }).stdout ?? error) };
    }
  };
  const usesTypes = `
    import { UsageProducer, type UsageEvent } from '${PACKAGE}/runtime';
    const event: UsageEvent = { licenseArn: 'arn:aws:license-manager::111122223333:license:l-0123456789abcdef0', dimension: 'requests', quantity: 1, timestamp: 0 };
    export const sending = new UsageProducer({ queueUrl: 'https://example.invalid/queue' }).send([event]);
  `;

  test.each([
    ['node10 (module commonjs)', ['--module', 'commonjs', '--moduleResolution', 'node10']],
    ['node16', ['--module', 'node16', '--moduleResolution', 'node16']],
    ['bundler (module esnext)', ['--module', 'esnext', '--moduleResolution', 'bundler']],
  ])('its declarations resolve under moduleResolution %s', (_name, options) => {
    expect(typeCheck(usesTypes, options)).toEqual({ passed: true, output: '' });
    // The declarations are the package's own, not `any`: a wrong field is a type error.
    const wrong = typeCheck(usesTypes.replace("dimension: 'requests'", 'dimension: 42'), options);
    expect(wrong.passed).toBe(false);
    expect(wrong.output).toContain("error TS2322: Type 'number' is not assignable to type 'string'");
  }, 60_000);
});
