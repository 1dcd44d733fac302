import { MeteringRecord } from '../../../lambda/core/metering/hour-bucket';
import { ApiResult, faultGroups, matchOutcomes, recordFingerprint, requestErrorAction } from '../../../lambda/core/metering/outcomes';
import { PlannedRecord } from '../../../lambda/core/metering/request-plan';

const HOUR = new Date('2026-11-02T09:00:00.000Z');

const record = (n: number, change: Partial<MeteringRecord> = {}): MeteringRecord => ({
  Timestamp: HOUR,
  Dimension: 'requests',
  Quantity: n,
  CustomerAWSAccountId: String(100000000000 + n),
  LicenseArn: `arn:aws:license-manager::${100000000000 + n}:license:l-${n}`,
  ...change,
});

const planned = (records: MeteringRecord[]): PlannedRecord[] => records.map((r, i) => ({ bucketKey: `bucket-${i}`, record: r }));

/** What the SDK hands back: a copy of the record as AWS echoed it (Timestamp parsed anew from epoch seconds). */
const echo = (r: MeteringRecord): Partial<MeteringRecord> => ({ ...r, Timestamp: new Date((r.Timestamp.getTime() / 1000) * 1000) });

/** A fixed permutation, so the test is repeatable. */
const shuffle = <T>(items: readonly T[]): T[] =>
  items
    .map((item, i) => ({ item, k: (i * 17 + 5) % 23 }))
    .sort((a, b) => a.k - b.k)
    .map((x) => x.item);

