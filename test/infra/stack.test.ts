import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { buildApp, MARKETPLACE_REGION } from '../../lib/app-builder';
import { Template } from 'aws-cdk-lib/assertions';
import { ConfigError } from '../../lib/config';
import { MarketplaceSaasIntegration } from '../../lib/marketplace-saas-integration';
import { parseProductList } from '../../lambda/core/product-config';

/**
 * The deployable app, synthesized as `cdk synth` does it (bin/app.ts calls buildApp with the
 * context from cdk.json), with cdk-nag's AwsSolutions pack, which reports through CDK's policy
 * validation: findings land in the assembly's validation-report.json, and an error fails synth.
 */

const REPO_ROOT = path.resolve(__dirname, '..', '..');
/** The name cdk-nag's AwsSolutions pack reports under in the validation report. */
const NAG_PLUGIN = 'AwsSolutions';

/** The context `cdk synth` gets from cdk.json (feature flags and the example products). */
const CDK_JSON_CONTEXT = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> })
  .context;

interface ValidationReport {
  pluginReports: {
    pluginName: string;
    conclusion: string;
    violations: { ruleName: string; severity: string; violatingConstructs: { constructPath: string }[] }[];
  }[];
}

let outdirs: string[] = [];

/** An App like the CLI's, writing to a temporary directory; bundling skipped (no Lambda assets needed here). */
function newApp(context: Record<string, unknown>): { app: App; outdir: string } {
  const outdir = mkdtempSync(path.join(tmpdir(), 'marketplace-synth-'));
  outdirs.push(outdir);
  return { app: new App({ outdir, context: { ...context, 'aws:cdk:bundling-stacks': [] } }), outdir };
}

/** cdk-nag findings, one readable line each ("rule (severity) at construct path"), from the report synth wrote. */
function nagFindings(outdir: string): string[] {
  const file = path.join(outdir, 'validation-report.json');
  // The report is written whenever a validation plugin is registered, so its absence means cdk-nag never ran.
  if (!existsSync(file)) throw new Error(`synthesis wrote no ${file}: is cdk-nag registered?`);
  const report = JSON.parse(readFileSync(file, 'utf8')) as ValidationReport;
  return report.pluginReports
    .filter((r) => r.pluginName === NAG_PLUGIN)
    .flatMap((r) => r.violations)
    .flatMap((v) => v.violatingConstructs.map((c) => `${v.ruleName} (${v.severity}) at ${c.constructPath}`));
}

function synthError(app: App): Error {
  try {
    app.synth();
  } catch (error) {
    if (error instanceof Error) return error;
    throw error;
  }
  throw new Error('expected synthesis to fail, but it succeeded');
}

beforeEach(() => {
  // CDK prints the validation report (including CloudFormation's own warnings) to stderr; the tests
  // read the report file instead.
  jest.spyOn(console, 'error').mockImplementation(() => undefined);
});

afterEach(() => {
  jest.restoreAllMocks();
  for (const dir of outdirs) rmSync(dir, { recursive: true, force: true });
  outdirs = [];
});

describe('the deployable app', () => {
  it('synthesizes with the cdk.json context, in us-east-1, with no cdk-nag finding', () => {
    const { app, outdir } = newApp(CDK_JSON_CONTEXT);
    const stack = buildApp(app);

    const assembly = app.synth();

    expect(nagFindings(outdir)).toEqual([]);
    const artifact = assembly.getStackByName(stack.stackName);
    expect(artifact.stackName).toBe('MarketplaceSaas');
    expect(artifact.environment.region).toBe(MARKETPLACE_REGION);
    expect(stack.config.products.map((p) => p.productCode)).toEqual(['example-product-code']);
  });

  it('takes products as a JSON string (`--context products=...`), several products and both identity modes', () => {
    const products = [
      { productCode: 'prod-license', identityMode: 'license', dimensions: ['requests', 'storage_gb'] },
      { productCode: 'prod-legacy', identityMode: 'legacy', dimensions: ['users'], onboardingUrl: 'https://example.com/start' },
    ];
    const { app, outdir } = newApp({ products: JSON.stringify(products), stackName: 'SellerStack' });
    const stack = buildApp(app);

    const assembly = app.synth();

    expect(nagFindings(outdir)).toEqual([]);
    expect(assembly.getStackByName('SellerStack').template.Description).toBe(
      'AWS Marketplace SaaS integration for prod-license, prod-legacy',
    );
    expect(stack.config.products.map((p) => [p.productCode, p.identityMode])).toEqual([
      ['prod-license', 'license'],
      ['prod-legacy', 'legacy'],
    ]);
  });
});

