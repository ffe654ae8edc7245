// conversation.js: one room or direct conversation as the page holds it: its
// messages by seq (each at its highest revision), how far I (and in a direct
// conversation the other person) have read, and who is typing there.

import { parseKey } from './protocol.js';

/** How long someone shows as typing after their last `typing` frame. */
export const TYPING_SHOWN_MS = 5_000;

/** Whether a message counts towards my unread badge. */
const countsAsUnread = (message, me) => message.from !== me && message.deleted !== true;

/** One room or direct conversation; the Store changes it, the view reads it. */
export class Conversation {
  constructor(key) {
    const { kind, name } = parseKey(key);
    this.key = key;
    this.kind = kind; // "room" | "dm"
    this.name = name; // room name, or the other user's username
    this.messages = new Map(); // seq -> message frame, the highest rev held
    this.sorted = null; // cache of messages in seq order, rebuilt after a change
    this.maxSeq = 0; // largest seq held, 0 when none
    this.readSeq = 0; // how far I have read; never moves back
    // The server's count at the last hello: `unread` messages from others after
    // `readSeq`, up to `lastSeq`. Later messages are counted here as they arrive.
    this.base = { readSeq: 0, lastSeq: 0, unread: 0 };
    this.theirReadSeq = 0; // direct conversation: how far the other person has read
    this.dividerSeq = null; // the "new messages" line goes after this seq; null: no line
    this.typing = new Map(); // username -> time (ms) until which they show as typing
    this.unreadCache = null;
  }

  /** Stores (or replaces) the message at its seq. */
  put(message) {
    this.messages.set(message.seq, message);
    this.sorted = null;
    this.unreadCache = null;
    if (message.seq > this.maxSeq) this.maxSeq = message.seq;
  }

  /** Forgets the message at `seq` (it moved to another conversation). */
  forget(seq) {
    this.messages.delete(seq);
    this.sorted = null;
    this.unreadCache = null;
  }

  /** Returns the messages in seq order. */
  inOrder() {
    if (this.sorted === null) {
      this.sorted = [...this.messages.values()].sort((a, b) => a.seq - b.seq);
    }
    return this.sorted;
  }

  /** The smallest seq held, or null when nothing is. */
  lowestSeq() {
    return this.inOrder()[0]?.seq ?? null;
  }

  /** Moves my read position forward to `seq`; returns whether it moved. */
  readUpTo(seq) {
    if (!Number.isInteger(seq) || seq <= this.readSeq) return false;
    this.readSeq = seq;
    this.unreadCache = null;
    return true;
  }

  /** Takes the server's read position and unread count from a `hello`; returns whether my position moved. */
  rebase({ readSeq, lastSeq, unread }) {
    this.base = { readSeq, lastSeq, unread };
    this.unreadCache = null;
    return this.readUpTo(readSeq);
  }

  /**
   * Counts messages from others after my read position: what the server counted at
   * the last hello (less what I have read since), plus later messages held here,
   * that is those with an id above `baseId`, the newest id of that hello.
   */
  unreadCount(me, baseId) {
    const cache = this.unreadCache;
    if (cache && cache.me === me && cache.baseId === baseId) return cache.value;

    const { lastSeq, unread } = this.base;
    const start = Math.max(this.readSeq, this.base.readSeq);
    let counted = 0;
    if (start < lastSeq && unread > 0) {
      // Exact when every message in (start, lastSeq] is here; otherwise the
      // server's count, capped by how many messages are left to read.
      let held = 0;
      for (let seq = start + 1; seq <= lastSeq; seq += 1) {
        const message = this.messages.get(seq);
        if (!message) break;
        held += 1;
        if (countsAsUnread(message, me)) counted += 1;
      }
      if (held < lastSeq - start) counted = Math.min(unread, lastSeq - start);
    }
    const after = Math.max(start, lastSeq);
    for (const message of this.messages.values()) {
      if (message.seq > after && message.id > baseId && countsAsUnread(message, me)) counted += 1;
    }
    this.unreadCache = { me, baseId, value: counted };
    return counted;
  }

  /** Usernames typing here at time `now`, in the order they started; forgets the others. */
  typistsAt(now) {
    for (const [user, until] of this.typing) if (until <= now) this.typing.delete(user);
    return [...this.typing.keys()];
  }
}
