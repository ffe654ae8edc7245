// typing.js: "is typing…" in both directions: telling the server that I am
// typing (at most once every 2 s per conversation) and putting who else is
// typing into words. No DOM and no socket: both are handed in.

import { gettext, interpolateParts } from './i18n.js';

/** The least time between two `typing` frames for one conversation. */
export const TYPING_EVERY_MS = 2_000;

/** Sends `typing` for a conversation at most once every TYPING_EVERY_MS. */
export class TypingNotifier {
  /** `send(key)` sends the frame and returns whether it went out; `now()` reads the clock in ms. */
  constructor(send, now = () => Date.now()) {
    this.send = send;
    this.now = now;
    this.lastSent = new Map(); // conversation key -> time of the last `typing` sent
  }

  /** Tells the server I am typing in `key`, unless it was told less than 2 s ago; returns whether it was told. */
  typed(key) {
    const now = this.now();
    const last = this.lastSent.get(key);
    if (last !== undefined && now - last < TYPING_EVERY_MS) return false;
    if (!this.send(key)) return false;
    this.lastSent.set(key, now);
    return true;
  }

  /** Forgets the last `typing` of `key`: my message went out, and the others stopped showing me as typing. */
  sent(key) {
    this.lastSent.delete(key);
  }
}

/**
 * Words who is typing as parts: strings, and `{user}` for each name (the view
 * isolates names). One or two are named; more are "several people".
 */
export function typingParts(users) {
  if (users.length === 0) return [];
  if (users.length === 1) return interpolateParts(gettext('%(user)s is typing…'), { user: { user: users[0] } });
  if (users.length === 2) {
    return interpolateParts(gettext('%(first)s and %(second)s are typing…'), { first: { user: users[0] }, second: { user: users[1] } });
  }
  return [gettext('several people are typing…')];
}
