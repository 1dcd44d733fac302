/**
 * Random but realistic event histories of one customer, and random delivery orders of them (with
 * duplicates), for the convergence property: whatever the order, the lifecycle ends in the same
 * state. A seeded PRNG makes every run reproducible: a failure names its seed.
 *
 * A licence-mode history is what AWS Marketplace sends for one agreement: Purchase Agreement Created
 * with License Updated at subscription (as Manufacturer, sometimes also as Proposer), maybe an
 * amendment (Agreement Amended + License Updated), entitlement changes, Agreement Ended and License
 * Deprovisioned. A legacy history is the SNS topics' actions, including a failed subscription, a
 * re-subscribe before unsubscribe-success, and the free-trial flag. Either may include the buyer's
 * registration, at any position of the delivery order. Event times step by 0 s (same second), 1 s,
 * a minute or an hour, so ties and near-ties are common.
 */
import { CustomerIdentity } from '../../../lambda/core/customer';
import { signalFromEventBridge, signalFromSnsEnvelope } from '../../../lambda/core/lifecycle/lifecycle-signal';
import { StatusChange, statusChangeOf } from '../../../lambda/core/lifecycle/subscription-state';
import {
  ACCOUNT,
  agreementEvent,
  AgreementDetailType,
  at,
  CUSTOMER_IDENTIFIER,
  LEGACY_KEY,
  LEGACY_PRODUCT_CODE,
  LegacyAction,
  legacyMessage,
  LICENSE_ARN,
  LICENSE_KEY,
  licenseEvent,
  LicenseDetailType,
  PRODUCT_CODE,
  snsBody,
  sqsEvent,
} from './fixtures';

export type HistoryStep =
  | { readonly kind: 'eventbridge'; readonly label: string; readonly event: Record<string, unknown> }
  | { readonly kind: 'sns'; readonly label: string; readonly body: string }
  | { readonly kind: 'registration'; readonly label: string; readonly identity: CustomerIdentity; readonly freeTrial: boolean; readonly at: string };

export interface History {
  readonly mode: 'license' | 'legacy';
  readonly customerKey: string;
  /** In the order the events happened (registration, when there is one, first). */
  readonly steps: readonly HistoryStep[];
}

export type Random = () => number;

/** mulberry32: a small, fast, seeded PRNG with a 2^32 period; plenty for test data. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const chance = (random: Random, p: number) => random() < p;
const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)];

export const LICENSE_IDENTITY: CustomerIdentity = {
  customerKey: LICENSE_KEY,
  productCode: PRODUCT_CODE,
  identityMode: 'license',
  customerAWSAccountId: ACCOUNT,
  licenseArn: LICENSE_ARN,
};

export const LEGACY_IDENTITY: CustomerIdentity = {
  customerKey: LEGACY_KEY,
  productCode: LEGACY_PRODUCT_CODE,
  identityMode: 'legacy',
  customerAWSAccountId: ACCOUNT,
  customerIdentifier: CUSTOMER_IDENTIFIER,
};

/** Event ids unique within a history (a history's own counter, so histories are reproducible). */
function idSource(prefix: string, random: Random) {
  let n = 0;
  // Random, so that at the same second neither the first nor the last event of a history always wins a tie.
  return () => `${prefix}-${Math.floor(random() * 36 ** 6).toString(36).padStart(6, '0')}-${String(++n).padStart(4, '0')}`;
}

function clock(random: Random) {
  let seconds = 0;
  return {
    now: () => at(seconds),
    next: () => {
      seconds += pick(random, [0, 1, 60, 3600]);
      return at(seconds);
    },
  };
}

