import { foldCustomerNow, foldHoursEndedBy } from '../../../lambda/core/metering/fold-hours';
import { bucketKeyOf, HourBucket } from '../../../lambda/core/metering/hour-bucket';
import { JournalCustomer, JournalEntry } from '../../../lambda/core/usage/usage-journal';
import { tagSetKey } from '../../../lambda/core/usage/usage-rules';
import { bucketIdentityOf, CUSTOMER_A, CUSTOMER_B, CUSTOMER_LEGACY, entryOf, EntrySpec, fakeFoldPorts, FakeHourJournal, hour } from './fake-hour-journal';

const HOUR_MS = 3_600_000;
const GRACE_MS = 600_000;

/** The metering run's clock: `now`, and the cutoff a 10-minute grace period gives. */
const clock = (iso: string) => ({ now: new Date(iso), cutoff: new Date(Date.parse(iso) - GRACE_MS) });

/** Every hour from `first` to `last`, both included. */
function hoursFromTo(first: string, last: string): string[] {
  const hours: string[] = [];
  for (let h = Date.parse(first); h <= Date.parse(last); h += HOUR_MS) hours.push(new Date(h).toISOString());
  return hours;
}

/** A bucket as the ledger holds it once the fold wrote it sealed. */
function sealedBucket(customer: JournalCustomer, hourStart: string, quantity: number, sealedAt: Date, dimension = 'requests', allocations: Record<string, number> = {}): HourBucket {
  return {
    ...bucketIdentityOf(customer, dimension, hourStart),
    quantity,
    allocations,
    status: 'sealed',
    attempts: 0,
    sealedAt: sealedAt.toISOString(),
  };
}

const byKey = <T extends { bucketKey: string }>(buckets: readonly T[]) => [...buckets].sort((a, b) => a.bucketKey.localeCompare(b.bucketKey));
const keyOf = (customer: JournalCustomer, hourStart: string, dimension = 'requests') => bucketKeyOf(customer.customerKey, dimension, hourStart);

/** What ingestion does with an entry: appended to its hour, or, once that is sealed, to the hour now open. */
function ingest(journal: FakeHourJournal, spec: EntrySpec, currentHour: string): JournalEntry {
  const entry = entryOf(spec);
  const outcome = journal.append(entry);
  if (outcome !== 'sealed') return entry;
  const late = entryOf({ ...spec, hourStart: currentHour, rolledFrom: spec.hourStart, writtenAt: new Date(Date.parse(currentHour) + 5 * 60_000).toISOString() });
  expect(journal.append(late)).toBe('appended');
  return late;
}

