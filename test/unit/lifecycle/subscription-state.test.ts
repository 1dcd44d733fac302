/**
 * The subscription state machine: which status each signal sets (and until when usage may still be
 * metered), the version that orders changes (event time, then how far along the lifecycle, then the
 * event id), and what metering may do with an hour of usage given the stored state.
 */
import { LifecycleSignal, signalFromEventBridge, signalFromSnsEnvelope } from '../../../lambda/core/lifecycle/lifecycle-signal';
import {
  billingDecision,
  endsAccess,
  finalUsageDueAt,
  finalUsageFlushes,
  finalUsageFlushExpired,
  finalUsageFlushStands,
  refreshesEntitlements,
  statusChangeOf,
  statusVersion,
} from '../../../lambda/core/lifecycle/subscription-state';
import { agreementEvent, AgreementDetailType, legacyMessage, licenseEvent, snsBody, LegacyAction } from './fixtures';

const TIME = '2026-11-02T10:15:30.000Z';
const HOUR_LATER = '2026-11-02T11:15:30.000Z';

const agreement = (detailType: AgreementDetailType) => signalFromEventBridge(agreementEvent(detailType, { id: 'e1', time: TIME }));
const license = (detailType: 'License Updated - Manufacturer' | 'License Deprovisioned - Manufacturer') =>
  signalFromEventBridge(licenseEvent(detailType, { id: 'e1', time: TIME }));
const legacy = (action: LegacyAction, isFreeTrialTermPresent?: string) =>
  signalFromSnsEnvelope(snsBody(legacyMessage(action, { isFreeTrialTermPresent }), { messageId: 'e1', timestamp: TIME }));

