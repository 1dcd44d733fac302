/** UTC hours: AWS Marketplace de-duplicates and bills usage per customer x dimension x UTC hour. */

/** Milliseconds in an hour. */
export const HOUR_MS = 3_600_000;

/** The start of the UTC hour that contains `time`. */
export function utcHourStart(time: Date): Date {
  return new Date(Math.floor(time.getTime() / HOUR_MS) * HOUR_MS);
}

/** The start of the UTC hour after the one that contains `time`. */
export function utcHourEnd(time: Date): Date {
  return new Date(utcHourStart(time).getTime() + HOUR_MS);
}

/** `2026-11-02T10:00:00.000Z` style key of the UTC hour that contains `time`. */
export function utcHourKey(time: Date): string {
  return utcHourStart(time).toISOString();
}

const hourKeys = new Map<number, string>();

/**
 * `utcHourKey` for an epoch-milliseconds time, remembered per hour: ingestion asks for the same few
 * hours millions of times, and toISOString is a good part of an event's cost.
 */
export function utcHourKeyOfMs(ms: number): string {
  const hourStart = Math.floor(ms / HOUR_MS) * HOUR_MS;
  let key = hourKeys.get(hourStart);
  if (key === undefined) {
    if (hourKeys.size >= 1000) hourKeys.clear();
    key = new Date(hourStart).toISOString();
    hourKeys.set(hourStart, key);
  }
  return key;
}
