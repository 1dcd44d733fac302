/**
 * The convergence property: 1,000 random delivery orders (with duplicates) of a customer's event
 * history, in each identity mode, registration anywhere among them, end in the same state as
 * delivering it in the order it happened; that state is the newest notification's; no delivery ever
 * moves the stored status or entitlements back to an older version; and the seller's provisioning
 * view converges too (the last status event published is the final status, a customer whose access
 * ended had its usage flushed). Real LifecycleService and dispatch, in-memory ports with the store's
 * newer-wins semantics (test/integration/lifecycle.test.ts runs orders against the real store).
 *
 * Reproduce a failure with LIFECYCLE_SEED=<seed from the message>.
 */
import { LIFECYCLE_EVENTS, LifecycleService } from '../../../lambda/core/lifecycle/lifecycle-service';
import { createLifecycleHandler } from '../../../lambda/lifecycle/lifecycle-dispatch';
import { deliverStep, deliveryOrder, describeOrder, History, HistoryStep, legacyHistory, licenseHistory, newestStatusChange, Random, seededRandom } from './event-history';
import { FakeLifecyclePorts } from './fake-lifecycle-ports';
import { PRODUCTS } from './fixtures';

const SEED = Number(process.env.LIFECYCLE_SEED ?? 20261102);
const HISTORIES = 50;
const ORDERS_PER_HISTORY = 20;

const SILENT = { info: () => undefined };
const ENTITLEMENTS = [{ dimension: 'seats', value: { IntegerValue: 10 } }];
const STATUS_EVENTS = new Set<string>([
  LIFECYCLE_EVENTS.subscribed,
  LIFECYCLE_EVENTS['unsubscribe-pending'],
  LIFECYCLE_EVENTS.unsubscribed,
  LIFECYCLE_EVENTS.failed,
]);

interface Run {
  readonly ports: FakeLifecyclePorts;
  /** A delivery after which the stored status or entitlements version went back, if any. */
  readonly wentBack?: string;
}

async function deliver(history: History, order: readonly HistoryStep[]): Promise<Run> {
  const ports = new FakeLifecyclePorts();
  ports.entitlements = () => ENTITLEMENTS;
  const lifecycle = createLifecycleHandler(new LifecycleService(ports, PRODUCTS), SILENT);
  let statusVersion = '';
  let entitlementsVersion = '';
  for (const step of order) {
    await deliverStep(step, lifecycle, (r) => ports.register(r.identity, { freeTrial: r.freeTrial, at: r.at }));
    const item = ports.items.get(history.customerKey) ?? {};
    const nextStatus = (item.statusVersion as string | undefined) ?? '';
    const nextEntitlements = (item.entitlementsVersion as string | undefined) ?? '';
    if (nextStatus < statusVersion || nextEntitlements < entitlementsVersion) {
      return { ports, wentBack: `after ${step.label}: status ${statusVersion} -> ${nextStatus}, entitlements ${entitlementsVersion} -> ${nextEntitlements}` };
    }
    statusVersion = nextStatus;
    entitlementsVersion = nextEntitlements;
  }
  return { ports };
}

function withContext(context: string, check: () => void): void {
  try {
    check();
  } catch (error) {
    if (error instanceof Error) error.message = `${context}\n\n${error.message}`;
    throw error;
  }
}

async function checkConvergence(mode: 'license' | 'legacy', generate: (random: Random) => History): Promise<number> {
  const seed = SEED + (mode === 'license' ? 0 : 1);
  const random = seededRandom(seed);
  let orders = 0;
  for (let h = 0; h < HISTORIES; h++) {
    const history = generate(random);
    const reference = await deliver(history, history.steps);
    const context = (order: readonly HistoryStep[]) =>
      `LIFECYCLE_SEED=${SEED} (${mode}), history ${h}, delivered in this order:\n${describeOrder(order)}\nhappened in this order:\n${describeOrder(history.steps)}`;

    // The reference itself is right: the newest status notification's status, no agreement event left waiting.
    const newest = newestStatusChange(history);
    const item = reference.ports.items.get(history.customerKey);
    withContext(context(history.steps), () => {
      expect(reference.wentBack).toBeUndefined();
      expect(item).toMatchObject({ status: newest?.status, statusVersion: newest?.version });
      expect(item?.finalUsageUntil).toBe(newest?.finalUsageUntil);
      expect([...reference.ports.items.keys()].filter((k) => k.startsWith('kept-agreement#'))).toEqual([]);
    });

    for (let o = 0; o < ORDERS_PER_HISTORY; o++) {
      const order = deliveryOrder(history, random);
      const run = await deliver(history, order);
      orders += 1;
      withContext(context(order), () => {
        expect(run.wentBack).toBeUndefined();
        expect(run.ports.snapshot()).toEqual(reference.ports.snapshot());
        // What the seller's provisioning saw last is the final status.
        const lastStatusEvent = run.ports.published.filter((p) => STATUS_EVENTS.has(p.detailType)).at(-1);
        expect(lastStatusEvent?.detailType).toBe(newest ? LIFECYCLE_EVENTS[newest.status as keyof typeof LIFECYCLE_EVENTS] : undefined);
        expect(lastStatusEvent?.detail.eventTime).toBe(newest?.eventTime);
        // A customer whose access ended had its last usage flushed.
        if (newest?.status === 'unsubscribe-pending' || newest?.status === 'unsubscribed') {
          expect(run.ports.flushed).toContain(history.customerKey);
        }
      });
    }
  }
  return orders;
}

describe('any delivery order of a customer\'s notifications ends in the same state', () => {
  test('licence mode (EventBridge: agreement and licence events, registration anywhere): 1,000 orders', async () => {
    expect(await checkConvergence('license', licenseHistory)).toBe(1000);
  });

  test('legacy mode (SNS envelopes through the queue, registration anywhere): 1,000 orders', async () => {
    expect(await checkConvergence('legacy', legacyHistory)).toBe(1000);
  });
});

describe('the generator covers what the property is about', () => {
  // A property over histories that never contain the hard cases proves little.
  test('histories include every notification type, same-second ties, registration, and orders with duplicates and registration last', () => {
    const random = seededRandom(SEED);
    const labels = new Set<string>();
    let ties = 0;
    let duplicates = 0;
    let registrationLast = 0;
    for (let i = 0; i < 200; i++) {
      for (const history of [licenseHistory(random), legacyHistory(random)]) {
        for (const step of history.steps) labels.add(step.label.replace(/ \(free trial\)| @.*$/g, ''));
        const times = history.steps.filter((s) => s.kind !== 'registration').map((s) => s.label.split('@')[1]);
        if (new Set(times).size < times.length) ties += 1;
        const order = deliveryOrder(history, random);
        if (order.length > history.steps.length) duplicates += 1;
        if (order.at(-1)?.kind === 'registration') registrationLast += 1;
      }
    }
    expect([...labels].sort()).toEqual(
      [
        'License Deprovisioned - Manufacturer',
        'License Updated - Manufacturer',
        'Purchase Agreement Amended - Manufacturer',
        'Purchase Agreement Amended - Proposer',
        'Purchase Agreement Created - Manufacturer',
        'Purchase Agreement Created - Proposer',
        'Purchase Agreement Ended - Manufacturer',
        'Purchase Agreement Ended - Proposer',
        'entitlement-updated',
        'registration',
        'subscribe-fail',
        'subscribe-success',
        'unsubscribe-pending',
        'unsubscribe-success',
      ].sort(),
    );
    expect(ties).toBeGreaterThan(100);
    expect(duplicates).toBeGreaterThan(200);
    expect(registrationLast).toBeGreaterThan(10);
  });
});