describe('statusChangeOf: the status each notification sets', () => {
  test.each([
    ['Purchase Agreement Created - Manufacturer', agreement('Purchase Agreement Created - Manufacturer'), { status: 'subscribed' }],
    ['Purchase Agreement Created - Proposer', agreement('Purchase Agreement Created - Proposer'), { status: 'subscribed' }],
    ['Purchase Agreement Amended - Manufacturer', agreement('Purchase Agreement Amended - Manufacturer'), { status: 'subscribed' }],
    ['Purchase Agreement Amended - Proposer', agreement('Purchase Agreement Amended - Proposer'), { status: 'subscribed' }],
    ['Purchase Agreement Ended - Manufacturer', agreement('Purchase Agreement Ended - Manufacturer'), { status: 'unsubscribe-pending', finalUsageUntil: HOUR_LATER }],
    ['Purchase Agreement Ended - Proposer', agreement('Purchase Agreement Ended - Proposer'), { status: 'unsubscribe-pending', finalUsageUntil: HOUR_LATER }],
    ['License Deprovisioned - Manufacturer', license('License Deprovisioned - Manufacturer'), { status: 'unsubscribed', finalUsageUntil: HOUR_LATER }],
    ['subscribe-success', legacy('subscribe-success'), { status: 'subscribed', freeTrial: false }],
    ['subscribe-success (free trial "true")', legacy('subscribe-success', 'true'), { status: 'subscribed', freeTrial: true }],
    ['subscribe-fail', legacy('subscribe-fail'), { status: 'failed' }],
    ['unsubscribe-pending', legacy('unsubscribe-pending'), { status: 'unsubscribe-pending', finalUsageUntil: HOUR_LATER }],
    // No more metering after unsubscribe-success: the window closes at the event.
    ['unsubscribe-success', legacy('unsubscribe-success'), { status: 'unsubscribed', finalUsageUntil: TIME }],
  ])('%s', (_, signal, expected) => {
    const change = statusChangeOf(signal);
    expect(change).toEqual({ eventTime: TIME, version: statusVersion(TIME, expected.status as never, 'e1'), ...expected });
  });

  test.each(['CANCELLED', 'EXPIRED', 'TERMINATED', 'ARCHIVED'])('an agreement ended %s ends access', (status) => {
    const signal = signalFromEventBridge(agreementEvent('Purchase Agreement Ended - Manufacturer', { time: TIME, id: 'e1', status }));
    expect(statusChangeOf(signal)).toMatchObject({ status: 'unsubscribe-pending' });
  });

  test.each(['RENEWED', 'REPLACED', 'SUPERSEDED', 'ROLLED_BACK'])('an agreement ended %s (a successor goes on) changes no status: the licence event says when access ends', (status) => {
    const signal = signalFromEventBridge(agreementEvent('Purchase Agreement Ended - Proposer', { time: TIME, id: 'e1', status }));
    expect(signal).toMatchObject({ kind: 'agreement', change: 'ended', agreementStatus: status });
    expect(statusChangeOf(signal)).toBeNull();
  });

  test.each([
    ['License Updated - Manufacturer', license('License Updated - Manufacturer')],
    ['entitlement-updated', legacy('entitlement-updated')],
  ])('%s changes entitlements only, no status', (_, signal) => {
    expect(statusChangeOf(signal)).toBeNull();
    expect(refreshesEntitlements(signal)).toBe(true);
  });

  test('entitlements are read again on License Updated, entitlement-updated and Agreement Amended, and on nothing else', () => {
    const refreshing = [
      license('License Updated - Manufacturer'),
      legacy('entitlement-updated'),
      agreement('Purchase Agreement Amended - Manufacturer'),
      agreement('Purchase Agreement Amended - Proposer'),
    ];
    const others = [
      agreement('Purchase Agreement Created - Manufacturer'),
      agreement('Purchase Agreement Ended - Proposer'),
      license('License Deprovisioned - Manufacturer'),
      legacy('subscribe-success'),
      legacy('subscribe-fail'),
      legacy('unsubscribe-pending'),
      legacy('unsubscribe-success'),
    ];
    expect(refreshing.map(refreshesEntitlements)).toEqual(refreshing.map(() => true));
    expect(others.map(refreshesEntitlements)).toEqual(others.map(() => false));
  });

  test('access ends (final usage is flushed) on unsubscribe-pending and unsubscribed only', () => {
    const statuses = ['pending', 'subscribed', 'failed', 'unsubscribe-pending', 'unsubscribed'] as const;
    expect(statuses.filter((status) => endsAccess({ status, version: '', eventTime: TIME }))).toEqual(['unsubscribe-pending', 'unsubscribed']);
    expect(endsAccess(null)).toBe(false);
  });
});

describe('finalUsageDueAt: when the final usage is sealed and metered', () => {
  const at = (seconds: number) => new Date(Date.parse(TIME) + seconds * 1000).toISOString();

  test.each([
    ['License Deprovisioned (one hour left): after the delay', license('License Deprovisioned - Manufacturer'), 300, at(300)],
    ['Agreement Ended (one hour left): after the delay', agreement('Purchase Agreement Ended - Manufacturer'), 300, at(300)],
    ['unsubscribe-pending (one hour left): after the delay', legacy('unsubscribe-pending'), 120, at(120)],
    ['no delay: at once', license('License Deprovisioned - Manufacturer'), 0, TIME],
    ['a delay that would leave under half an hour of the window: half an hour before it closes', license('License Deprovisioned - Manufacturer'), 45 * 60, at(30 * 60)],
    ['unsubscribe-success (no window left): at once', legacy('unsubscribe-success'), 300, TIME],
  ])('%s', (_name, signal, delaySeconds, expected) => {
    const change = statusChangeOf(signal)!;
    expect(endsAccess(change)).toBe(true);
    expect(finalUsageDueAt(change, delaySeconds)).toBe(expected);
  });
});