describe('foldHoursEndedBy', () => {
  const { now: NOW, cutoff: CUTOFF } = clock('2026-11-02T10:20:00.000Z');
  const FIRST = hour('2026-11-01T10');
  const LAST = hour('2026-11-02T09');

  function dayOfUsage() {
    const ports = fakeFoldPorts();
    ports.journal.requireSealedReads = true;
    ports.journal.add(
      // 25 hours ago: out of the first fold's reach.
      entryOf({ messageId: 'm-old', hourStart: hour('2026-11-01T09'), events: [{ customer: CUSTOMER_A, q: 100 }] }),
      entryOf({ messageId: 'm-first', hourStart: FIRST, events: [{ customer: CUSTOMER_A, q: 1 }] }),
      entryOf({
        messageId: 'm-03',
        hourStart: hour('2026-11-02T03'),
        events: [
          { customer: CUSTOMER_A, q: 2, a: { [tagSetKey({ team: 'red' })]: 2 } },
          { customer: CUSTOMER_B, q: 5 },
          { customer: CUSTOMER_LEGACY, d: 'storage', q: 6 },
        ],
      }),
      entryOf({ messageId: 'm-09', hourStart: LAST, events: [{ customer: CUSTOMER_A, q: 4 }] }),
      // The current hour has not ended.
      entryOf({ messageId: 'm-10', hourStart: hour('2026-11-02T10'), events: [{ customer: CUSTOMER_A, q: 8 }] }),
    );
    return ports;
  }

  it('first run: seals and folds the 24 hours up to the last hour ended by the cutoff, then marks the cursor', async () => {
    const ports = dayOfUsage();

    const report = await foldHoursEndedBy(ports, CUTOFF, NOW);

    const day = hoursFromTo(FIRST, LAST);
    expect(day).toHaveLength(24);
    expect([...ports.journal.sealed].sort()).toEqual(day);
    const expected = [
      sealedBucket(CUSTOMER_A, FIRST, 1, NOW),
      sealedBucket(CUSTOMER_A, hour('2026-11-02T03'), 2, NOW, 'requests', { [tagSetKey({ team: 'red' })]: 2 }),
      sealedBucket(CUSTOMER_B, hour('2026-11-02T03'), 5, NOW),
      sealedBucket(CUSTOMER_LEGACY, hour('2026-11-02T03'), 6, NOW, 'storage'),
      sealedBucket(CUSTOMER_A, LAST, 4, NOW),
    ];
    expect(byKey(report.buckets)).toEqual(byKey(expected));
    expect(byKey([...ports.ledger.values()])).toEqual(byKey(expected));
    expect(report.rejected).toEqual([]);
    expect(report.duplicates).toBe(0);
    expect(ports.journal.cursor).toBe(LAST);
    // The written buckets carry what the fold counted.
    const written = ports.buckets.writes.flatMap((w) => w.buckets).find((b) => b.bucketKey === keyOf(CUSTOMER_A, LAST))!;
    expect(written).toMatchObject({ quantity: 4, usageEvents: 1, firstUsageAt: '2026-11-02T09:10:00.000Z' });
    // Ingestion can still write to the open hour, no longer to a folded one.
    expect(ports.journal.append(entryOf({ messageId: 'm-new', hourStart: hour('2026-11-02T10'), events: [{ customer: CUSTOMER_A, q: 1 }] }))).toBe('appended');
    expect(ports.journal.append(entryOf({ messageId: 'm-new', hourStart: LAST, events: [{ customer: CUSTOMER_A, q: 1 }] }))).toBe('sealed');
  });

  it('folds an hour of 200,000 buckets, 150,000 of them from late events with eventIds (more than a call can take as arguments)', async () => {
    const ports = fakeFoldPorts();
    const last = hour('2026-11-02T09');
    const before = hour('2026-11-02T08');
    ports.journal.cursor = before;
    ports.journal.sealed.add(before);
    ports.journal.copies = false;
    ports.buckets.recordWrites = false;
    const customers = Array.from({ length: 200_000 }, (_, i): JournalCustomer => ({ ...CUSTOMER_A, customerKey: `license#l-${i}`, licenseArn: `${CUSTOMER_A.licenseArn}-${i}` }));
    for (let m = 0; m < customers.length / 100; m++) {
      const late = m >= 500;
      const events = customers.slice(m * 100, m * 100 + 100).map((customer) => ({ customer, q: 2, ...(late ? { id: `e-${customer.customerKey}` } : {}) }));
      ports.journal.add(entryOf({ messageId: `m-${String(m).padStart(5, '0')}`, hourStart: last, ...(late ? { rolledFrom: before } : {}), events }));
    }

    const report = await foldHoursEndedBy(ports, clock('2026-11-02T10:15:00.000Z').cutoff, clock('2026-11-02T10:15:00.000Z').now);

    expect(report.buckets).toHaveLength(200_000);
    expect(report.buckets.reduce((sum, b) => sum + b.quantity, 0)).toBe(400_000);
    expect(report.duplicates).toBe(0);
  }, 60_000);

  it('second run with the same cutoff folds nothing; a run an hour later folds just the next hour', async () => {
    const ports = dayOfUsage();
    await foldHoursEndedBy(ports, CUTOFF, NOW);
    const writes = ports.buckets.writes.length;
    const logged = ports.log.length;

    const again = await foldHoursEndedBy(ports, CUTOFF, new Date(NOW.getTime() + 60_000));

    expect(again).toEqual({ buckets: [], rejected: [], duplicates: 0 });
    expect(ports.buckets.writes).toHaveLength(writes);
    expect(ports.log.slice(logged).filter((call) => call.startsWith('entries') || call.startsWith('markFolded'))).toEqual([]);
    expect(ports.journal.cursor).toBe(LAST);

    const later = clock('2026-11-02T11:20:00.000Z');
    const next = await foldHoursEndedBy(ports, later.cutoff, later.now);
    expect(next.buckets).toEqual([sealedBucket(CUSTOMER_A, hour('2026-11-02T10'), 8, later.now)]);
    expect(ports.journal.cursor).toBe(hour('2026-11-02T10'));
  });

  it('seals every hour before reading its entries', async () => {
    const ports = dayOfUsage();
    // The fake does refuse to read an hour not sealed.
    await expect(ports.journal.entries(hour('2026-11-02T05'))).rejects.toThrow('before the hour was sealed');
    ports.log.length = 0;

    await foldHoursEndedBy(ports, CUTOFF, NOW);

    for (const h of hoursFromTo(FIRST, LAST)) {
      const sealedAt = ports.log.indexOf(`seal ${h}`);
      const readAt = ports.log.indexOf(`entries ${h}`);
      expect(sealedAt).toBeGreaterThanOrEqual(0);
      expect(readAt).toBeGreaterThan(sealedAt);
      // The cursor moves only once the hour's buckets are written.
      expect(ports.log.indexOf(`markFolded ${h}`)).toBeGreaterThan(readAt);
    }
    const put09 = ports.log.indexOf(`put ${LAST}`);
    expect(put09).toBeGreaterThanOrEqual(0);
    expect(ports.log.indexOf(`markFolded ${LAST}`)).toBeGreaterThan(put09);
  });

  describe('after a crash', () => {
    const after = hour('2026-11-02T06');
    const hours = [hour('2026-11-02T07'), hour('2026-11-02T08'), hour('2026-11-02T09')];
    const threeHours = (ports: ReturnType<typeof fakeFoldPorts>) => {
      ports.journal.cursor = after;
      ports.journal.sealed.add(after);
      hours.forEach((h, i) =>
        ports.journal.add(
          entryOf({
            messageId: `m${i}-b`,
            hourStart: h,
            events: [
              { customer: CUSTOMER_A, q: 10 + i, id: 'e1', a: { [tagSetKey({ team: 'red' })]: 10 } },
              { customer: CUSTOMER_B, q: 1, id: 'e1' },
            ],
          }),
          entryOf({ messageId: `m${i}-a`, hourStart: h, events: [{ customer: CUSTOMER_A, q: 99, id: 'e1' }, { customer: CUSTOMER_A, d: 'storage', q: i + 1 }] }),
        ),
      );
      // A late copy in the last hour of an event the first hour counted.
      ports.journal.add(entryOf({ messageId: 'm9', hourStart: hours[2], rolledFrom: hours[0], events: [{ customer: CUSTOMER_A, q: 99, id: 'e1' }] }));
      return ports;
    };

    async function cleanLedger() {
      const clean = threeHours(fakeFoldPorts());
      await foldHoursEndedBy(clean, CUTOFF, NOW);
      return clean;
    }

    it('in putSealedBuckets on hour 2 of 3: the cursor stays after hour 1, and a rerun gives the same buckets', async () => {
      const ports = threeHours(fakeFoldPorts());
      ports.buckets.crashOnHour = hours[1];

      await expect(foldHoursEndedBy(ports, CUTOFF, NOW)).rejects.toThrow('crash');
      expect(ports.journal.cursor).toBe(hours[0]);
      expect([...ports.ledger.values()].map((b) => b.hourStart)).toEqual([hours[0], hours[0], hours[0]]);

      const rerun = await foldHoursEndedBy(ports, CUTOFF, NOW);

      expect(ports.journal.cursor).toBe(hours[2]);
      expect(new Set(rerun.buckets.map((b) => b.hourStart))).toEqual(new Set([hours[1], hours[2]]));
      const clean = await cleanLedger();
      expect(byKey([...ports.ledger.values()])).toEqual(byKey([...clean.ledger.values()]));
      // And what the clean fold wrote is right: e1 of m{i}-a (99) is kept, m{i}-b's dropped.
      expect(clean.ledger.get(keyOf(CUSTOMER_A, hours[1]))).toEqual(sealedBucket(CUSTOMER_A, hours[1], 99, NOW));
      expect(clean.ledger.get(keyOf(CUSTOMER_A, hours[2], 'storage'))).toEqual(sealedBucket(CUSTOMER_A, hours[2], 3, NOW, 'storage'));
      expect(clean.ledger.get(keyOf(CUSTOMER_B, hours[2]))).toEqual(sealedBucket(CUSTOMER_B, hours[2], 1, NOW));
      expect(clean.ledger.size).toBe(9);
    });

    it('between writing hour 2 and marking it folded: the rerun writes the same buckets again', async () => {
      const ports = threeHours(fakeFoldPorts());
      ports.journal.crashOnMarkFolded = hours[1];

      await expect(foldHoursEndedBy(ports, CUTOFF, NOW)).rejects.toThrow('crash');
      expect(ports.journal.cursor).toBe(hours[0]);
      const before = byKey([...ports.ledger.values()]);

      await foldHoursEndedBy(ports, CUTOFF, NOW);

      expect(ports.journal.cursor).toBe(hours[2]);
      const hour2Writes = ports.buckets.writes.filter((w) => w.buckets.some((b) => b.hourStart === hours[1]));
      expect(hour2Writes).toHaveLength(2);
      expect(hour2Writes[1]).toEqual(hour2Writes[0]);
      expect(byKey([...ports.ledger.values()]).filter((b) => b.hourStart !== hours[2])).toEqual(before);
      expect(byKey([...ports.ledger.values()])).toEqual(byKey([...(await cleanLedger()).ledger.values()]));
    });
  });

  describe('late entries with eventIds', () => {
    const H7 = hour('2026-11-02T07');
    const H8 = hour('2026-11-02T08');
    const H9 = hour('2026-11-02T09');

    it('drops a late copy of an event an earlier hour counted, folded in a later run', async () => {
      const ports = fakeFoldPorts();
      ports.journal.requireSealedReads = true;
      ports.journal.cursor = hour('2026-11-02T06');
      ports.journal.sealed.add(hour('2026-11-02T06'));
      ingest(ports.journal, { messageId: 'm1', hourStart: H7, events: [{ customer: CUSTOMER_A, q: 5, id: 'e1' }, { customer: CUSTOMER_A, q: 1, id: 'e2' }, { customer: CUSTOMER_B, q: 2, id: 'e1' }] }, H7);
      const run1 = clock('2026-11-02T08:20:00.000Z');
      await foldHoursEndedBy(ports, run1.cutoff, run1.now);
      expect(ports.journal.cursor).toBe(H7);

      // A producer retry of e1 (another message), with a new event of hour 7 too: hour 7 is sealed.
      const late = ingest(
        ports.journal,
        { messageId: 'm2', hourStart: H7, events: [{ customer: CUSTOMER_A, q: 5, id: 'e1' }, { customer: CUSTOMER_A, q: 2, id: 'e3' }, { customer: CUSTOMER_B, q: 4, id: 'e9' }] },
        H8,
      );
      expect(late).toMatchObject({ hourStart: H8, rolledFrom: H7 });
      // Hour 8's own e1 is another event.
      ingest(ports.journal, { messageId: 'm3', hourStart: H8, events: [{ customer: CUSTOMER_A, q: 7, id: 'e1' }] }, H8);
      // In hour 9, yet another copy of e1 and e3 of hour 7 (e3 itself was counted late, in hour 8).
      ingest(ports.journal, { messageId: 'm4', hourStart: H7, events: [{ customer: CUSTOMER_A, q: 2, id: 'e3' }, { customer: CUSTOMER_A, q: 5, id: 'e1' }, { customer: CUSTOMER_B, q: 2, id: 'e1' }] }, H9);

      const run2 = clock('2026-11-02T10:20:00.000Z');
      const report = await foldHoursEndedBy(ports, run2.cutoff, run2.now);

      expect(byKey(report.buckets)).toEqual(byKey([sealedBucket(CUSTOMER_A, H8, 2 + 7, run2.now), sealedBucket(CUSTOMER_B, H8, 4, run2.now)]));
      // Hour 8: A's e1 of hour 7; hour 9: A's e3 and e1, B's e1 of hour 7.
      expect(report.duplicates).toBe(4);
      expect(report.rejected).toEqual([]);
      expect(ports.ledger.get(keyOf(CUSTOMER_A, H7))).toEqual(sealedBucket(CUSTOMER_A, H7, 6, run1.now));
      expect(ports.journal.cursor).toBe(H9);
    });

    it('gives the same buckets when the hours are folded in one run', async () => {
      const ports = fakeFoldPorts();
      ports.journal.cursor = hour('2026-11-02T06');
      ports.journal.add(
        entryOf({ messageId: 'm1', hourStart: H7, events: [{ customer: CUSTOMER_A, q: 5, id: 'e1' }, { customer: CUSTOMER_A, q: 1, id: 'e2' }] }),
        entryOf({ messageId: 'm2', hourStart: H8, rolledFrom: H7, events: [{ customer: CUSTOMER_A, q: 5, id: 'e1' }, { customer: CUSTOMER_A, q: 2, id: 'e3' }] }),
        entryOf({ messageId: 'm4', hourStart: H9, rolledFrom: H7, events: [{ customer: CUSTOMER_A, q: 2, id: 'e3' }, { customer: CUSTOMER_A, q: 3, id: 'e4' }] }),
      );
      const run = clock('2026-11-02T10:20:00.000Z');

      const report = await foldHoursEndedBy(ports, run.cutoff, run.now);

      expect(byKey(report.buckets)).toEqual(
        byKey([sealedBucket(CUSTOMER_A, H7, 6, run.now), sealedBucket(CUSTOMER_A, H8, 2, run.now), sealedBucket(CUSTOMER_A, H9, 3, run.now)]),
      );
      expect(report.duplicates).toBe(2);
    });
  });
});