export function licenseHistory(random: Random): History {
  const time = clock(random);
  const id = idSource('evt', random);
  const steps: HistoryStep[] = [];
  const agreementStep = (detailType: AgreementDetailType, t: string) =>
    steps.push({ kind: 'eventbridge', label: `${detailType} @${t}`, event: agreementEvent(detailType, { id: id(), time: t }) });
  const licenseStep = (detailType: LicenseDetailType, t: string) =>
    steps.push({ kind: 'eventbridge', label: `${detailType} @${t}`, event: licenseEvent(detailType, { id: id(), time: t }) });

  if (chance(random, 0.7)) {
    steps.push({ kind: 'registration', label: 'registration', identity: LICENSE_IDENTITY, freeTrial: chance(random, 0.3), at: time.now() });
  }
  const subscribed = time.now();
  agreementStep('Purchase Agreement Created - Manufacturer', subscribed);
  if (chance(random, 0.5)) agreementStep('Purchase Agreement Created - Proposer', subscribed);
  licenseStep('License Updated - Manufacturer', subscribed);
  if (chance(random, 0.5)) {
    const amended = time.next();
    agreementStep('Purchase Agreement Amended - Manufacturer', amended);
    if (chance(random, 0.5)) agreementStep('Purchase Agreement Amended - Proposer', amended);
    licenseStep('License Updated - Manufacturer', amended);
  }
  if (chance(random, 0.4)) licenseStep('License Updated - Manufacturer', time.next());
  const ended = chance(random, 0.6);
  if (ended) {
    const t = time.next();
    agreementStep('Purchase Agreement Ended - Manufacturer', t);
    if (chance(random, 0.4)) agreementStep('Purchase Agreement Ended - Proposer', t);
  }
  if (chance(random, ended ? 0.8 : 0.2)) licenseStep('License Deprovisioned - Manufacturer', time.next());
  return { mode: 'license', customerKey: LICENSE_KEY, steps };
}

export function legacyHistory(random: Random): History {
  const time = clock(random);
  const id = idSource('msg', random);
  const steps: HistoryStep[] = [];
  const snsStep = (action: LegacyAction, t: string, freeTrial = false) =>
    steps.push({
      kind: 'sns',
      label: `${action}${freeTrial ? ' (free trial)' : ''} @${t}`,
      body: snsBody(legacyMessage(action, freeTrial ? { isFreeTrialTermPresent: 'true' } : {}), { messageId: id(), timestamp: t }),
    });

  const freeTrial = chance(random, 0.4);
  if (chance(random, 0.7)) {
    // The buyer's registration form says the same as AWS: a free-trial offer is a free-trial offer.
    steps.push({ kind: 'registration', label: 'registration', identity: LEGACY_IDENTITY, freeTrial, at: time.now() });
  }
  if (chance(random, 0.15)) snsStep('subscribe-fail', time.now());
  snsStep('subscribe-success', time.next(), freeTrial);
  if (chance(random, 0.5)) snsStep('entitlement-updated', time.next());
  if (chance(random, 0.6)) {
    snsStep('unsubscribe-pending', time.next());
    const then = random();
    if (then < 0.5) snsStep('unsubscribe-success', time.next());
    else if (then < 0.75) snsStep('subscribe-success', time.next(), chance(random, 0.5));
  }
  if (chance(random, 0.3)) snsStep('entitlement-updated', time.next());
  return { mode: 'legacy', customerKey: LEGACY_KEY, steps };
}

/**
 * A delivery order: the history shuffled, with up to three notifications delivered twice (the same
 * event, same id, anywhere in the order). Registration is never repeated (its count would differ).
 */
export function deliveryOrder(history: History, random: Random): HistoryStep[] {
  const order = [...history.steps];
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const notifications = history.steps.filter((s) => s.kind !== 'registration');
  const duplicates = Math.floor(random() * 4);
  for (let d = 0; d < duplicates; d++) {
    const position = Math.floor(random() * (order.length + 1));
    order.splice(position, 0, pick(random, notifications));
  }
  return order;
}

/** Hands one step to the lifecycle function (as EventBridge or as the legacy queue would) or to registration. */
export async function deliverStep(
  step: HistoryStep,
  lifecycle: (event: unknown) => Promise<unknown>,
  register: (step: Extract<HistoryStep, { kind: 'registration' }>) => Promise<void> | void,
): Promise<void> {
  switch (step.kind) {
    case 'registration':
      await register(step);
      return;
    case 'eventbridge':
      await lifecycle(structuredClone(step.event));
      return;
    case 'sns': {
      const answer = (await lifecycle(sqsEvent([step.body]))) as { batchItemFailures: unknown[] };
      if (answer.batchItemFailures.length > 0) throw new Error(`the SNS notification was not handled: ${step.label}`);
    }
  }
}

/** The status change that must win: the newest of the history's notifications. */
export function newestStatusChange(history: History): StatusChange | undefined {
  const changes = history.steps
    .map((s) => (s.kind === 'eventbridge' ? signalFromEventBridge(s.event) : s.kind === 'sns' ? signalFromSnsEnvelope(s.body) : undefined))
    .map((signal) => (signal ? statusChangeOf(signal) : null))
    .filter((c): c is StatusChange => c !== null);
  return changes.sort((a, b) => (a.version < b.version ? -1 : 1)).at(-1);
}

export const describeOrder = (order: readonly HistoryStep[]): string => order.map((s, i) => `  ${i + 1}. ${s.label}`).join('\n');
