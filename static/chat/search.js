// search.js: the logic of message search, no DOM and no socket. Builds the
// `search` request for what was typed, tells the answer to the latest request
// from stale ones, finds the words of a body to highlight, and names a result.

import { displayName } from './format.js';
import { gettext, locale } from './i18n.js';
import { dmKey, messageKey, parseKey, roomKey, searchFrame } from './protocol.js';

/** How long typing must pause before a search goes out. */
export const SEARCH_DELAY_MS = 250;
/** Results asked for per page. */
export const SEARCH_PAGE = 20;
/** The longest search the server takes, in characters. */
export const SEARCH_MAX_CHARS = 200;

/** Where to search: everywhere, or only in the open conversation. */
export const Scope = Object.freeze({ ALL: 'all', HERE: 'here' });

// A word: letters (any script) and digits, as the server splits a search, with
// the combining marks that belong to them. The same characters split a query
// into words and bound the words of a body.
const WORD = /[\p{L}\p{N}\p{M}]+/gu;

/** Tells whether `q` has something to search for: a letter or a digit, and at most SEARCH_MAX_CHARS characters. */
export function isSearchable(q) {
  return typeof q === 'string' && /[\p{L}\p{N}]/u.test(q) && [...q].length <= SEARCH_MAX_CHARS;
}

/** The words of `q` (composed the way the server composes them), lower-cased, without repeats. */
export function queryWords(q) {
  const words = (q.normalize('NFC').match(WORD) ?? []).map((word) => word.toLowerCase());
  return [...new Set(words)];
}

/**
 * Builds the `search` frame for `q` (trimmed) in `scope`, within the conversation
 * `activeKey` when the scope is "here", paging on with `before` (a message id).
 * Returns null when `q` has nothing to search for.
 */
export function searchRequest({ q, scope = Scope.ALL, activeKey = null, before = null, limit = SEARCH_PAGE }) {
  const text = typeof q === 'string' ? q.trim() : '';
  if (!isSearchable(text)) return null;
  const key = scope === Scope.HERE ? activeKey : null;
  return searchFrame(text, { key, before, limit });
}

/** The conversation key a search frame (request or answer) is limited to, or null for all. */
function scopeKey(frame) {
  if (typeof frame.room === 'string') return roomKey(frame.room);
  if (typeof frame.with === 'string') return dmKey(frame.with);
  return null;
}

/**
 * Remembers the search request in flight so that only its answer is taken: an
 * answer for an older `q` (or another scope) is stale and ignored, and so is a
 * second answer to a request already answered.
 */
export class SearchRequests {
  constructor() {
    this.asked = null; // the frame of the latest request
    this.waiting = false; // its answer has not come yet
  }

  /** Records `frame` as the latest request. */
  ask(frame) {
    this.asked = frame;
    this.waiting = true;
  }

  /** Forgets the request in flight: its answer, if it comes, is stale. */
  cancel() {
    this.waiting = false;
  }

  /**
   * Takes an answer: returns {append} (true when it pages on after earlier results)
   * if it answers the latest request, else null.
   */
  accept(answer) {
    const asked = this.asked;
    if (!this.waiting || asked === null || answer.q !== asked.q || scopeKey(answer) !== scopeKey(asked)) return null;
    if (!Array.isArray(answer.messages)) return null;
    this.waiting = false;
    return { append: Number.isInteger(asked.before) };
  }
}

/**
 * The ranges [start, end) of `body` to highlight for `q`: every word of the body
 * that starts with a word of `q`, compared without case, in any script. Ranges
 * that overlap or touch are merged; the result is sorted.
 */
export function highlightRanges(body, q) {
  const words = queryWords(q);
  if (typeof body !== 'string' || words.length === 0) return [];
  const ranges = [];
  for (const match of body.matchAll(WORD)) {
    for (const word of words) {
      const length = prefixLength(match[0], word);
      if (length > 0) ranges.push([match.index, match.index + length]);
    }
  }
  return mergeRanges(ranges);
}

// How many UTF-16 units of `word` make the prefix that lower-cases to `prefix`,
// or 0 when none does. Counted on the original text: lower-casing may change a
// string's length (İ becomes two units), so indexes of the lower-cased body
// would point to the wrong characters.
function prefixLength(word, prefix) {
  let taken = '';
  for (const character of word) {
    taken += character;
    const lower = taken.toLowerCase();
    if (lower === prefix) return taken.length;
    if (lower.length >= prefix.length) return 0;
  }
  return 0;
}

/** Sorts ranges [start, end) and merges those that overlap or touch. */
export function mergeRanges(ranges) {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const merged = [];
  for (const [start, end] of sorted) {
    const last = merged.at(-1);
    if (last && start <= last[1]) last[1] = Math.max(last[1], end);
    else merged.push([start, end]);
  }
  return merged;
}

/** Splits `body` into parts [{text, mark}] along `ranges`, for the view to build nodes from. */
export function highlightParts(body, ranges) {
  const parts = [];
  let at = 0;
  for (const [start, end] of ranges) {
    if (start > at) parts.push({ text: body.slice(at, start), mark: false });
    parts.push({ text: body.slice(start, end), mark: true });
    at = end;
  }
  if (at < body.length || parts.length === 0) parts.push({ text: body.slice(at), mark: false });
  return parts;
}

/** Shows an ISO time as a date and time in `language` (the page's by default). */
export function formatWhen(iso, language = locale()) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  return new Intl.DateTimeFormat(language, { dateStyle: 'medium', timeStyle: 'short' }).format(date);
}

/**
 * What a result shows besides its text: the conversation (`#room`, the other
 * party of a direct conversation, or "notes to self"), the sender and the date.
 * Returns null for a frame that names no conversation.
 */
export function resultLabel(message, me, language = locale()) {
  const key = messageKey(message, me);
  if (key === null) return null;
  const { kind, name } = parseKey(key);
  let where = `#${name}`;
  if (kind === 'dm') where = name === me ? gettext('notes to self') : displayName(name);
  return { key, where, from: displayName(message.from), when: formatWhen(message.sent_at, language) };
}

/**
 * Cuts a long `body` down to about `length` characters around its first
 * highlighted range (with "…" where text was left out), so the match shows in a
 * result. Returns {text, ranges} with the ranges moved to the cut text.
 */
export function snippet(body, ranges, { length = 240, lead = 60 } = {}) {
  if (body.length <= length) return { text: body, ranges };
  const first = ranges.length > 0 ? ranges[0][0] : 0;
  let start = Math.max(0, Math.min(first - lead, body.length - length));
  let end = Math.min(body.length, start + length);
  // Never split a surrogate pair: an emoji or a rare character stays whole.
  if (start > 0 && /[\uDC00-\uDFFF]/.test(body[start])) start -= 1;
  if (end < body.length && /[\uD800-\uDBFF]/.test(body[end - 1])) end += 1;
  const before = start > 0 ? '…' : '';
  const after = end < body.length ? '…' : '';
  const shift = before.length - start;
  const moved = ranges
    .filter(([from, to]) => to > start && from < end)
    .map(([from, to]) => [Math.max(from, start) + shift, Math.min(to, end) + shift]);
  return { text: `${before}${body.slice(start, end)}${after}`, ranges: moved };
}
