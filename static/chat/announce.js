// announce.js: what a screen reader hears when messages arrive. Decides which
// live messages are worth saying, puts them into words, and speaks at most once
// every couple of seconds, so a busy room is summed up instead of read out
// message by message. No DOM: `say(text)` puts the words in the live region.

import { gettext, interpolate, ngettext } from './i18n.js';
import { parseKey } from './protocol.js';

/** The least time between two announcements. */
export const ANNOUNCE_EVERY_MS = 2000;
/** Longer bodies are cut to this many characters (and an ellipsis). */
export const MAX_SPOKEN_CHARS = 120;

/** Cuts `text` to `max` characters (whole code points), adding "…" when it was longer. */
export function truncate(text, max = MAX_SPOKEN_CHARS) {
  const chars = [...text.replace(/\s+/g, ' ').trim()];
  return chars.length <= max ? chars.join('') : `${chars.slice(0, max - 1).join('').trimEnd()}…`;
}

/**
 * What a new live message is worth saying, or null. `key` is its conversation,
 * `active` the open one, `me` the reader. Someone else's message in the open
 * conversation is read out; in a direct conversation elsewhere it is named; in
 * another room the sidebar's badge says it, so nothing is.
 */
export function noticeOf({ key, from, body, deleted = false }, { me, active }) {
  if (typeof from !== 'string' || from === me || deleted === true || typeof key !== 'string') return null;
  if (key === active) return { key, from, body: typeof body === 'string' ? body : '', here: true };
  if (parseKey(key).kind === 'dm') return { key, from, body: '', here: false };
  return null;
}

/** Says one conversation's waiting notices (all of the same `key`) in a few words. */
function phrase(notices) {
  const [first] = notices;
  const { kind, name } = parseKey(first.key);
  if (notices.length === 1) {
    if (first.here) return interpolate(gettext('%(user)s: %(text)s'), { user: first.from, text: truncate(first.body) }, true);
    return interpolate(gettext('New message from %(user)s'), { user: first.from }, true);
  }
  const values = { count: notices.length, room: name, user: name };
  if (kind === 'room') return interpolate(ngettext('%(count)s new message in #%(room)s', '%(count)s new messages in #%(room)s', notices.length), values, true);
  return interpolate(ngettext('%(count)s new message from %(user)s', '%(count)s new messages from %(user)s', notices.length), values, true);
}

/**
 * Puts the notices waiting since the last announcement into one announcement:
 * one phrase per conversation, in the order they first spoke.
 */
export function announcement(notices) {
  const byKey = new Map();
  for (const notice of notices) {
    if (!byKey.has(notice.key)) byKey.set(notice.key, []);
    byKey.get(notice.key).push(notice);
  }
  return [...byKey.values()].map(phrase).join('. ');
}

/** Speaks notices through `say(text)`, at most once per `everyMs`, summing up what waited meanwhile. */
export class Announcer {
  /**
   * `now()` is the clock and `timers` ({set, clear}, setTimeout's by default)
   * schedule the next announcement; tests inject both.
   */
  constructor(say, {
    now = () => Date.now(),
    timers = { set: (fn, ms) => setTimeout(fn, ms), clear: (timer) => clearTimeout(timer) },
    everyMs = ANNOUNCE_EVERY_MS,
  } = {}) {
    this.say = say;
    this.now = now;
    this.timers = timers;
    this.everyMs = everyMs;
    this.waiting = [];
    this.timer = null;
    this.spokeAt = null; // when the last announcement was made
  }

  /** Takes a notice (from noticeOf; null is ignored): said now, or with the others once the pause is over. */
  add(notice) {
    if (notice === null) return;
    this.waiting.push(notice);
    if (this.timer !== null) return;
    const wait = this.spokeAt === null ? 0 : this.spokeAt + this.everyMs - this.now();
    if (wait <= 0) this.flush();
    else this.timer = this.timers.set(() => this.flush(), wait);
  }

  /** Says what waits, if anything. */
  flush() {
    if (this.timer !== null) this.timers.clear(this.timer);
    this.timer = null;
    if (this.waiting.length === 0) return;
    const text = announcement(this.waiting);
    this.waiting = [];
    this.spokeAt = this.now();
    this.say(text);
  }
}
