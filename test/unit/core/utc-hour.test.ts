import { utcHourEnd, utcHourKey, utcHourStart } from '../../../lambda/core/utc-hour';

describe('UTC hours', () => {
  it.each([
    ['2026-11-02T10:00:00.000Z', '2026-11-02T10:00:00.000Z'],
    ['2026-11-02T10:59:59.999Z', '2026-11-02T10:00:00.000Z'],
    ['2026-11-02T11:00:00.000Z', '2026-11-02T11:00:00.000Z'],
    ['2026-12-31T23:30:00.000Z', '2026-12-31T23:00:00.000Z'],
    // A local offset does not move the UTC hour.
    ['2026-11-02T12:30:00+05:30', '2026-11-02T07:00:00.000Z'],
  ])('%s lies in the hour starting %s', (time, hour) => {
    expect(utcHourStart(new Date(time)).toISOString()).toBe(hour);
    expect(utcHourKey(new Date(time))).toBe(hour);
  });

  it('ends an hour after it starts, across a year boundary', () => {
    expect(utcHourEnd(new Date('2026-12-31T23:30:00Z')).toISOString()).toBe('2027-01-01T00:00:00.000Z');
  });
});
