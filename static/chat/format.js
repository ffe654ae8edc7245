// format.js: turns a message body into tokens (text, links, @mentions, *bold*,
// _italic_, `code`, ``` blocks) and the tokens into DOM nodes. Nothing here ever
// builds markup from a string: a body can only ever become text, <a>, <strong>,
// <em>, <code>, <pre> and <span> nodes whose text is set as text.

import { gettext, interpolate, locale, pgettext } from './i18n.js';

// A deleted account keeps its messages' places under a reserved name ("deleted-17",
// which sign-up refuses); people see it as "deleted user" (chat/accounts.py says the same).
const DELETED_PREFIX = 'deleted-';

/** Returns how a username is shown: "deleted user" for a deleted account, else the name. */
export function displayName(username) {
  const name = String(username ?? '');
  return name.startsWith(DELETED_PREFIX) ? gettext('deleted user') : name;
}

/** Bodies longer than this (characters or lines) are folded behind "Show more". */
export const FOLD_CHARS = 600;
export const FOLD_LINES = 12;

// Code as the server reads it for mentions (CommonMark): a block fenced by ``` at
// the start of a line, up to the next such line or the end of the body; a span
// between two runs of the same number of backticks.
const FENCE_LINE = /^ {0,3}```/;
const ONE_LINE_BLOCK = /^ {0,3}```([^`].*?)```\s*$/; // ```code``` on one line
const LANGUAGE = /^[\w+#.-]+$/; // the word after an opening fence: ```python
const INLINE_CODE = /(?<!`)(`+)(?!`)([\s\S]*?[^`])\1(?!`)/g;
// Only http and https, and not glued to a word before it ("xhttp://" is not a link).
const URL_CANDIDATE = /(?<![\p{L}\p{N}])https?:\/\/[^\s<>"`]+/giu;
// As the server finds mentions: `@` then a username (letters, digits, @ . + - _),
// not preceded by a word character or another username character.
const MENTION = /(?<![\p{L}\p{M}\p{N}_@.+-])@([\p{L}\p{M}\p{N}_.@+-]+)/gu;
// Characters that end a sentence rather than a link: "see https://x.y/z."
const TRAILING = new Set(['.', ',', '!', '?', ';', ':', "'", '"', '*', '_']);
const PAIRS = { ')': '(', ']': '[' };
const EMPHASIS = { '*': 'strong', _: 'em' };
const ALNUM = /[\p{L}\p{M}\p{N}]/u;
const SPACE = /\s/u;

/**
 * Splits `body` into tokens: {type: 'text', text}, {type: 'link', href, text},
 * {type: 'mention', name, text, me}, {type: 'code', text}, {type: 'pre', text},
 * {type: 'strong' | 'em', children}. Only names listed in `mentions` become
 * mention tokens; `me` marks the one that names the reader.
 */
export function tokenize(body, { mentions = [], me = null } = {}) {
  const context = { mentions: new Set(Array.isArray(mentions) ? mentions : []), me };
  const text = typeof body === 'string' ? body : '';
  const tokens = [];
  for (const block of blocks(text)) {
    if (block.type === 'pre') tokens.push(block);
    else tokens.push(...inlineCode(block.text, context));
  }
  return tokens.filter((token) => token.type !== 'text' || token.text !== '');
}

// Splits a body into text and fenced blocks, line by line. A block stands on its
// own lines: the line breaks around its fences go with it.
function blocks(text) {
  const lines = text.split('\n');
  const found = [];
  let prose = [];
  const flush = () => {
    if (prose.length > 0) found.push({ type: 'text', text: prose.join('\n') });
    prose = [];
  };
  let index = 0;
  while (index < lines.length) {
    const line = lines[index];
    const oneLine = ONE_LINE_BLOCK.exec(line);
    if (!FENCE_LINE.test(line) || (!oneLine && index === lines.length - 1 && line.trim() === '```')) {
      prose.push(line);
      index += 1;
      continue;
    }
    flush();
    if (oneLine) {
      found.push({ type: 'pre', text: oneLine[1] });
      index += 1;
      continue;
    }
    let end = index + 1;
    while (end < lines.length && !FENCE_LINE.test(lines[end])) end += 1;
    const code = lines.slice(index + 1, end);
    const info = line.replace(FENCE_LINE, '').trim();
    if (info !== '' && !LANGUAGE.test(info)) code.unshift(info); // not a language: code on the fence line
    found.push({ type: 'pre', text: code.join('\n') });
    // What follows a closing fence on its line is text again.
    if (end < lines.length) {
      const after = lines[end].replace(FENCE_LINE, '').replace(/^`*\s*/, '');
      if (after.trim() !== '') prose.push(after);
    }
    index = end + 1;
  }
  flush();
  return found;
}

// Inline code spans first: nothing inside them is a link, a mention or emphasis.
function inlineCode(text, context) {
  const tokens = [];
  let last = 0;
  for (const match of text.matchAll(INLINE_CODE)) {
    tokens.push(...inline(text.slice(last, match.index), context));
    // As in CommonMark, one space just inside each run is padding: `` `a` `` shows `a`.
    const code = match[2];
    const padded = code.length > 2 && code.startsWith(' ') && code.endsWith(' ') && code.trim() !== '';
    tokens.push({ type: 'code', text: padded ? code.slice(1, -1) : code });
    last = match.index + match[0].length;
  }
  tokens.push(...inline(text.slice(last), context));
  return tokens;
}

/** The link a URL candidate stands for, without the punctuation after it, or null. */
export function trimLink(candidate) {
  let url = candidate;
  for (;;) {
    const end = url.at(-1);
    if (TRAILING.has(end)) url = url.slice(0, -1);
    // A closing bracket belongs to the link only when it closes one opened inside it.
    else if (end in PAIRS && count(url, PAIRS[end]) < count(url, end)) url = url.slice(0, -1);
    else break;
  }
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  if ((parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.hostname === '') return null;
  return { text: url, href: parsed.href };
}

function count(text, char) {
  return text.split(char).length - 1;
}

// Links and mentions are found first and kept whole (a `_` inside a URL is not
// emphasis); emphasis is then parsed around them.
function inline(text, context) {
  if (text === '') return [];
  const atoms = new Map(); // start index -> {end, token}
  const taken = [];
  for (const match of text.matchAll(URL_CANDIDATE)) {
    const link = trimLink(match[0]);
    if (!link) continue;
    atoms.set(match.index, { end: match.index + link.text.length, token: { type: 'link', ...link } });
    taken.push([match.index, match.index + link.text.length]);
  }
  for (const match of text.matchAll(MENTION)) {
    // "thanks @bob." names bob, and so does "_ask @bob_" when bob_ is nobody.
    const name = [match[1].replace(/\.+$/, ''), match[1].replace(/[._]+$/, '')].find((it) => context.mentions.has(it));
    if (name === undefined) continue;
    const end = match.index + 1 + name.length;
    if (taken.some(([from, to]) => match.index < to && end > from)) continue;
    atoms.set(match.index, { end, token: { type: 'mention', name, text: `@${name}`, me: name === context.me } });
  }
  return spans(text, 0, text.length, atoms);
}

// Parses text[start, end) into text, atoms and emphasis. An opening marker
// follows the start, a space or punctuation and precedes a non-space; its closer
// is the first matching marker on the same line that follows a non-space and
// precedes the end, a space or punctuation. So `a*b*c` and `snake_case_name` stay
// as they are, and an unclosed marker is just a character.
function spans(text, start, end, atoms) {
  const tokens = [];
  let plain = '';
  const flush = () => {
    if (plain !== '') tokens.push({ type: 'text', text: plain });
    plain = '';
  };
  let index = start;
  while (index < end) {
    const atom = atoms.get(index);
    if (atom) {
      flush();
      tokens.push(atom.token);
      index = atom.end;
      continue;
    }
    const char = text[index];
    const close = char in EMPHASIS && opens(text, index, start) ? closer(text, index, end, atoms) : -1;
    if (close === -1) {
      plain += char;
      index += 1;
      continue;
    }
    flush();
    tokens.push({ type: EMPHASIS[char], children: spans(text, index + 1, close, atoms) });
    index = close + 1;
  }
  flush();
  return tokens;
}

function opens(text, index, start) {
  const marker = text[index];
  const before = index > start ? text[index - 1] : '';
  const after = text[index + 1] ?? '';
  return !ALNUM.test(before) && before !== marker && after !== '' && !SPACE.test(after) && after !== marker;
}

// The index of the marker that closes the one at `open`, or -1.
function closer(text, open, end, atoms) {
  const marker = text[open];
  let index = open + 1;
  while (index < end) {
    const atom = atoms.get(index);
    if (atom) {
      if (atom.end > end) return -1;
      index = atom.end;
      continue;
    }
    const char = text[index];
    if (char === '\n') return -1;
    if (char === marker && index > open + 1) {
      const before = text[index - 1];
      const after = index + 1 < end ? text[index + 1] : '';
      if (!SPACE.test(before) && before !== marker && !ALNUM.test(after) && after !== marker) return index;
    }
    index += 1;
  }
  return -1;
}

/** Whether a body is long enough to be folded behind "Show more". */
export function isLong(body) {
  return body.length > FOLD_CHARS || body.split('\n').length > FOLD_LINES;
}

/** Builds the DOM nodes of `tokens` (from `tokenize`), text set only as text. */
export function renderTokens(tokens) {
  return tokens.map((token) => {
    switch (token.type) {
      case 'link': {
        const link = document.createElement('a');
        link.href = token.href;
        link.target = '_blank';
        link.rel = 'noopener noreferrer';
        link.textContent = token.text;
        return link;
      }
      case 'mention': {
        const mention = document.createElement('span');
        mention.className = token.me ? 'mention mention-me' : 'mention';
        mention.textContent = token.text;
        return mention;
      }
      case 'code':
      case 'pre': {
        const code = document.createElement('code');
        code.textContent = token.text;
        if (token.type === 'code') return code;
        const block = document.createElement('pre');
        block.append(code);
        return block;
      }
      case 'strong':
      case 'em': {
        const node = document.createElement(token.type);
        node.append(...renderTokens(token.children));
        return node;
      }
      default:
        return document.createTextNode(token.text);
    }
  });
}

/** The DOM nodes of a message body: `tokenize` then `renderTokens`. */
export function bodyNodes(body, options) {
  return renderTokens(tokenize(body, options));
}

// Read when a size is shown, so the units follow the page's language ("КБ").
const BYTE_UNITS = [
  () => pgettext('file size', '%(size)s B'),
  () => pgettext('file size', '%(size)s KB'),
  () => pgettext('file size', '%(size)s MB'),
  () => pgettext('file size', '%(size)s GB'),
];

// A file's size as people read it: "812 B", "1.4 MB" (powers of 1024, one decimal
// below ten units).
export function formatBytes(size) {
  let value = Math.max(0, Number(size) || 0);
  let unit = 0;
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const shown = unit === 0 || value >= 10 ? Math.round(value) : Math.round(value * 10) / 10;
  // The page's decimal sign ("1,4 МБ"), and no grouping: "1023 B", not "1,023 B".
  const number = new Intl.NumberFormat(locale(), { useGrouping: false, maximumFractionDigits: 1 }).format(shown);
  return interpolate(BYTE_UNITS[unit](), { size: number }, true);
}
