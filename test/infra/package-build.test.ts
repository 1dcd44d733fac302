import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

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