describe('finalUsageFlushes: the first flush seals through the hour access ended in; a last call seals the next hour', () => {
  const ended = (signal: LifecycleSignal, time: string) => statusChangeOf({ ...signal, eventTime: time })!;
  test.each([
    // unsubscribe-pending keeps access until the window closes: the next hour may still be billed.
    ['Agreement Ended at 10:40: first at 10:45 (seals 10:00), last call 11:10 (seals 11:00)', agreement('Purchase Agreement Ended - Manufacturer'), '2026-11-02T10:40:00.000Z', [
      ['2026-11-02T10:45:00.000Z', '2026-11-02T10:00:00.000Z'],
      ['2026-11-02T11:10:00.000Z', '2026-11-02T11:00:00.000Z'],
    ]],
    ['unsubscribe-pending at 10:59: first at 11:04 (still seals 10:00 only), last call 11:29', legacy('unsubscribe-pending'), '2026-11-02T10:59:00.000Z', [
      ['2026-11-02T11:04:00.000Z', '2026-11-02T10:00:00.000Z'],
      ['2026-11-02T11:29:00.000Z', '2026-11-02T11:00:00.000Z'],
    ]],
    ['unsubscribe-pending at 10:15: the last call would fall in 10:00: none', legacy('unsubscribe-pending'), '2026-11-02T10:15:00.000Z', [['2026-11-02T10:20:00.000Z', '2026-11-02T10:00:00.000Z']]],
    // An unsubscribed buyer's hours after its access ended are closed: nothing to call for.
    ['License Deprovisioned at 10:40: one flush', license('License Deprovisioned - Manufacturer'), '2026-11-02T10:40:00.000Z', [['2026-11-02T10:45:00.000Z', '2026-11-02T10:00:00.000Z']]],
    ['unsubscribe-success at 10:40: one flush, at once', legacy('unsubscribe-success'), '2026-11-02T10:40:00.000Z', [['2026-11-02T10:40:00.000Z', '2026-11-02T10:00:00.000Z']]],
  ])('%s', (_name, signal, time, expected) => {
    expect(finalUsageFlushes(ended(signal, time), 300).map((f) => [f.dueAt, f.sealsThrough])).toEqual(expected);
  });
});

describe('finalUsageFlushExpired: a failing flush is given up once its final window has passed', () => {
  test.each([
    [0, false],
    [3600, false],
    [3601, true],
  ])('%s seconds after it was due: %s', (seconds, expired) => {
    expect(finalUsageFlushExpired(TIME, new Date(Date.parse(TIME) + seconds * 1000))).toBe(expired);
  });
});

describe('finalUsageFlushStands: a due flush is withdrawn by a later change of its customer', () => {
  const flush = { customerKey: 'legacy#p#c', dueAt: TIME, statusVersion: 'v1' };
  test.each([
    ['the ending that scheduled it, still stored', { status: 'unsubscribe-pending', statusVersion: 'v1' }, flush, true],
    ['subscribed again since', { status: 'subscribed', statusVersion: 'v2' }, flush, false],
    ['ended again later (that ending has a flush of its own)', { status: 'unsubscribed', statusVersion: 'v3' }, flush, false],
    ['no state stored', undefined, flush, true],
    ['a flush stored without its version, customer still ending', { status: 'unsubscribed', statusVersion: 'v3' }, { customerKey: 'k', dueAt: TIME }, true],
    ['a flush stored without its version, customer subscribed again', { status: 'subscribed', statusVersion: 'v2' }, { customerKey: 'k', dueAt: TIME }, false],
    ['a state stored without its version, still ending', { status: 'unsubscribe-pending' }, flush, true],
  ] as const)('%s: %s', (_case, state, f, stands) => {
    expect(finalUsageFlushStands(f, state)).toBe(stands);
  });
});

