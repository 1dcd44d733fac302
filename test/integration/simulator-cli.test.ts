import { ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { MarketplaceMeteringClient, ResolveCustomerCommand } from '@aws-sdk/client-marketplace-metering';
import { localClientConfig } from '../../local/services';
import { assertComponent } from '../support/local-services';

/**
 * `npm run simulator` as a seller runs it: a separate process, seeded from a file, answering the SDK
 * and the AWS CLI with dummy credentials, and stopping cleanly on SIGTERM.
 */

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..');
const TOKEN = 'seeded+token/with=.:_-chars';

let child: ChildProcess;
let url: string;
let output = '';

beforeAll(async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'simulator-seed-'));
  const seedFile = path.join(dir, 'seed.json');
  writeFileSync(
    seedFile,
    JSON.stringify({
      products: [{ productCode: 'cli-product', dimensions: ['requests'], identityMode: 'legacy' }],
      customers: [{ productCode: 'cli-product', customerAWSAccountId: '111122223333', registrationToken: TOKEN }],
    }),
  );
  child = spawn(process.execPath, [path.join(ROOT, 'node_modules/tsx/dist/cli.mjs'), 'local/simulator/cli.ts', '--seed', seedFile], {
    cwd: ROOT,
    env: { ...process.env, SIMULATOR_PORT: '0' },
  });
  url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`simulator did not start:\n${output}`)), 30_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /AWS Marketplace simulator listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      // The seeded customers are printed right after the listening line, possibly in a later chunk.
      if (match && output.includes('(cli-product)')) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('exit', (code) => reject(new Error(`simulator exited with ${code}:\n${output}`)));
  });
});

afterAll(() => {
  if (child.exitCode === null) child.kill('SIGKILL');
});

it('prints the listening line and the seeded customers', () => {
  expect(output).toMatch(/Seeded customer arn:aws:license-manager::\d{12}:license:l-[0-9a-f]+ \(cli-product\)/);
});

it('resolves a seeded token through the SDK', async () => {
  const client = new MarketplaceMeteringClient(localClientConfig(url));
  const resolved = await client.send(new ResolveCustomerCommand({ RegistrationToken: TOKEN }));
  expect(resolved).toMatchObject({ ProductCode: 'cli-product', CustomerAWSAccountId: '111122223333' });
  expect(resolved.CustomerIdentifier).toMatch(/^[A-Za-z0-9]{11}$/);
});

it('answers the AWS CLI with dummy credentials', async () => {
  await assertComponent(
    'The AWS CLI',
    async () => (await run('aws', ['--version'])).stdout !== undefined,
    '`apt-get install -y awscli` or `pip install awscli`',
  );
  const { stdout } = await run(
    'aws',
    ['meteringmarketplace', 'resolve-customer', '--endpoint-url', url, '--region', 'us-east-1', '--registration-token', TOKEN],
    { env: { ...process.env, AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local', AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' } },
  );
  expect(JSON.parse(stdout)).toMatchObject({ ProductCode: 'cli-product', CustomerAWSAccountId: '111122223333' });
});

it('stops on SIGTERM with exit code 0', async () => {
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  expect(await exited).toBe(0);
});