describe('cdk-nag is wired into synthesis', () => {
  // Proves the clean assertions above can fail: the same app plus one non-compliant construct.
  it('fails synthesis and reports a non-compliant construct', () => {
    const { app, outdir } = newApp(CDK_JSON_CONTEXT);
    buildApp(app);
    const throwaway = new Stack(app, 'NonCompliant', { env: { region: MARKETPLACE_REGION } });
    new Bucket(throwaway, 'PlainBucket'); // no SSL enforcement, no access logs

    const error = synthError(app);

    expect(error.message).toContain('AwsSolutions-S10');
    const findings = nagFindings(outdir);
    expect(findings).toEqual(
      expect.arrayContaining([
        'AwsSolutions-S1 (error) at NonCompliant/PlainBucket/Resource',
        'AwsSolutions-S10 (error) at NonCompliant/PlainBucket/Resource',
      ]),
    );
    // Only the throwaway stack is at fault.
    expect(findings.filter((f) => !f.includes(' at NonCompliant/'))).toEqual([]);
  });

  it('leaves out a finding acknowledged with a reason, and only that one', () => {
    const { app, outdir } = newApp(CDK_JSON_CONTEXT);
    buildApp(app);
    const throwaway = new Stack(app, 'NonCompliant', { env: { region: MARKETPLACE_REGION } });
    const bucket = new Bucket(throwaway, 'PlainBucket');
    Validations.of(bucket).acknowledge({ id: 'AwsSolutions-S10', reason: 'test: proves acknowledgements are honoured' });

    const error = synthError(app);

    expect(error.message).toContain('AwsSolutions-S1');
    expect(error.message).not.toContain('AwsSolutions-S10');
    expect(nagFindings(outdir)).toEqual(['AwsSolutions-S1 (error) at NonCompliant/PlainBucket/Resource']);
  });
});

describe('bad context fails with a readable ConfigError', () => {
  const product = { productCode: 'abc123', dimensions: ['requests'] };

  function configError(context: Record<string, unknown>): ConfigError {
    const { app } = newApp(context);
    try {
      buildApp(app);
    } catch (error) {
      if (error instanceof ConfigError) return error;
      throw error;
    }
    throw new Error('expected buildApp to throw a ConfigError');
  }

  it('missing products', () => {
    const error = configError({});
    expect(error.name).toBe('ConfigError');
    expect(error.message).toMatch(/^Invalid marketplace configuration:/);
    expect(error.message).toContain('expected array, received undefined');
    expect(error.message).toContain('at products');
  });

  it('an empty product list', () => {
    expect(configError({ products: [] }).message).toMatch(/expected array to have >=1 items[\s\S]*at products/);
  });

  it('duplicate product codes', () => {
    const error = configError({ products: [product, { ...product, dimensions: ['storage_gb'] }] });
    expect(error.message).toContain('product codes must be unique');
  });

  it('an unknown identity mode', () => {
    const error = configError({ products: [{ ...product, identityMode: 'metered' }] });
    expect(error.message).toContain('expected one of "license"|"legacy"');
    expect(error.message).toContain('at products[0].identityMode');
  });

  it('products that are not JSON', () => {
    const error = configError({ products: '[{"productCode": "abc123"' });
    expect(error.message).toMatch(/^Context "products" must be JSON, for example \[/);
  });
});

describe('the constructs used as a library check their products too', () => {
  // A product the functions' schema refuses type-checks as ProductConfig (its fields are strings):
  // it must fail synthesis, not every registration after a deploy.
  const badProduct = { productCode: 'p', identityMode: 'license' as const, dimensions: ['d'], onboardingUrl: 'http://app.example.com/welcome' };

  it('MarketplaceSaasIntegration refuses a product the functions would refuse, with a readable ConfigError', () => {
    const stack = new Stack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'Embedded');
    expect(() => new MarketplaceSaasIntegration(stack, 'Marketplace', { products: [badProduct] })).toThrow(ConfigError);
    expect(() => new MarketplaceSaasIntegration(new Stack(new App(), 'Other'), 'Marketplace', { products: [badProduct] })).toThrow(/https URL[\s\S]*onboardingUrl/);
  });

  it('the functions get the products as their schema reads them (defaults filled in), and their module loads with them', () => {
    const stack = new Stack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'Embedded');
    new MarketplaceSaasIntegration(stack, 'Marketplace', { products: [{ productCode: 'p', dimensions: ['d'] } as never] });
    const environments = Object.values(Template.fromStack(stack).findResources('AWS::Lambda::Function'))
      .map((f) => f.Properties.Environment?.Variables?.PRODUCTS)
      .filter((v): v is string => v !== undefined);
    expect(environments).toHaveLength(4);
    for (const products of environments) expect(parseProductList(products)).toEqual(JSON.parse(products));
    expect(new Set(environments).size).toBe(1);
    expect(JSON.parse(environments[0])).toEqual([expect.objectContaining({ productCode: 'p', identityMode: expect.any(String) })]);
  });
});
