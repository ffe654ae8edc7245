// protocol.js: the wire format of /ws/chat/ as this page speaks it. Builds the
// client frames, names conversations ("room:<name>", "dm:<username>") and turns
// error codes into words. Pure functions, no DOM and no socket.

import { gettext, interpolate, locale, ngettext } from './i18n.js';

export const MAX_BODY_CHARS = 4000;
export const HISTORY_PAGE = 50;
export const GAP_PAGE = 100;
export const MAX_EMOJI_CHARS = 16;

// Conversation keys -------------------------------------------------------

export const roomKey = (name) => `room:${name}`;
export const dmKey = (user) => `dm:${user}`;

/** Splits a conversation key into its kind ("room" or "dm") and name. */
export function parseKey(key) {
  const colon = key.indexOf(':');
  return { kind: key.slice(0, colon), name: key.slice(colon + 1) };
}

/** Returns the conversation a message frame belongs to, or null if it names none. */
export function messageKey(message, me) {
  if (typeof message.room === 'string') return roomKey(message.room);
  // A direct message is filed under the other party; a note to self under me.
  const other = message.from === me ? message.to : message.from;
  return typeof other === 'string' && other !== '' ? dmKey(other) : null;
}

/** Returns the conversation a `history`, `read` or `typing` frame names by `room` or `with`, or null. */
export function frameKey(frame) {
  if (typeof frame.room === 'string') return roomKey(frame.room);
  if (typeof frame.with === 'string' && frame.with !== '') return dmKey(frame.with);
  return null;
}

/** A message's revision: `rev`, or 0 for a frame from a server that does not number them. */
export function revOf(message) {
  return Number.isInteger(message.rev) ? message.rev : 0;
}

// Client frames -----------------------------------------------------------

/** `room` for a room; `to` (send, typing) or `with` (history, read) for a direct conversation. */
function where(key, directField) {
  const { kind, name } = parseKey(key);
  return kind === 'room' ? { room: name } : { [directField]: name };
}

/** Builds the frame that posts `body` (and my uploads `attachments`, their ids) to the conversation `key`. */
export function sendFrame(key, body, clientId, attachments = []) {
  const frame = { type: 'send', ...where(key, 'to'), body, client_id: clientId };
  if (attachments.length > 0) frame.attachments = attachments;
  return frame;
}

/**
 * Builds a history request: `before` pages backwards, `after` fills a gap (or pages
 * forwards), `around` (a seq) asks the page around one message, none gives the newest.
 */
export function historyFrame(key, { before, after, around, limit = HISTORY_PAGE } = {}) {
  const frame = { type: 'history', ...where(key, 'with'), limit };
  if (before !== undefined) frame.before = before;
  if (after !== undefined) frame.after = after;
  if (around !== undefined) frame.around = around;
  return frame;
}

/** Builds a search for `q`, within conversation `key` when given, below message id `before` when given. */
export function searchFrame(q, { key = null, before = null, limit } = {}) {
  const frame = { type: 'search', q, ...(key === null ? {} : where(key, 'with')) };
  if (Number.isInteger(before)) frame.before = before;
  if (limit !== undefined) frame.limit = limit;
  return frame;
}

/** Builds a catch-up request from a position: `{since: rev}`, or `{after: id}` for a server without revisions. */
export function syncFrame(position) {
  return 'since' in position ? { type: 'sync', since: position.since } : { type: 'sync', after: position.after };
}

/** Builds the frame that replaces the body of my message `id`. */
export const editFrame = (id, body) => ({ type: 'edit', id, body });

/** Builds the frame that deletes message `id`. */
export const deleteFrame = (id) => ({ type: 'delete', id });

/** Builds the frame that adds (`on` true) or removes my `emoji` reaction on message `id`. */
export const reactFrame = (id, emoji, on) => ({ type: 'react', id, emoji, on: on === true });

/** Builds the frame that says I have read conversation `key` up to `seq`. */
export function readFrame(key, seq) {
  return { type: 'read', ...where(key, 'with'), seq };
}

