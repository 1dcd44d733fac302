/**
 * GetEntitlements through the real entitlement client: filters (OR within a key, AND across keys),
 * MaxResults bounds, pagination (including an injected empty page that still carries a NextToken),
 * value types and ExpirationDate as a Date.
 */
import {
  GetEntitlementsCommand,
  InvalidParameterException,
  type Entitlement,
  type GetEntitlementsCommandInput,
} from '@aws-sdk/client-marketplace-entitlement-service';
import { TARGET, rawCall, rejectionOf, useSimulator, type Customer } from './helpers';

describe('GetEntitlements', () => {
  const ctx = useSimulator();

  interface ContractWorld {
    alice: Customer;
    bob: Customer;
    carl: Customer;
    dora: Customer;
    lena: Customer; // legacy product
  }

  const EXPIRY = '2027-11-02T10:20:00.000Z';

  async function seedContracts(): Promise<ContractWorld> {
    const { admin } = ctx;
    await admin.createProduct({ productCode: 'prod-contract', dimensions: ['seats', 'tier', 'storage', 'sso'], identityMode: 'license' });
    await admin.createProduct({ productCode: 'prod-contract-legacy', dimensions: ['seats'], identityMode: 'legacy' });
    await admin.createProduct({ productCode: 'prod-unrelated', dimensions: ['seats'], identityMode: 'license' });
    const alice = await admin.createCustomer({ productCode: 'prod-contract', customerAWSAccountId: '111111111111' });
    const bob = await admin.createCustomer({ productCode: 'prod-contract', customerAWSAccountId: '222222222222' });
    const carl = await admin.createCustomer({ productCode: 'prod-contract', customerAWSAccountId: '333333333333' });
    const dora = await admin.createCustomer({ productCode: 'prod-contract', customerAWSAccountId: '444444444444' });
    const lena = await admin.createCustomer({ productCode: 'prod-contract-legacy', customerAWSAccountId: '555555555555' });
    const unrelated = await admin.createCustomer({ productCode: 'prod-unrelated', customerAWSAccountId: '111111111111' });
    await admin.setEntitlements({ licenseArn: alice.licenseArn }, [
      { dimension: 'seats', integerValue: 10, expirationDate: EXPIRY },
      { dimension: 'tier', stringValue: 'gold' },
    ]);
    await admin.setEntitlements({ licenseArn: bob.licenseArn }, [
      { dimension: 'seats', integerValue: 5 },
      { dimension: 'storage', doubleValue: 2.5 },
    ]);
    await admin.setEntitlements({ licenseArn: carl.licenseArn }, [{ dimension: 'sso', booleanValue: true }]);
    await admin.setEntitlements({ licenseArn: dora.licenseArn }, [{ dimension: 'sso', booleanValue: false }]);
    await admin.setEntitlements({ customerIdentifier: lena.customerIdentifier ?? '' }, [{ dimension: 'seats', integerValue: 3 }]);
    await admin.setEntitlements({ licenseArn: unrelated.licenseArn }, [{ dimension: 'seats', integerValue: 99 }]);
    return { alice, bob, carl, dora, lena };
  }

  const get = (input: GetEntitlementsCommandInput) => ctx.entitlementOnce.send(new GetEntitlementsCommand(input));

  /** Every page, following NextToken until it is absent. */
  async function getAll(input: GetEntitlementsCommandInput): Promise<{ entitlements: Entitlement[]; pages: number[] }> {
    const entitlements: Entitlement[] = [];
    const pages: number[] = [];
    let nextToken: string | undefined;
    do {
      const page = await get({ ...input, NextToken: nextToken });
      pages.push(page.Entitlements?.length ?? 0);
      entitlements.push(...(page.Entitlements ?? []));
      nextToken = page.NextToken;
      if (pages.length > 50) throw new Error('pagination does not end');
    } while (nextToken);
    return { entitlements, pages };
  }

  const key = (e: Entitlement) => `${e.LicenseArn ?? e.CustomerIdentifier}|${e.Dimension}`;
  const keysOf = (entitlements: Entitlement[] | undefined) => (entitlements ?? []).map(key).sort();

  describe('filters', () => {
    test('no filter: every entitlement of the product, and only of that product', async () => {
      const w = await seedContracts();
      const out = await get({ ProductCode: 'prod-contract' });
      expect(keysOf(out.Entitlements)).toEqual(
        [`${w.alice.licenseArn}|seats`, `${w.alice.licenseArn}|tier`, `${w.bob.licenseArn}|seats`, `${w.bob.licenseArn}|storage`, `${w.carl.licenseArn}|sso`, `${w.dora.licenseArn}|sso`].sort(),
      );
      expect(out.NextToken).toBeUndefined();
      for (const e of out.Entitlements ?? []) expect(e.ProductCode).toBe('prod-contract');
    });

    test('DIMENSION values are OR-ed', async () => {
      const w = await seedContracts();
      const seats = await get({ ProductCode: 'prod-contract', Filter: { DIMENSION: ['seats'] } });
      expect(keysOf(seats.Entitlements)).toEqual([`${w.alice.licenseArn}|seats`, `${w.bob.licenseArn}|seats`].sort());
      const seatsOrSso = await get({ ProductCode: 'prod-contract', Filter: { DIMENSION: ['seats', 'sso'] } });
      expect(seatsOrSso.Entitlements).toHaveLength(4);
    });

    test('LICENSE_ARN values are OR-ed', async () => {
      const w = await seedContracts();
      const out = await get({ ProductCode: 'prod-contract', Filter: { LICENSE_ARN: [w.alice.licenseArn, w.carl.licenseArn] } });
      expect(keysOf(out.Entitlements)).toEqual([`${w.alice.licenseArn}|seats`, `${w.alice.licenseArn}|tier`, `${w.carl.licenseArn}|sso`].sort());
    });

    test('keys are AND-ed (CUSTOMER_AWS_ACCOUNT_ID and DIMENSION)', async () => {
      const w = await seedContracts();
      const out = await get({ ProductCode: 'prod-contract', Filter: { CUSTOMER_AWS_ACCOUNT_ID: [w.alice.customerAWSAccountId, w.bob.customerAWSAccountId], DIMENSION: ['seats'] } });
      expect(keysOf(out.Entitlements)).toEqual([`${w.alice.licenseArn}|seats`, `${w.bob.licenseArn}|seats`].sort());
      const one = await get({ ProductCode: 'prod-contract', Filter: { CUSTOMER_AWS_ACCOUNT_ID: [w.alice.customerAWSAccountId], DIMENSION: ['seats', 'storage'] } });
      expect(keysOf(one.Entitlements)).toEqual([`${w.alice.licenseArn}|seats`]);
      const none = await get({ ProductCode: 'prod-contract', Filter: { LICENSE_ARN: [w.carl.licenseArn], DIMENSION: ['seats'] } });
      expect(none.Entitlements ?? []).toEqual([]);
    });

    test('CUSTOMER_IDENTIFIER selects a legacy customer, whose entitlements carry the CustomerIdentifier', async () => {
      const w = await seedContracts();
      const out = await get({ ProductCode: 'prod-contract-legacy', Filter: { CUSTOMER_IDENTIFIER: [w.lena.customerIdentifier ?? ''] } });
      expect(out.Entitlements).toHaveLength(1);
      expect(out.Entitlements?.[0]).toMatchObject({
        ProductCode: 'prod-contract-legacy',
        Dimension: 'seats',
        CustomerIdentifier: w.lena.customerIdentifier,
        Value: { IntegerValue: 3 },
      });
      const nobody = await get({ ProductCode: 'prod-contract-legacy', Filter: { CUSTOMER_IDENTIFIER: ['someone-else'] } });
      expect(nobody.Entitlements ?? []).toEqual([]);
    });

    test('CUSTOMER_IDENTIFIER together with CUSTOMER_AWS_ACCOUNT_ID is InvalidParameterException', async () => {
      const w = await seedContracts();
      const error = await rejectionOf(get({ ProductCode: 'prod-contract-legacy', Filter: { CUSTOMER_IDENTIFIER: [w.lena.customerIdentifier ?? ''], CUSTOMER_AWS_ACCOUNT_ID: [w.lena.customerAWSAccountId] } }));
      expect(error).toBeInstanceOf(InvalidParameterException);
      expect(error.$metadata.httpStatusCode).toBe(400);
    });

    test('an unknown filter key is InvalidParameterException', async () => {
      await seedContracts();
      const filter = { COLOUR: ['blue'] } as unknown as GetEntitlementsCommandInput['Filter'];
      const error = await rejectionOf(get({ ProductCode: 'prod-contract', Filter: filter }));
      expect(error).toBeInstanceOf(InvalidParameterException);
    });

    test('an unknown ProductCode is InvalidParameterException', async () => {
      await seedContracts();
      const error = await rejectionOf(get({ ProductCode: 'no-such-product' }));
      expect(error).toBeInstanceOf(InvalidParameterException);
      expect(error.name).toBe('InvalidParameterException');
    });

    test('a missing ProductCode is rejected (raw call)', async () => {
      await seedContracts();
      const response = await rawCall(ctx.sim.url, TARGET.getEntitlements, {});
      expect(response.status).toBe(400);
      // README: "ProductCode required (unknown: InvalidParameterException)"; the error for a missing one is not named.
      expect(['InvalidParameterException', 'ValidationException']).toContain(String(response.json?.__type).split('#').pop());
    });
  });

  describe('values', () => {
    test('exactly one of IntegerValue, DoubleValue, BooleanValue, StringValue, with its type (false included)', async () => {
      const w = await seedContracts();
      const out = await get({ ProductCode: 'prod-contract' });
      const byKey = new Map((out.Entitlements ?? []).map((e) => [key(e), e]));
      const value = (customer: Customer, dimension: string) => byKey.get(`${customer.licenseArn}|${dimension}`)?.Value;
      expect(value(w.alice, 'seats')).toEqual({ IntegerValue: 10 });
      expect(value(w.alice, 'tier')).toEqual({ StringValue: 'gold' });
      expect(value(w.bob, 'storage')).toEqual({ DoubleValue: 2.5 });
      expect(value(w.carl, 'sso')).toEqual({ BooleanValue: true });
      expect(value(w.dora, 'sso')).toEqual({ BooleanValue: false });
      for (const e of out.Entitlements ?? []) {
        expect(Object.values(e.Value ?? {}).filter((v) => v !== undefined)).toHaveLength(1);
      }
    });

    test('each entitlement names product, dimension, account and licence; ExpirationDate is a Date', async () => {
      const w = await seedContracts();
      const out = await get({ ProductCode: 'prod-contract', Filter: { LICENSE_ARN: [w.alice.licenseArn] } });
      const seats = out.Entitlements?.find((e) => e.Dimension === 'seats');
      expect(seats).toMatchObject({ ProductCode: 'prod-contract', Dimension: 'seats', CustomerAWSAccountId: w.alice.customerAWSAccountId, LicenseArn: w.alice.licenseArn });
      expect(seats?.ExpirationDate).toBeInstanceOf(Date);
      expect(seats?.ExpirationDate?.toISOString()).toBe(EXPIRY);
      const tier = out.Entitlements?.find((e) => e.Dimension === 'tier');
      expect(tier?.ExpirationDate).toBeUndefined();
    });

    test('ExpirationDate travels as epoch seconds on the wire', async () => {
      const w = await seedContracts();
      const response = await rawCall(ctx.sim.url, TARGET.getEntitlements, { ProductCode: 'prod-contract', Filter: { LICENSE_ARN: [w.alice.licenseArn], DIMENSION: ['seats'] } });
      expect(response.status).toBe(200);
      expect(response.json.Entitlements).toHaveLength(1);
      expect(response.json.Entitlements[0].ExpirationDate).toBe(Date.parse(EXPIRY) / 1000);
    });

    test('POST /_admin/entitlements replaces the customer\'s entitlements', async () => {
      const w = await seedContracts();
      const answer = await ctx.admin.setEntitlements({ licenseArn: w.alice.licenseArn }, [{ dimension: 'storage', doubleValue: 0.5 }]);
      // README: the answer is "the customer's entitlements (replaced)": a list, or an object holding it.
      const answered = Array.isArray(answer) ? answer : (answer as { entitlements?: unknown[] }).entitlements;
      expect(answered).toEqual([expect.objectContaining({ dimension: 'storage', doubleValue: 0.5 })]);
      const out = await get({ ProductCode: 'prod-contract', Filter: { LICENSE_ARN: [w.alice.licenseArn] } });
      expect(out.Entitlements?.map((e) => [e.Dimension, e.Value])).toEqual([['storage', { DoubleValue: 0.5 }]]);
    });
  });

  describe('MaxResults and pagination', () => {
    /** 10 customers x 3 dimensions = 30 entitlements. */
    async function seedThirty(): Promise<Customer[]> {
      await ctx.admin.createProduct({ productCode: 'prod-big', dimensions: ['a', 'b', 'c'], identityMode: 'license' });
      const customers: Customer[] = [];
      for (let i = 0; i < 10; i++) {
        const customer = await ctx.admin.createCustomer({ productCode: 'prod-big', customerAWSAccountId: String(100000000000 + i) });
        await ctx.admin.setEntitlements({ licenseArn: customer.licenseArn }, [
          { dimension: 'a', integerValue: i },
          { dimension: 'b', integerValue: i },
          { dimension: 'c', integerValue: i },
        ]);
        customers.push(customer);
      }
      return customers;
    }

    test('MaxResults 0 and 26 are rejected; 1 and 25 are accepted', async () => {
      await seedThirty();
      for (const bad of [0, 26]) {
        const error = await rejectionOf(get({ ProductCode: 'prod-big', MaxResults: bad }));
        // README: "MaxResults 1..25" without naming the error; InvalidParameterException is the modelled one.
        expect(['InvalidParameterException', 'ValidationException']).toContain(error.name);
        expect(error.$metadata.httpStatusCode).toBe(400);
      }
      expect((await get({ ProductCode: 'prod-big', MaxResults: 1 })).Entitlements).toHaveLength(1);
      expect((await get({ ProductCode: 'prod-big', MaxResults: 25 })).Entitlements).toHaveLength(25);
    });

    test('the default page is 25: 30 entitlements come as 25 + 5, the last page without NextToken', async () => {
      await seedThirty();
      const first = await get({ ProductCode: 'prod-big' });
      expect(first.Entitlements).toHaveLength(25);
      expect(first.NextToken).toEqual(expect.any(String));
      const second = await get({ ProductCode: 'prod-big', NextToken: first.NextToken });
      expect(second.Entitlements).toHaveLength(5);
      expect(second.NextToken).toBeUndefined();
      const all = [...(first.Entitlements ?? []), ...(second.Entitlements ?? [])];
      expect(new Set(all.map(key)).size).toBe(30);
    });

    test('MaxResults 7 pages 30 entitlements as 7,7,7,7,2 with no duplicates and none missing', async () => {
      const customers = await seedThirty();
      const { entitlements, pages } = await getAll({ ProductCode: 'prod-big', MaxResults: 7 });
      expect(pages).toEqual([7, 7, 7, 7, 2]);
      const expected = customers.flatMap((c) => ['a', 'b', 'c'].map((d) => `${c.licenseArn}|${d}`)).sort();
      expect(entitlements.map(key).sort()).toEqual(expected);
    });

    test('pagination honours the filter across pages', async () => {
      await seedThirty();
      const { entitlements, pages } = await getAll({ ProductCode: 'prod-big', MaxResults: 4, Filter: { DIMENSION: ['b'] } });
      expect(pages).toEqual([4, 4, 2]);
      expect(entitlements.every((e) => e.Dimension === 'b')).toBe(true);
      expect(new Set(entitlements.map(key)).size).toBe(10);
    });

    test('an injected empty page still carries a NextToken; following it loses and repeats nothing', async () => {
      await seedThirty();
      await ctx.admin.addFault({ operation: 'GetEntitlements', emptyPage: true });
      const first = await get({ ProductCode: 'prod-big' });
      expect(first.Entitlements ?? []).toEqual([]);
      expect(first.NextToken).toEqual(expect.any(String));

      const collected: Entitlement[] = [];
      let token: string | undefined = first.NextToken;
      while (token) {
        const page = await get({ ProductCode: 'prod-big', NextToken: token });
        collected.push(...(page.Entitlements ?? []));
        token = page.NextToken;
      }
      expect(collected).toHaveLength(30);
      expect(new Set(collected.map(key)).size).toBe(30);
    });

    test('an empty page in the middle of the listing (fault after the first page) loses nothing', async () => {
      await seedThirty();
      const first = await get({ ProductCode: 'prod-big', MaxResults: 10 });
      expect(first.Entitlements).toHaveLength(10);
      await ctx.admin.addFault({ operation: 'GetEntitlements', emptyPage: true });
      const empty = await get({ ProductCode: 'prod-big', MaxResults: 10, NextToken: first.NextToken });
      expect(empty.Entitlements ?? []).toEqual([]);
      expect(empty.NextToken).toEqual(expect.any(String));
      const collected = [...(first.Entitlements ?? [])];
      let token = empty.NextToken;
      while (token) {
        const page = await get({ ProductCode: 'prod-big', MaxResults: 10, NextToken: token });
        collected.push(...(page.Entitlements ?? []));
        token = page.NextToken;
      }
      expect(new Set(collected.map(key)).size).toBe(30);
      expect(collected).toHaveLength(30);
    });
  });
});