describe('matchOutcomes', () => {
  it('matches results to records by content, whatever their order', () => {
    const sent = planned(Array.from({ length: 20 }, (_, i) => record(i + 1)));
    const results: ApiResult[] = shuffle(sent).map((p) => ({ record: echo(p.record), status: 'Success', meteringRecordId: `id-for-${p.record.Quantity}` }));
    expect(results.map((r) => r.record!.Quantity)).not.toEqual(sent.map((p) => p.record.Quantity));

    const outcomes = matchOutcomes(sent, results);

    for (const p of sent) {
      expect(outcomes.get(p.bucketKey)).toEqual({ kind: 'metered', meteringRecordId: `id-for-${p.record.Quantity}` });
    }
  });

  it.each([
    ['the dimension', { Dimension: 'storage' }],
    ['the hour', { Timestamp: new Date('2026-11-02T10:00:00.000Z') }],
    ['the quantity', { Quantity: 99 }],
    ['the licence', { LicenseArn: 'arn:aws:license-manager::100000000001:license:l-other' }],
    ['the account', { CustomerAWSAccountId: '999999999999' }],
  ])('tells records apart that differ only by %s', (_what, change) => {
    const sent = planned([record(1), record(1, change)]);
    const results: ApiResult[] = [
      { record: echo(sent[1].record), status: 'Success', meteringRecordId: 'second' },
      { record: echo(sent[0].record), status: 'CustomerNotSubscribed' },
    ];
    const outcomes = matchOutcomes(sent, results);
    expect(outcomes.get('bucket-0')).toEqual({ kind: 'rejected', reason: 'CustomerNotSubscribed' });
    expect(outcomes.get('bucket-1')).toEqual({ kind: 'metered', meteringRecordId: 'second' });
  });

  it('tells legacy customers apart by CustomerIdentifier', () => {
    const legacy = (id: string): MeteringRecord => ({ Timestamp: HOUR, Dimension: 'requests', Quantity: 1, CustomerIdentifier: id });
    const sent = planned([legacy('a'), legacy('b')]);
    const outcomes = matchOutcomes(sent, [{ record: legacy('b'), status: 'Success', meteringRecordId: 'b-id' }]);
    expect(outcomes.get('bucket-0')).toEqual({ kind: 'unprocessed' });
    expect(outcomes.get('bucket-1')).toEqual({ kind: 'metered', meteringRecordId: 'b-id' });
  });

  it('uses each result once when identical records were sent', () => {
    const same = record(7);
    const sent = planned([same, { ...same }, { ...same }]);
    const results: ApiResult[] = [
      { record: echo(same), status: 'DuplicateRecord' },
      { record: echo(same), status: 'Success', meteringRecordId: 'id-7' },
    ];
    const outcomes = [...matchOutcomes(sent, results).values()];
    expect(outcomes).toHaveLength(3);
    expect(outcomes).toEqual(
      expect.arrayContaining([
        { kind: 'rejected', reason: 'DuplicateRecord' },
        { kind: 'metered', meteringRecordId: 'id-7' },
        { kind: 'unprocessed' },
      ]),
    );
  });

  it('treats records without a result as unprocessed, listed as such or not', () => {
    const sent = planned([record(1), record(2), record(3)]);
    const outcomes = matchOutcomes(sent, [{ record: echo(sent[0].record), status: 'Success', meteringRecordId: 'one' }]);
    expect(outcomes.get('bucket-0')).toEqual({ kind: 'metered', meteringRecordId: 'one' });
    expect(outcomes.get('bucket-1')).toEqual({ kind: 'unprocessed' });
    expect(outcomes.get('bucket-2')).toEqual({ kind: 'unprocessed' });
  });

  it('does not trust a result without its record, nor a Success without a MeteringRecordId', () => {
    const sent = planned([record(1), record(2)]);
    const outcomes = matchOutcomes(
      sent,
      [
        { status: 'Success', meteringRecordId: 'orphan' },
        { record: echo(sent[1].record), status: 'Success' },
      ],
    );
    expect(outcomes.get('bucket-0')).toEqual({ kind: 'unprocessed' });
    expect(outcomes.get('bucket-1')).toEqual({ kind: 'unprocessed' });
  });

  it('ignores results for records that were not sent', () => {
    const sent = planned([record(1)]);
    const outcomes = matchOutcomes(sent, [{ record: echo(record(2)), status: 'Success', meteringRecordId: 'stranger' }]);
    expect(outcomes.get('bucket-0')).toEqual({ kind: 'unprocessed' });
    expect(outcomes.size).toBe(1);
  });

  it.each(['CustomerNotSubscribed', 'DuplicateRecord'])('passes on the final status %s', (status) => {
    const sent = planned([record(1)]);
    expect(matchOutcomes(sent, [{ record: echo(sent[0].record), status }]).get('bucket-0')).toEqual({ kind: 'rejected', reason: status });
  });

  it('matches a timestamp echoed with fractional seconds to the same second', () => {
    const sent = planned([record(1)]);
    const echoed = { ...echo(sent[0].record), Timestamp: new Date(HOUR.getTime() + 250) };
    expect(matchOutcomes(sent, [{ record: echoed, status: 'Success', meteringRecordId: 'x' }]).get('bucket-0')).toEqual({ kind: 'metered', meteringRecordId: 'x' });
    expect(recordFingerprint(echoed)).toBe(recordFingerprint(sent[0].record));
  });
});

describe('requestErrorAction', () => {
  it.each([
    ['ThrottlingException', 400, 'retry'],
    ['ThrottlingException', undefined, 'retry'],
    ['InternalServiceErrorException', 500, 'retry'],
    ['ServiceUnavailableException', 503, 'retry'],
    ['TooManyRequestsException', 429, 'retry'],
    // No HTTP status: a timeout or a reset connection.
    ['TimeoutError', undefined, 'retry'],
    ['ECONNRESET', undefined, 'retry'],
    ['TimestampOutOfBoundsException', 400, 'isolate'],
    ['InvalidUsageDimensionException', 400, 'isolate'],
    ['InvalidLicenseException', 400, 'isolate'],
    ['InvalidCustomerIdentifierException', 400, 'isolate'],
    ['InvalidTagException', 400, 'isolate'],
    ['InvalidUsageAllocationsException', 400, 'isolate'],
    ['CustomerNotEntitledException', 400, 'isolate'],
    ['ValidationException', 400, 'isolate'],
    ['SerializationException', 400, 'isolate'],
    ['SomethingNewException', 400, 'isolate-unmodelled'],
    ['DisabledApiException', 400, 'stop'],
    // A product code this account does not sell: the deployment, not the records; other products go on.
    ['InvalidProductCodeException', 400, 'stop-product'],
    // Credentials, signature or clock: every record would fail alike.
    ['ExpiredTokenException', 400, 'stop'],
    ['ExpiredToken', 400, 'stop'],
    ['IncompleteSignatureException', 400, 'stop'],
    ['MissingAuthenticationTokenException', 403, 'stop'],
    ['RequestExpired', 400, 'stop'],
    ['InvalidClientTokenId', 403, 'stop'],
    ['SignatureDoesNotMatch', 403, 'stop'],
    ['AccessDeniedException', 403, 'stop'],
    ['UnrecognizedClientException', 403, 'stop'],
    ['InvalidSignatureException', 403, 'stop'],
  ] as const)('%s (HTTP %p): %s', (name, status, action) => {
    expect(requestErrorAction(name, status)).toBe(action);
  });

  it('an unmodelled 4xx the SDK classifies as throttling or transient is retried, not split; the stop and isolate errors keep theirs', () => {
    expect(requestErrorAction('RequestTimeoutException', 408, true)).toBe('retry');
    expect(requestErrorAction('RequestTimeoutException', 408, false)).toBe('isolate-unmodelled');
    expect(requestErrorAction('InvalidSignatureException', 403, true)).toBe('stop');
    expect(requestErrorAction('TimestampOutOfBoundsException', 400, true)).toBe('isolate');
  });
});

