// The message list over time (static/chat/timeline.js): grouping under one name,
// day dividers and their names, in a fixed time zone with a daylight-saving change.

import assert from 'node:assert/strict';
import { test } from 'node:test';

// The zone is set before the module loads: its formatters take the zone then.
process.env.TZ = 'Europe/Berlin';
const { GROUP_GAP_MS, arrange, clockTime, dayLabel, fullTime } = await import('../../static/chat/timeline.js');

const NOW = new Date(2026, 11, 2, 10, 0); // 2 December 2026, 10:00 in Berlin
const at = (hours, minutes, seconds = 0, ms = 0) => new Date(2026, 11, 2, hours, minutes, seconds, ms).getTime();
const message = (from, time, extra = {}) => ({ from, at: time, deleted: false, ...extra });

/** The layout as short strings: "day:Today", "alice", "alice (continued)". */
function shape(entries, now = NOW) {
  return arrange(entries, { now }).map((laid) => {
    if (laid.kind === 'day') return `day:${laid.label}`;
    if (laid.entry.breaks) return 'new messages';
    return laid.continued ? `${laid.entry.from} (continued)` : laid.entry.from;
  });
}

test('quick messages from one sender group under one name', () => {
  assert.deepEqual(shape([message('alice', at(9, 0)), message('alice', at(9, 1)), message('alice', at(9, 2))]), [
    'day:Today', 'alice', 'alice (continued)', 'alice (continued)',
  ]);
});

test('five minutes apart still groups; a millisecond more does not', () => {
  assert.equal(GROUP_GAP_MS, 5 * 60 * 1000);
  assert.deepEqual(shape([message('alice', at(9, 0)), message('alice', at(9, 5))]), ['day:Today', 'alice', 'alice (continued)']);
  assert.deepEqual(shape([message('alice', at(9, 0)), message('alice', at(9, 5, 0, 1))]), ['day:Today', 'alice', 'alice']);
});

test('another sender in between starts a new group', () => {
  assert.deepEqual(shape([message('alice', at(9, 0)), message('bob', at(9, 1)), message('alice', at(9, 2))]), [
    'day:Today', 'alice', 'bob', 'alice',
  ]);
});

test('a deleted message neither continues a group nor is continued', () => {
  const entries = [message('alice', at(9, 0)), message('alice', at(9, 1), { deleted: true }), message('alice', at(9, 2))];
  assert.deepEqual(shape(entries), ['day:Today', 'alice', 'alice', 'alice']);
});

test('the "new messages" line breaks a group', () => {
  const entries = [message('alice', at(9, 0)), { breaks: true }, message('alice', at(9, 1))];
  assert.deepEqual(shape(entries), ['day:Today', 'alice', 'new messages', 'alice']);
});

test('a new day\'s heading goes above the "new messages" line that precedes its first message', () => {
  const entries = [message('alice', new Date(2026, 11, 1, 23, 58).getTime()), { breaks: true }, message('alice', at(9, 0))];
  assert.deepEqual(shape(entries), ['day:Yesterday', 'alice', 'day:Today', 'new messages', 'alice']);
  assert.deepEqual(shape([{ breaks: true }]), ['new messages']);
});

test('midnight starts a new day and a new group, named Yesterday and Today', () => {
  const entries = [message('alice', new Date(2026, 11, 1, 23, 58).getTime()), message('alice', new Date(2026, 11, 2, 0, 1).getTime())];
  assert.deepEqual(shape(entries), ['day:Yesterday', 'alice', 'day:Today', 'alice']);
  const days = arrange(entries, { now: NOW }).filter((laid) => laid.kind === 'day');
  assert.deepEqual(days.map((day) => day.key), ['day:2026-12-01', 'day:2026-12-02']);
});

test('an older day is named by its local date, this year without the year', () => {
  const older = new Date(2026, 10, 28, 12, 0);
  const expected = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric', month: 'short' }).format(older);
  assert.equal(dayLabel(older, NOW), expected);
  const lastYear = new Date(2025, 10, 28, 12, 0);
  const withYear = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' });
  assert.equal(dayLabel(lastYear, NOW), withYear.format(lastYear));
});

test('yesterday is the calendar day before, even across a daylight-saving change', () => {
  // 29 March 2026 has 23 hours in Berlin: 24 hours before 00:30 on the 30th is the 28th.
  const now = new Date(2026, 2, 30, 0, 30);
  assert.equal(dayLabel(new Date(2026, 2, 29, 0, 45), now), 'Yesterday');
  assert.notEqual(dayLabel(new Date(2026, 2, 28, 23, 45), now), 'Yesterday');
});

test('the day is taken in the local zone, not in UTC', () => {
  // 23:30 UTC on 1 December is 00:30 on 2 December in Berlin.
  assert.deepEqual(shape([message('alice', '2026-12-01T23:30:00Z')]), ['day:Today', 'alice']);
});

test('a time that is no time shows nothing and continues nothing', () => {
  assert.equal(clockTime('not a time'), '');
  assert.equal(fullTime(null), '');
  assert.deepEqual(shape([message('alice', at(9, 0)), message('alice', null), message('alice', at(9, 1))]), [
    'day:Today', 'alice', 'alice', 'alice',
  ]);
});

test('a clock that goes back to an earlier day does not repeat its divider', () => {
  const entries = [message('alice', at(9, 0)), message('bob', new Date(2026, 11, 3, 9, 0).getTime()), message('carol', at(9, 5))];
  const keys = arrange(entries, { now: NOW }).filter((laid) => laid.kind === 'day').map((day) => day.key);
  assert.deepEqual(keys, ['day:2026-12-02', 'day:2026-12-03']);
});

test('times show hours and minutes in the locale, without seconds', () => {
  const time = at(14, 5, 42);
  assert.equal(clockTime(time), new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' }).format(time));
  assert.doesNotMatch(clockTime(time), /42/);
  assert.match(fullTime(time), /2026/);
});