describe('statusVersion: the order of changes', () => {
  test('a later event time is newer, whatever the status, also across a day, a year and a millisecond', () => {
    const pairs: [string, string][] = [
      ['2026-11-02T10:15:30.000Z', '2026-11-02T10:15:30.001Z'],
      ['2026-11-02T23:59:59.999Z', '2026-11-03T00:00:00.000Z'],
      ['2026-12-31T23:59:59Z', '2027-01-01T00:00:00Z'],
      ['2026-11-02T09:00:00Z', '2026-11-02T10:00:00+00:30'],
    ];
    for (const [earlier, later] of pairs) {
      expect(statusVersion(earlier, 'unsubscribed', 'zzz') < statusVersion(later, 'pending', 'aaa')).toBe(true);
    }
  });

  test('at the same instant the change further along the lifecycle wins: pending < subscribed < failed < unsubscribe-pending < unsubscribed', () => {
    const order = ['pending', 'subscribed', 'failed', 'unsubscribe-pending', 'unsubscribed'] as const;
    const versions = order.map((status, i) => statusVersion(TIME, status, `id-${9 - i}`));
    expect([...versions].sort()).toEqual(versions);
  });

  test('same instant and status: the event id decides, so two deliveries of one event have one version', () => {
    expect(statusVersion(TIME, 'subscribed', 'a') < statusVersion(TIME, 'subscribed', 'b')).toBe(true);
    expect(statusVersion('2026-11-02T12:15:30+02:00', 'subscribed', 'a')).toBe(statusVersion(TIME, 'subscribed', 'a'));
  });
});

describe('billingDecision: what metering does with an hour of usage', () => {
  const now = new Date('2026-11-02T10:40:00Z');
  const hour = new Date('2026-11-02T10:00:00Z');
  const previousHour = new Date('2026-11-02T09:00:00Z');

  test.each([
    ['no lifecycle news (registered only)', undefined, hour, 'bill'],
    ['subscribed', { status: 'subscribed' }, hour, 'bill'],
    ['pending (AWS would not bill it yet)', { status: 'pending' }, hour, 'hold'],
    ['failed', { status: 'failed' }, hour, 'closed'],
    ['unsubscribe-pending, window open', { status: 'unsubscribe-pending', finalUsageUntil: '2026-11-02T11:10:00Z' }, hour, 'bill'],
    ['unsubscribe-pending, an earlier hour, window open', { status: 'unsubscribe-pending', finalUsageUntil: '2026-11-02T11:10:00Z' }, previousHour, 'bill'],
    ['unsubscribed, window open', { status: 'unsubscribed', finalUsageUntil: '2026-11-02T10:40:00Z' }, hour, 'bill'],
    ['unsubscribed, window closed a millisecond ago', { status: 'unsubscribed', finalUsageUntil: '2026-11-02T10:39:59.999Z' }, hour, 'closed'],
    ['unsubscribed without a window (closes now)', { status: 'unsubscribed' }, hour, 'bill'],
  ] as const)('%s: %s', (_, state, hourStart, expected) => {
    expect(billingDecision(state, hourStart, now)).toBe(expected);
  });

  test('an hour that starts when the final window closes is not billable, even while the window is open', () => {
    const state = { status: 'unsubscribe-pending', finalUsageUntil: '2026-11-02T11:00:00.000Z' } as const;
    expect(billingDecision(state, new Date('2026-11-02T11:00:00Z'), new Date('2026-11-02T10:59:00Z'))).toBe('closed');
    expect(billingDecision(state, hour, new Date('2026-11-02T10:59:00Z'))).toBe('bill');
  });
});

describe('billing after the licence is deprovisioned', () => {
  const state = { status: 'unsubscribed' as const, statusEventTime: '2026-11-02T10:20:00.000Z', finalUsageUntil: '2026-11-02T11:20:00.000Z' };
  const now = new Date('2026-11-02T10:30:00Z');

  it('bills the hour in which access ended, inside the final window', () => {
    expect(billingDecision(state, new Date('2026-11-02T10:00:00Z'), now)).toBe('bill');
  });

  it('does not bill an hour that started after access ended (AWS would refuse it)', () => {
    expect(billingDecision(state, new Date('2026-11-02T11:00:00Z'), now)).toBe('closed');
  });

  it('bills nothing once the final window has closed', () => {
    expect(billingDecision(state, new Date('2026-11-02T10:00:00Z'), new Date('2026-11-02T11:21:00Z'))).toBe('closed');
  });
});
