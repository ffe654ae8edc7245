// timeline.js: how a list of messages reads over time: which messages group under
// one name, where a new day begins and what it is called, and how times are
// written in the page's language. Pure: the clock and the entries come in.

import { gettext, locale } from './i18n.js';

/** Messages from one sender less than this far apart (and on one day) group together. */
export const GROUP_GAP_MS = 5 * 60 * 1000;

// In the page's language (the one the reader chose), not the browser's.
const CLOCK = new Intl.DateTimeFormat(locale(), { hour: 'numeric', minute: '2-digit' });
const FULL = new Intl.DateTimeFormat(locale(), { dateStyle: 'full', timeStyle: 'short' });
const DAY = new Intl.DateTimeFormat(locale(), { weekday: 'short', day: 'numeric', month: 'short' });
const DAY_WITH_YEAR = new Intl.DateTimeFormat(locale(), { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' });

/** A Date from a Date, a time in ms or an ISO string; null when it names no time. */
export function toDate(value) {
  if (value === null || value === undefined || value === '') return null;
  const date = value instanceof Date ? new Date(value.getTime()) : new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** The local calendar day of `date` as "YYYY-MM-DD". */
export function dayKey(date) {
  const pad = (number) => String(number).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/** "Today", "Yesterday", or the local date of `date` (with its year when not this year's). */
export function dayLabel(date, now = new Date()) {
  const key = dayKey(date);
  if (key === dayKey(now)) return gettext('Today');
  // The day before by the calendar, not 24 hours back: a day can have 23 or 25 hours.
  if (key === dayKey(new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1))) return gettext('Yesterday');
  return (date.getFullYear() === now.getFullYear() ? DAY : DAY_WITH_YEAR).format(date);
}

/** Hours and minutes in the page's language ("14:05", "2:05 PM"), or '' for no time. */
export function clockTime(value) {
  const date = toDate(value);
  return date ? CLOCK.format(date) : '';
}

/** The full local date and time, for a title on hover, or '' for no time. */
export function fullTime(value) {
  const date = toDate(value);
  return date ? FULL.format(date) : '';
}

/**
 * Lays out `entries` (each {from, at, deleted, breaks}: `at` a time, `breaks` for
 * a line such as "new messages" that interrupts the list) as the list shows them:
 * a {kind: 'day', key, label} before the first entry of each local day (and
 * before the breaking lines just above that entry), and each
 * entry as {kind: 'entry', entry, continued}. An entry is `continued` (shown
 * without its sender's name) when it directly follows an entry of the same
 * sender, at most `gapMs` later on the same day, and neither is deleted.
 */
export function arrange(entries, { now = new Date(), gapMs = GROUP_GAP_MS } = {}) {
  const laid = [];
  let day = null;
  const shown = new Set(); // days with a divider: a clock that went back must not repeat one
  let previous = null; // the entry the next one may continue, with its time
  let held = []; // breaking lines waiting for the next entry: a new day's heading goes above them
  for (const entry of entries) {
    if (entry.breaks) {
      held.push({ kind: 'entry', entry, continued: false });
      previous = null;
      continue;
    }
    const at = toDate(entry.at);
    if (at !== null && dayKey(at) !== day) {
      day = dayKey(at);
      if (!shown.has(day)) laid.push({ kind: 'day', key: `day:${day}`, label: dayLabel(at, now) });
      shown.add(day);
      previous = null;
    }
    laid.push(...held);
    held = [];
    const continued = previous !== null && at !== null && previous.at !== null
      && previous.entry.from === entry.from && !previous.entry.deleted && !entry.deleted
      && at - previous.at >= 0 && at - previous.at <= gapMs;
    laid.push({ kind: 'entry', entry, continued });
    previous = { entry, at };
  }
  laid.push(...held);
  return laid;
}