describe('foldCustomerNow', () => {
  const { now: NOW } = clock('2026-11-02T10:20:00.000Z');
  const H7 = hour('2026-11-02T07');
  const H8 = hour('2026-11-02T08');
  const H9 = hour('2026-11-02T09');
  const H10 = hour('2026-11-02T10');

  /** Folded through 7:00; hours 8 and 9 ended but not folded; 10:00 open. */
  function customerHours() {
    const ports = fakeFoldPorts();
    ports.journal.cursor = H7;
    ports.journal.sealed.add(H7);
    ports.journal.add(
      entryOf({ messageId: 'm0', hourStart: H7, events: [{ customer: CUSTOMER_A, q: 50 }] }),
      entryOf({ messageId: 'm1', hourStart: H8, events: [{ customer: CUSTOMER_A, q: 3 }, { customer: CUSTOMER_B, q: 5 }] }),
      entryOf({ messageId: 'm2', hourStart: H9, events: [{ customer: CUSTOMER_B, q: 1 }] }),
      entryOf({ messageId: 'm3', hourStart: H10, events: [{ customer: CUSTOMER_B, q: 2 }, { customer: CUSTOMER_A, q: 4 }] }),
      entryOf({ messageId: 'm4', hourStart: H10, events: [{ customer: CUSTOMER_A, d: 'storage', q: 1 }] }),
    );
    return ports;
  }

  it('folds the customer\'s hours not folded yet, records each flush with its entries, returns sealed buckets', async () => {
    const ports = customerHours();

    const report = await foldCustomerNow(ports, CUSTOMER_A.customerKey, NOW);

    const expected = [sealedBucket(CUSTOMER_A, H8, 3, NOW), sealedBucket(CUSTOMER_A, H10, 4, NOW), sealedBucket(CUSTOMER_A, H10, 1, NOW, 'storage')];
    expect(byKey(report.buckets)).toEqual(byKey(expected));
    expect(report.rejected).toEqual([]);
    expect(report.duplicates).toBe(0);
    expect(ports.journal.flushCalls.map((f) => [f.hourStart, f.customerKey, f.entryIds, f.buckets.map((b) => [b.bucketKey, b.quantity])])).toEqual([
      [H8, CUSTOMER_A.customerKey, ['m1'], [[keyOf(CUSTOMER_A, H8), 3]]],
      [
        H10,
        CUSTOMER_A.customerKey,
        ['m3', 'm4'],
        [
          [keyOf(CUSTOMER_A, H10), 4],
          [keyOf(CUSTOMER_A, H10, 'storage'), 1],
        ],
      ],
    ]);
    // Only that customer's buckets, written by the flush; nothing sealed, no cursor moved.
    expect(byKey([...ports.ledger.values()])).toEqual(byKey(expected));
    expect(ports.buckets.writes).toEqual([]);
    expect([...ports.journal.sealed]).toEqual([H7]);
    expect(ports.journal.cursor).toBe(H7);
  });

  it('with sealsThrough, stops at that hour: the open hour after it is left for a later flush or its own fold', async () => {
    const ports = customerHours();

    const report = await foldCustomerNow(ports, CUSTOMER_A.customerKey, NOW, H9);

    expect(report.buckets).toEqual([sealedBucket(CUSTOMER_A, H8, 3, NOW)]);
    expect(ports.journal.flushCalls.map((f) => f.hourStart)).toEqual([H8]);
    // The last call, later: it seals 10:00 (a sealsThrough after now's hour changes nothing).
    const later = new Date(NOW.getTime() + 10 * 60_000);
    const lastCall = await foldCustomerNow(ports, CUSTOMER_A.customerKey, later, hour('2026-11-02T11'));
    expect(byKey(lastCall.buckets)).toEqual(byKey([sealedBucket(CUSTOMER_A, H10, 4, later), sealedBucket(CUSTOMER_A, H10, 1, later, 'storage')]));
  });

  it("reads earlier hours again only for that customer's late events with eventIds, not other customers'", async () => {
    const ports = customerHours();
    ports.journal.add(entryOf({ messageId: 'm7', hourStart: H10, rolledFrom: H8, events: [{ customer: CUSTOMER_B, q: 9, id: 'b-1' }] }));
    const reads = () => ports.journal.log.filter((line) => line === `entries ${H8}`).length;

    await foldCustomerNow(ports, CUSTOMER_A.customerKey, NOW);
    expect(reads()).toBe(1);

    // Customer B's own early metering needs B's eventIds of hour 8 and 9: hour 8 is read again.
    await foldCustomerNow(ports, CUSTOMER_B.customerKey, NOW);
    expect(reads()).toBe(3);
  });

  it('a second call skips the hours already flushed and meters only new usage of other hours', async () => {
    const ports = customerHours();
    await foldCustomerNow(ports, CUSTOMER_A.customerKey, NOW);
    ports.journal.add(
      entryOf({ messageId: 'm5', hourStart: H10, events: [{ customer: CUSTOMER_A, q: 40 }] }),
      entryOf({ messageId: 'm6', hourStart: H9, events: [{ customer: CUSTOMER_A, q: 6 }] }),
    );
    const later = new Date(NOW.getTime() + 5 * 60_000);

    const again = await foldCustomerNow(ports, CUSTOMER_A.customerKey, later);

    expect(again.buckets).toEqual([sealedBucket(CUSTOMER_A, H9, 6, later)]);
    expect(ports.journal.flushCalls.map((f) => f.hourStart)).toEqual([H8, H10, H9]);
    expect(ports.ledger.get(keyOf(CUSTOMER_A, H10))).toEqual(sealedBucket(CUSTOMER_A, H10, 4, NOW));

    expect(await foldCustomerNow(ports, CUSTOMER_A.customerKey, later)).toEqual({ buckets: [], rejected: [], duplicates: 0 });
    expect(ports.journal.flushCalls).toHaveLength(3);
  });

  it('does not return the buckets of an hour whose flush already exists', async () => {
    const ports = customerHours();
    ports.journal.flushExists = (hourStart) => hourStart === H8;

    const report = await foldCustomerNow(ports, CUSTOMER_A.customerKey, NOW);

    expect(byKey(report.buckets)).toEqual(byKey([sealedBucket(CUSTOMER_A, H10, 4, NOW), sealedBucket(CUSTOMER_A, H10, 1, NOW, 'storage')]));
    expect(ports.ledger.has(keyOf(CUSTOMER_A, H8))).toBe(false);
  });

  it('the first time, looks back 24 hours and no further', async () => {
    const ports = fakeFoldPorts();
    ports.journal.add(
      entryOf({ messageId: 'old', hourStart: hour('2026-11-01T09'), events: [{ customer: CUSTOMER_A, q: 100 }] }),
      entryOf({ messageId: 'first', hourStart: hour('2026-11-01T10'), events: [{ customer: CUSTOMER_A, q: 1 }] }),
      entryOf({ messageId: 'now', hourStart: H10, events: [{ customer: CUSTOMER_A, q: 2 }] }),
    );
    const report = await foldCustomerNow(ports, CUSTOMER_A.customerKey, NOW);
    expect(byKey(report.buckets)).toEqual(byKey([sealedBucket(CUSTOMER_A, hour('2026-11-01T10'), 1, NOW), sealedBucket(CUSTOMER_A, H10, 2, NOW)]));
  });

  it('drops a late copy of an event an earlier hour counted', async () => {
    const ports = customerHours();
    ports.journal.add(
      entryOf({ messageId: 'm6', hourStart: hour('2026-11-02T06'), events: [{ customer: CUSTOMER_A, q: 9, id: 'e1' }] }),
      entryOf({ messageId: 'm7', hourStart: H10, rolledFrom: hour('2026-11-02T06'), events: [{ customer: CUSTOMER_A, q: 9, id: 'e1' }, { customer: CUSTOMER_A, q: 8, id: 'e2' }] }),
    );
    const report = await foldCustomerNow(ports, CUSTOMER_A.customerKey, NOW);
    expect(report.buckets.find((b) => b.bucketKey === keyOf(CUSTOMER_A, H10))).toMatchObject({ quantity: 4 + 8 });
    expect(report.duplicates).toBe(1);
    expect(ports.journal.flushCalls.find((f) => f.hourStart === H10)!.entryIds).toEqual(['m3', 'm4', 'm7#from#' + hour('2026-11-02T06')]);
  });

  it('then the hour\'s fold refuses the customer\'s later events, folds the others, and leaves the flushed buckets alone', async () => {
    const ports = customerHours();
    await foldCustomerNow(ports, CUSTOMER_A.customerKey, NOW);
    // Ingestion that did not know yet that the customer's access ended.
    expect(
      ports.journal.append(
        entryOf({
          messageId: 'm8',
          hourStart: H10,
          events: [
            { customer: CUSTOMER_B, q: 6 },
            { customer: CUSTOMER_A, q: 50, id: 'after' },
          ],
        }),
      ),
    ).toBe('appended');
    expect(ports.journal.append(entryOf({ messageId: 'm9', hourStart: H8, events: [{ customer: CUSTOMER_A, q: 70 }] }))).toBe('appended');
    const run = clock('2026-11-02T11:20:00.000Z');

    const report = await foldHoursEndedBy(ports, run.cutoff, run.now);

    expect(report.rejected).toEqual([
      { reason: 'hour-already-billed', message: expect.any(String), messageId: 'm9', position: 0, customerKey: CUSTOMER_A.customerKey, dimension: 'requests', quantity: 70 },
      { reason: 'hour-already-billed', message: expect.any(String), messageId: 'm8', position: 1, customerKey: CUSTOMER_A.customerKey, dimension: 'requests', quantity: 50, eventId: 'after' },
    ]);
    expect(byKey(report.buckets)).toEqual(byKey([sealedBucket(CUSTOMER_B, H8, 5, run.now), sealedBucket(CUSTOMER_B, H9, 1, run.now), sealedBucket(CUSTOMER_B, H10, 2 + 6, run.now)]));
    expect(ports.buckets.writtenKeys().filter((k) => k.startsWith(CUSTOMER_A.customerKey))).toEqual([]);
    expect(ports.ledger.get(keyOf(CUSTOMER_A, H8))).toEqual(sealedBucket(CUSTOMER_A, H8, 3, NOW));
    expect(ports.ledger.get(keyOf(CUSTOMER_A, H10))).toEqual(sealedBucket(CUSTOMER_A, H10, 4, NOW));
    expect(ports.ledger.get(keyOf(CUSTOMER_A, H10, 'storage'))).toEqual(sealedBucket(CUSTOMER_A, H10, 1, NOW, 'storage'));
    expect(ports.journal.cursor).toBe(H10);
  });

  it('what the early metering refused is dead-lettered by the hour\'s fold, with its reason, once; its duplicates stay dropped', async () => {
    const ports = customerHours();
    const tooMany: Record<string, number> = {};
    for (let i = 0; i < 2500; i++) tooMany[`[["tenant","t-${i}"]]`] = 1;
    ports.journal.add(
      entryOf({ messageId: 'm5', hourStart: H8, events: [{ customer: CUSTOMER_A, q: 2500, a: tooMany, id: 'wide' }] }),
      entryOf({ messageId: 'm6', hourStart: H8, events: [{ customer: CUSTOMER_A, q: 9, id: 'twice' }] }),
      entryOf({ messageId: 'm7', hourStart: H8, events: [{ customer: CUSTOMER_A, q: 9, id: 'twice' }] }),
    );

    const early = await foldCustomerNow(ports, CUSTOMER_A.customerKey, NOW);
    expect(early.rejected.map((r) => [r.reason, r.messageId])).toEqual([['too-many-tag-sets', 'm5']]);
    expect(early.duplicates).toBe(1);
    expect(ports.ledger.get(keyOf(CUSTOMER_A, H8))).toEqual(sealedBucket(CUSTOMER_A, H8, 3 + 9, NOW));

    const run = clock('2026-11-02T11:20:00.000Z');
    const report = await foldHoursEndedBy(ports, run.cutoff, run.now);

    // Not refused a second time as hour-already-billed: the early metering read m5, m6 and m7.
    expect(report.rejected.map((r) => [r.reason, r.messageId, r.eventId])).toEqual([['too-many-tag-sets', 'm5', 'wide']]);
    expect(ports.ledger.get(keyOf(CUSTOMER_A, H8))).toEqual(sealedBucket(CUSTOMER_A, H8, 3 + 9, NOW));
  });
});
