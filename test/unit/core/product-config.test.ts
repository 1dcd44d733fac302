import { parseProductList, productConfigSchema } from '../../../lambda/core/product-config';

describe('product configuration', () => {
  const base = { productCode: 'prod-1', dimensions: ['requests'] };

  it('defaults to Concurrent Agreements (license) identity', () => {
    expect(productConfigSchema.parse(base).identityMode).toBe('license');
  });

  it.each([
    ['https://app.example.com/welcome', true],
    ['http://localhost:3000/welcome', true],
    ['http://127.0.0.1:3000/welcome', true],
    ['http://app.example.com/welcome', false],
    ['javascript:alert(1)', false],
    ['ftp://app.example.com', false],
  ])('onboarding URL %s accepted: %s', (onboardingUrl, accepted) => {
    expect(productConfigSchema.safeParse({ ...base, onboardingUrl }).success).toBe(accepted);
  });

  it.each([[[]], [['a', 'a']], [['has space']], [['x'.repeat(256)]]])('rejects dimensions %j', (dimensions) => {
    expect(productConfigSchema.safeParse({ ...base, dimensions }).success).toBe(false);
  });

  it('reads the list the stack hands to its functions, and refuses duplicates or nothing', () => {
    expect(parseProductList(JSON.stringify([base])).map((p) => p.productCode)).toEqual(['prod-1']);
    expect(() => parseProductList(JSON.stringify([base, base]))).toThrow(/unique/);
    expect(() => parseProductList(undefined)).toThrow(/No products/);
    expect(() => parseProductList('[]')).toThrow();
  });
});
