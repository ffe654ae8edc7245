// mentions.js: the pure part of mentioning people. Finds the `@fragment` being
// typed at the caret, ranks the people who could be meant, puts a chosen name in
// the text, and counts the messages that mention me. No DOM, no socket.

/** The most people the picker offers at once. */
export const MAX_SUGGESTIONS = 8;

/** How many of a room's newest messages are searched for people who spoke there. */
export const RECENT_MESSAGES = 200;

// A username is letters, digits and @ . + - _ (Django's rule). The fragment after
// `@` holds the same characters except `@`; what comes before the `@` must not be
// one of them, so `bob@exa` (an address being typed) opens nothing.
const FRAGMENT_AT_END = /(?:^|[^\p{L}\p{N}\p{M}_.@+-])@([\p{L}\p{N}\p{M}_.+-]+)$/u;
const NAME_CHARS_AT_START = /^[\p{L}\p{N}\p{M}_.+-]*/u;

/**
 * The `@fragment` that ends at `caret` in `text`, as {start, end, query}: `start`
 * is the index of the `@`, `end` the caret, `query` what follows the `@`. Null when
 * the caret is not right after `@` and at least one name character at a word start.
 */
export function fragmentAt(text, caret) {
  if (typeof text !== 'string' || !Number.isInteger(caret) || caret < 0 || caret > text.length) return null;
  const match = FRAGMENT_AT_END.exec(text.slice(0, caret));
  if (!match) return null;
  const query = match[1];
  return { start: caret - query.length - 1, end: caret, query };
}

/**
 * The people `query` may mean, best first, at most `limit`: those whose username
 * starts with it, ignoring case. An exact name comes first, then names that match
 * with the same case, then the rest; within each, the order of `candidates` (the
 * caller lists the likeliest people first).
 */
export function rankCandidates(candidates, query, limit = MAX_SUGGESTIONS) {
  const wanted = query.toLowerCase();
  const rank = (name) => {
    if (name === query) return 0;
    return name.startsWith(query) ? 1 : 2;
  };
  const seen = new Set();
  const matches = [];
  candidates.forEach((name, order) => {
    if (typeof name !== 'string' || seen.has(name) || !name.toLowerCase().startsWith(wanted)) return;
    seen.add(name);
    matches.push({ name, order, rank: rank(name) });
  });
  matches.sort((a, b) => a.rank - b.rank || a.order - b.order);
  return matches.slice(0, limit).map((match) => match.name);
}

/**
 * Puts `@name ` in place of `fragment` (from fragmentAt), together with the rest of
 * a name typed after the caret. Returns {text, caret}, the caret after the space.
 * When a space already follows, it is reused rather than doubled.
 */
export function applyChoice(text, fragment, name) {
  const rest = text.slice(fragment.end);
  const after = rest.slice(NAME_CHARS_AT_START.exec(rest)[0].length);
  const head = `${text.slice(0, fragment.start)}@${name}`;
  if (/^\s/u.test(after)) return { text: head + after, caret: head.length + 1 };
  return { text: `${head} ${after}`, caret: head.length + 1 };
}

/**
 * The people one may mention in `conversation` (a Conversation of the store), the
 * likeliest first, never me. A room: those who spoke among its newest messages,
 * the most recent first, then everyone online (alphabetically). A direct
 * conversation: the other person.
 */
export function peopleToMention(conversation, online, me) {
  if (!conversation) return [];
  if (conversation.kind === 'dm') return conversation.name === me ? [] : [conversation.name];
  const people = [];
  const add = (user) => {
    if (typeof user === 'string' && user !== '' && user !== me && !people.includes(user)) people.push(user);
  };
  const messages = conversation.inOrder();
  for (let index = messages.length - 1; index >= Math.max(0, messages.length - RECENT_MESSAGES); index -= 1) {
    add(messages[index].from);
  }
  for (const user of [...online].sort((a, b) => a.localeCompare(b))) add(user);
  return people;
}

/** Whether `message` mentions me and counts as news: from someone else, not deleted. */
export function mentionsMe(message, me) {
  return (
    message.from !== me &&
    message.deleted !== true &&
    Array.isArray(message.mentions) &&
    message.mentions.includes(me)
  );
}

/**
 * Counts the messages after my read position in `conversation` that mention me.
 * `base` is the server's word at the last hello ({readSeq, lastSeq, mentions}: the
 * mentions among messages after readSeq up to lastSeq); `baseId` the newest id that
 * hello covered. Like the unread count: exact where every message up to lastSeq is
 * held, else the server's count (at most what is left to read), plus later messages
 * held here.
 */
export function countMentions(conversation, base, me, baseId) {
  const { readSeq, lastSeq, mentions } = base;
  const start = Math.max(conversation.readSeq, readSeq);
  let counted = 0;
  if (start < lastSeq && mentions > 0) {
    let held = 0;
    for (let seq = start + 1; seq <= lastSeq; seq += 1) {
      const message = conversation.messages.get(seq);
      if (!message) break;
      held += 1;
      if (mentionsMe(message, me)) counted += 1;
    }
    if (held < lastSeq - start) counted = Math.min(mentions, lastSeq - start);
  }
  const after = Math.max(start, lastSeq);
  for (const message of conversation.messages.values()) {
    if (message.seq > after && message.id > baseId && mentionsMe(message, me)) counted += 1;
  }
  return counted;
}
