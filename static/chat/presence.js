// presence.js: whether the person at this page is here (idle after 5 minutes
// without input, or while the tab is hidden), told to the server once per
// change, and how someone's presence is put into words ("away", "last seen 5
// minutes ago"). No socket and no drawing: both are handed in.

import { gettext, interpolate, ngettext } from './i18n.js';

/** No input for this long makes the page idle. */
export const IDLE_AFTER_MS = 5 * 60_000;

/** The input events that count as the person being here. */
export const INPUT_EVENTS = ['pointerdown', 'pointermove', 'keydown', 'touchstart', 'wheel', 'scroll', 'focus'];

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

/** Builds the `idle` frame. */
export const idleFrame = (idle) => ({ type: 'idle', idle });

/** Builds the `profile` frame asking for a user's status and last seen time. */
export const profileFrame = (user) => ({ type: 'profile', user });

/**
 * The socket URL that asks the server for `presence_batch` frames: a window's
 * changes of presence as one frame rather than a frame each (or, in a burst,
 * the whole online list).
 */
export function withPresenceBatches(url) {
  return `${url}${url.includes('?') ? '&' : '?'}presence=batch`;
}

/** The statuses a `presence_batch` frame lists users under. */
const BATCH_STATUSES = ['online', 'away', 'offline'];

/**
 * Takes a `presence_batch` frame (each user's new status, listed once under
 * `online`, `away` or `offline`, and `last_seen` for the offline ones): applies
 * each as the `presence` frame it stands for (`store.applyPresence`). Returns
 * how many were applied; names that are not strings are skipped.
 */
export function applyPresenceBatch(store, frame) {
  let applied = 0;
  const seen = frame?.last_seen !== null && typeof frame?.last_seen === 'object' ? frame.last_seen : {};
  for (const status of BATCH_STATUSES) {
    const users = frame?.[status];
    if (!Array.isArray(users)) continue;
    for (const user of users) {
      if (typeof user !== 'string') continue;
      const change = { type: 'presence', user, online: status !== 'offline', status };
      // Unknown when missing: the store then asks `profile` for it if it needs it.
      if (status === 'offline' && Object.hasOwn(seen, user)) change.last_seen = seen[user];
      store.applyPresence(change);
      applied += 1;
    }
  }
  return applied;
}

/**
 * Tells the server whether the person is idle: `send(idle)` once when the page
 * turns idle (no input for IDLE_AFTER_MS, or hidden) and once when it turns
 * active again. Input only records a time; one timer checks it, so a moving
 * pointer costs nothing more.
 */
export class IdleReporter {
  /**
   * `send(idle)` sends the frame and returns whether it went out; `isHidden()`
   * tells whether the tab is hidden; `now`, `setTimer` and `clearTimer` are the
   * clock and timers (injected in tests).
   */
  constructor({
    send,
    isHidden = () => false,
    now = () => Date.now(),
    setTimer = (fn, ms) => setTimeout(fn, ms),
    clearTimer = (id) => clearTimeout(id),
    idleAfterMs = IDLE_AFTER_MS,
  }) {
    Object.assign(this, { send, isHidden, now, setTimer, clearTimer, idleAfterMs });
    this.lastInput = now();
    this.idle = isHidden();
    this.timer = null;
    this.schedule(this.idleAfterMs);
  }

  /** Some input happened: the person is here. */
  input() {
    this.lastInput = this.now();
    if (this.idle && !this.isHidden()) this.change(false);
    if (this.timer === null) this.schedule(this.idleAfterMs);
  }

  /** The tab was hidden or shown again (showing it counts as input). */
  visibilityChanged() {
    if (this.isHidden()) this.change(true);
    else this.input();
  }

  /** A new socket greeted us: it starts active on the server, so tell it the current state. */
  connected() {
    this.send(this.idle);
  }

  /** Stops the timer (the page goes away). */
  stop() {
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = null;
  }

  // The timer fires when the last input may have become too old; input since
  // then moves the check later instead of restarting a timer per event.
  schedule(ms) {
    this.timer = this.setTimer(() => this.check(), ms);
  }

  check() {
    this.timer = null;
    const quiet = this.now() - this.lastInput;
    if (quiet >= this.idleAfterMs) {
      this.change(true);
      return; // the next input starts the timer again
    }
    this.schedule(this.idleAfterMs - quiet);
  }

  change(idle) {
    if (this.idle === idle) return;
    this.idle = idle;
    this.send(idle);
  }
}

/** Feeds the reporter the page's input and visibility events. */
export function watchPresence(reporter, win, doc) {
  const onInput = () => reporter.input();
  for (const type of INPUT_EVENTS) win.addEventListener(type, onInput, { capture: true, passive: true });
  doc.addEventListener('visibilitychange', () => reporter.visibilityChanged());
}

/** The calendar day of `ms` in `timeZone`, as a day number (for "today" and "yesterday"). */
function dayNumber(ms, timeZone) {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone, year: 'numeric', month: 'numeric', day: 'numeric' })
    .formatToParts(ms);
  const part = (type) => Number(parts.find((p) => p.type === type).value);
  return Date.UTC(part('year'), part('month') - 1, part('day')) / (24 * HOUR_MS);
}

/**
 * Words when someone was last seen, for the reader's `locale` (and `timeZone`,
 * the reader's by default): "last seen just now", "last seen 5 minutes ago",
 * "last seen today at 18:04", "last seen yesterday at 18:04", or a date.
 * '' when `iso` is not a time.
 */
export function lastSeenText(iso, now, { locale, timeZone } = {}) {
  const at = typeof iso === 'string' ? Date.parse(iso) : Number.NaN;
  if (Number.isNaN(at)) return '';
  const ago = Math.max(0, now - at);
  if (ago < MINUTE_MS) return gettext('last seen just now');
  if (ago < HOUR_MS) {
    const count = Math.floor(ago / MINUTE_MS);
    return interpolate(ngettext('last seen %(count)s minute ago', 'last seen %(count)s minutes ago', count), { count }, true);
  }
  const time = new Intl.DateTimeFormat(locale, { timeZone, hour: '2-digit', minute: '2-digit' }).format(at);
  const days = dayNumber(now, timeZone) - dayNumber(at, timeZone);
  if (days <= 0) return interpolate(gettext('last seen today at %(time)s'), { time }, true);
  if (days === 1) return interpolate(gettext('last seen yesterday at %(time)s'), { time }, true);
  const sameYear = new Date(now).getUTCFullYear() === new Date(at).getUTCFullYear();
  const date = new Intl.DateTimeFormat(locale, {
    timeZone, day: 'numeric', month: 'short', ...(sameYear ? {} : { year: 'numeric' }),
  }).format(at);
  return interpolate(gettext('last seen %(date)s'), { date }, true);
}

/**
 * How a sidebar entry states someone's presence: `{text, visible}`. Online is
 * said only to screen readers (the dot shows it); away is written out; an
 * offline person is "last seen …" when that is known.
 */
export function presenceNote(status, lastSeen, now, options = {}) {
  if (status === 'online') return { text: gettext('online'), visible: false };
  if (status === 'away') return { text: gettext('away'), visible: true };
  const seen = lastSeenText(lastSeen, now, options);
  return seen ? { text: seen, visible: true } : { text: gettext('offline'), visible: false };
}