describe('faultGroups: the records a request-level error is about', () => {
  const LATER = new Date('2026-11-02T10:00:00.000Z');
  const sent = planned([
    record(1),
    record(2, { Dimension: 'storage' }),
    record(1, { Timestamp: LATER }),
    record(3, { Dimension: 'storage', Timestamp: LATER }),
  ]);
  const keys = (errorName: string) => faultGroups(errorName, sent).map((group) => group.map((p) => p.bucketKey));

  it.each([
    ['InvalidUsageDimensionException', [['bucket-0', 'bucket-2'], ['bucket-1', 'bucket-3']]],
    ['TimestampOutOfBoundsException', [['bucket-0', 'bucket-1'], ['bucket-2', 'bucket-3']]],
    // Per licence and hour: bucket-0 and bucket-2 share a licence, not an hour.
    ['InvalidLicenseException', [['bucket-0'], ['bucket-1'], ['bucket-2'], ['bucket-3']]],
    ['CustomerNotEntitledException', [['bucket-0', 'bucket-2'], ['bucket-1'], ['bucket-3']]],
    ['InvalidUsageAllocationsException', [['bucket-0'], ['bucket-1'], ['bucket-2'], ['bucket-3']]],
    ['SomethingNewException', [['bucket-0'], ['bucket-1'], ['bucket-2'], ['bucket-3']]],
  ])('%s groups the records that share it', (errorName, expected) => {
    expect(keys(errorName)).toEqual(expected);
  });

  it('groups a licence\'s records of one hour (its dimensions) for a licence error', () => {
    const oneHour = planned([record(1), record(1, { Dimension: 'storage' }), record(2)]);
    expect(faultGroups('InvalidLicenseException', oneHour).map((g) => g.map((p) => p.bucketKey))).toEqual([['bucket-0', 'bucket-1'], ['bucket-2']]);
  });

  it('keeps records without the field the error names apart (a licence error on legacy records)', () => {
    const legacy = planned([record(1, { LicenseArn: undefined, CustomerIdentifier: 'c-1' }), record(2, { LicenseArn: undefined, CustomerIdentifier: 'c-2' })]);
    expect(faultGroups('InvalidLicenseException', legacy).map((g) => g.map((p) => p.bucketKey))).toEqual([['bucket-0'], ['bucket-1']]);
    expect(faultGroups('InvalidCustomerIdentifierException', sent)).toHaveLength(4);
  });

  it('groups legacy records by CustomerIdentifier for InvalidCustomerIdentifierException', () => {
    const legacy = planned([record(1, { LicenseArn: undefined, CustomerIdentifier: 'c-1' }), record(2, { LicenseArn: undefined, CustomerIdentifier: 'c-2' }), record(3, { LicenseArn: undefined, CustomerIdentifier: 'c-1' })]);
    expect(faultGroups('InvalidCustomerIdentifierException', legacy).map((g) => g.map((p) => p.bucketKey))).toEqual([['bucket-0', 'bucket-2'], ['bucket-1']]);
  });
});