/** Builds the frame that sets how much conversation `key` notifies me ('all', 'mentions' or 'none'). */
export function notifyFrame(key, level) {
  return { type: 'notify', ...where(key, 'with'), level };
}

/** Builds the frame that says I am typing in conversation `key`. */
export function typingFrame(key) {
  return { type: 'typing', ...where(key, 'to') };
}

export const usersFrame = () => ({ type: 'users' });

// Message bodies, reactions and client ids -----------------------------------

/** Counts characters the way the server does (code points, not UTF-16 units). */
export function bodyLength(body) {
  let count = 0;
  for (const _ of body) count += 1;
  return count;
}

/** Returns why a (trimmed) body cannot be sent or saved, or '' when it can. */
export function bodyProblem(body) {
  if (body === '') return gettext('Message is empty');
  const length = bodyLength(body);
  if (length > MAX_BODY_CHARS) {
    const text = ngettext(
      'Message is longer than %(max)s characters (it has %(length)s); shorten it to send.',
      'Message is longer than %(max)s characters (it has %(length)s); shorten it to send.',
      length,
    );
    return interpolate(text, { max: MAX_BODY_CHARS, length }, true);
  }
  return '';
}

// A pictograph, a flag's letters or a keycap: what makes a short string an emoji.
const EMOJI = /\p{Extended_Pictographic}|\p{Regional_Indicator}|\u20E3/u;

/** Tells whether `text` is a reaction the server takes: an emoji of 1 to 16 characters without white space. */
export function isReaction(text) {
  const length = bodyLength(text);
  return length >= 1 && length <= MAX_EMOJI_CHARS && !/\s/u.test(text) && EMOJI.test(text);
}

// Exactly 64 symbols, so `byte & 63` picks each with equal probability.
const CLIENT_ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-';

/** Returns a random 22-character client_id (132 bits) from A-Za-z0-9_-. */
export function newClientId() {
  // crypto.getRandomValues, not crypto.randomUUID: the latter only exists in
  // secure contexts, and the site may be served over plain http.
  const bytes = crypto.getRandomValues(new Uint8Array(22));
  return Array.from(bytes, (byte) => CLIENT_ID_ALPHABET[byte & 63]).join('');
}

// Errors --------------------------------------------------------------------

/** Shows an ISO time as local time of day, or the text itself when it is not a time. */
function clockTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleTimeString(locale(), { hour: 'numeric', minute: '2-digit' });
}

// Each entry is a function, so the words are looked up in the page's language when shown.
const ERROR_WORDS = {
  bad_frame: () => gettext('The server did not understand that request'),
  empty: () => gettext('Message is empty'),
  too_long: () => interpolate(gettext('Message is longer than %(max)s characters'), { max: MAX_BODY_CHARS }, true),
  unknown_user: () => gettext('No such user'),
  unknown_room: () => gettext('No such room'),
  rate_limited: (frame) => {
    const seconds = Math.max(1, Math.ceil(Number(frame.retry_after) || 1));
    const text = ngettext('You are sending too fast; try again in %(seconds)s s', 'You are sending too fast; try again in %(seconds)s s', seconds);
    return interpolate(text, { seconds }, true);
  },
  unavailable: () => gettext('The server is busy; try again'),
  not_found: () => gettext('That message no longer exists'),
  forbidden: () => gettext('You cannot change that message'),
  muted: (frame) => (frame.until
    ? interpolate(gettext('You are muted until %(time)s'), { time: clockTime(frame.until) }, true)
    : gettext('You are muted for now')),
};

/** Puts an `error` frame into words a person can act on. */
export function errorText(frame) {
  const words = Object.hasOwn(ERROR_WORDS, frame.code) ? ERROR_WORDS[frame.code](frame) : null;
  if (words && frame.code === 'bad_frame' && frame.detail) return `${words} (${frame.detail})`;
  if (words) return words;
  if (frame.detail) return String(frame.detail);
  return frame.code
    ? interpolate(gettext('Something went wrong (%(code)s)'), { code: frame.code }, true)
    : gettext('Something went wrong (unknown error)');
}
