// protocol.js: the wire format of /ws/chat/ as this page speaks it. Builds the
// client frames, names conversations ("room:<name>", "dm:<username>") and turns
// error codes into words. Pure functions, no DOM and no socket.

export const MAX_BODY_CHARS = 4000;
export const HISTORY_PAGE = 50;
export const GAP_PAGE = 100;

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

/** Returns the conversation a history answer belongs to, or null. */
export function historyKey(frame) {
  if (typeof frame.room === 'string') return roomKey(frame.room);
  if (typeof frame.with === 'string') return dmKey(frame.with);
  return null;
}

// Client frames -----------------------------------------------------------

/** Builds the frame that posts `body` to the conversation `key`. */
export function sendFrame(key, body, clientId) {
  const { kind, name } = parseKey(key);
  const where = kind === 'room' ? { room: name } : { to: name };
  return { type: 'send', ...where, body, client_id: clientId };
}

/** Builds a history request: `before` pages backwards, `after` fills a gap, neither gives the newest. */
export function historyFrame(key, { before, after, limit = HISTORY_PAGE } = {}) {
  const { kind, name } = parseKey(key);
  const frame = { type: 'history', ...(kind === 'room' ? { room: name } : { with: name }), limit };
  if (before !== undefined) frame.before = before;
  if (after !== undefined) frame.after = after;
  return frame;
}

export const syncFrame = (after) => ({ type: 'sync', after });
export const usersFrame = () => ({ type: 'users' });

// Message bodies and client ids ---------------------------------------------

/** Counts characters the way the server does (code points, not UTF-16 units). */
export function bodyLength(body) {
  let count = 0;
  for (const _ of body) count += 1;
  return count;
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

const ERROR_WORDS = {
  bad_frame: 'The server did not understand that request',
  empty: 'Message is empty',
  too_long: `Message is longer than ${MAX_BODY_CHARS} characters`,
  unknown_user: 'No such user',
  unknown_room: 'No such room',
  rate_limited: (frame) => {
    const seconds = Math.max(1, Math.ceil(Number(frame.retry_after) || 1));
    return `You are sending too fast; try again in ${seconds} s`;
  },
  unavailable: 'The server is busy; try again',
};

/** Puts an `error` frame into words a person can act on. */
export function errorText(frame) {
  const words = Object.hasOwn(ERROR_WORDS, frame.code) ? ERROR_WORDS[frame.code] : null;
  if (typeof words === 'function') return words(frame);
  if (words && frame.code === 'bad_frame' && frame.detail) return `${words} (${frame.detail})`;
  if (words) return words;
  return frame.detail ? String(frame.detail) : `Something went wrong (${frame.code || 'unknown error'})`;
}
