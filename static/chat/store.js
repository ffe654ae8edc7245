// store.js: the page's state and nothing else (no DOM, no socket). Conversations
// and their messages, each message at its highest revision, the positions a sync
// resumes from, pending outgoing messages and changes, read positions, unread
// counts and who is typing. Everything changes through the methods below.

import { Conversation, TYPING_SHOWN_MS } from './conversation.js';
import { countMentions } from './mentions.js';
import { DEFAULT_LEVEL, isLevel } from './notices.js';
import { dmKey, frameKey, messageKey, parseKey, revOf, roomKey } from './protocol.js';

/** The room a page falls back to when its room disappears. */
export const HOME_ROOM = 'general';

const NOTHING = Object.freeze({ conversation: null, added: false, changed: false });
const NO_MENTIONS = Object.freeze({ readSeq: 0, lastSeq: 0, mentions: 0 }); // no hello counted them
const PROFILES_PER_ASK = 10; // `profile` frames sent at a time, see takeProfilesToAsk

/** The integer `value`, or `fallback` when it is not one. */
const integer = (value, fallback = 0) => (Number.isInteger(value) ? value : fallback);

/** Everything the page knows, changed only through these methods. */
export class Store {
  constructor(me) {
    this.me = me;
    this.staff = false; // staff may delete anyone's message
    // The server numbers revisions (hello.rev): messages can change, and it
    // understands `read`, `typing` and `sync` `since`.
    this.hasRevisions = false;
    this.helloSeen = false;
    this.conversations = new Map(); // key -> Conversation
    this.index = new Map(); // message id -> {key, seq}: where the message is held
    this.maxId = 0; // largest message id seen
    this.maxRev = 0; // largest revision seen
    this.baseId = 0; // newest id of the last hello that counted unread messages (or of the first hello)
    this.syncPosition = null; // where an unfinished sync stands ({since} or {after}), so a new socket resumes it
    this.pending = new Map(); // client_id -> {clientId, key, body, attachments, state, reason, sentOn}
    this.changes = new Map(); // message id -> {body} or {deleting: true}: sent, not yet answered
    this.active = null; // key of the open conversation
    this.rooms = []; // room names from the server, in its order
    this.directOrder = []; // usernames of direct conversations, most recent first
    this.online = new Set();
    this.away = new Set(); // the online users whose every tab is idle
    this.knowsAway = false; // the server tells away and last seen (hello.away)
    this.lastSeen = new Map(); // offline user -> ISO time last seen (null: never), when known
    this.profilesAsked = new Set(); // users whose last seen this socket was asked for
    this.roomGone = null; // {room, to}: the open room vanished and the page moved to `to`
    // Notification levels other than the default, by conversation key; the server
    // keeps them (hello.levels, `notify`) when `hasLevels`.
    this.levels = new Map();
    this.hasLevels = false;
    // Mentions of me: per Conversation, the server's count at the last hello
    // ({readSeq, lastSeq, mentions}) and the last count made (a forgotten
    // conversation takes both with it).
    this.mentionBases = new WeakMap();
    this.mentionCounts = new WeakMap();
  }

  // ---- conversations and the lists around them ------------------------------

  /** Returns the conversation for `key`, creating it on first use. */
  conversation(key) {
    let conversation = this.conversations.get(key);
    if (!conversation) {
      conversation = new Conversation(key);
      this.conversations.set(key, conversation);
      if (conversation.kind === 'dm') this.directOrder.push(conversation.name);
    }
    return conversation;
  }

  /** Takes the first frame of a socket: who I am, my rights, the cursors and unread counts. Returns {first}. */
  applyHello(frame) {
    const first = !this.helloSeen;
    this.helloSeen = true;
    if (typeof frame.user === 'string') this.me = frame.user;
    this.staff = frame.staff === true;
    // The first hello decides: a server that gains revisions under an open page is
    // spoken to the new way after a reload; one that loses them, at once.
    const hasRevisions = Number.isInteger(frame.rev);
    this.hasRevisions = hasRevisions && (first || this.hasRevisions);
    if (first) {
      // On page load start from the newest id and rev without fetching everything.
      this.maxId = integer(frame.last_id);
      this.baseId = this.maxId;
      if (hasRevisions) this.maxRev = frame.rev;
    }
    this.setOnline(frame.online);
    this.knowsAway = Array.isArray(frame.away);
    this.setAway(frame.away);
    this.profilesAsked.clear(); // a new socket: ask again, people came and went meanwhile
    this.lastSeen.clear();
    // An extension: when each offline direct partner was last online, so no `profile` is needed.
    if (frame.last_seen && typeof frame.last_seen === 'object') {
      for (const [user, seen] of Object.entries(frame.last_seen)) {
        if (typeof seen !== 'string' && seen !== null) continue;
        this.lastSeen.set(user, seen);
        this.profilesAsked.add(user);
      }
    }
    this.setDirect(frame.direct); // an extension: absent from servers without it
    this.hasLevels = Array.isArray(frame.levels); // an extension too
    if (this.hasLevels) this.applyLevels(frame.levels);
    if (Array.isArray(frame.unread)) this.applyUnread(frame.unread, integer(frame.last_id, this.maxId));
    return { first };
  }

  // `hello.unread` is the server's word on every conversation: read positions
  // move forward, and counts restart from it (`lastId` marks what it covers).
  applyUnread(entries, lastId) {
    for (const entry of entries) {
      const key = entry !== null && typeof entry === 'object' ? frameKey(entry) : null;
      if (key === null || !this.isListed(key)) continue;
      const conversation = this.conversation(key);
      const moved = conversation.rebase({
        readSeq: integer(entry.read_seq),
        lastSeq: integer(entry.last_seq),
        unread: integer(entry.unread),
      });
      if (moved) this.followRead(conversation);
      this.mentionBases.set(conversation, {
        readSeq: integer(entry.read_seq), lastSeq: integer(entry.last_seq), mentions: integer(entry.mentions),
      });
      // An extension: how far the other party of a direct conversation has read ("Seen").
      const theirs = integer(entry.their_read_seq);
      if (conversation.kind === 'dm' && theirs > conversation.theirReadSeq) {
        conversation.theirReadSeq = theirs;
      }
    }
    this.baseId = lastId;
  }

  /** Whether `key` is a conversation the page may list: any direct one, or a room the server named. */
  isListed(key) {
    const { kind, name } = parseKey(key);
    return kind === 'dm' ? name !== '' : this.rooms.includes(name);
  }

  // A frame about a conversation (read, typing) finds it, or a listed room; it
  // never adds a direct conversation to the sidebar on its own.
  known(key) {
    if (key === null) return null;
    const conversation = this.conversations.get(key);
    if (conversation) return conversation;
    return parseKey(key).kind === 'room' && this.isListed(key) ? this.conversation(key) : null;
  }

  /** Takes the server's list of direct partners (newest first) as the order to show. */
  setDirect(users) {
    if (!Array.isArray(users)) return;
    const named = users.filter((user) => typeof user === 'string');
    for (const user of named) this.conversation(dmKey(user));
    const rest = this.directOrder.filter((user) => !named.includes(user));
    this.directOrder = [...new Set(named), ...rest];
  }

  /**
   * Replaces the room list and forgets rooms no longer on it (renamed or removed),
   * with their unsent messages, which no room could take now. If the open
   * conversation was one of them, opens `general` (else the first room, else my
   * notes) and records the move in `roomGone`. Returns the forgotten conversations.
   */
  setRooms(names) {
    if (!Array.isArray(names)) return [];
    this.rooms = names.filter((name) => typeof name === 'string');
    const gone = [...this.conversations.values()].filter(
      (conversation) => conversation.kind === 'room' && !this.rooms.includes(conversation.name),
    );
    for (const conversation of gone) {
      this.conversations.delete(conversation.key);
      // A renamed room's messages come back under its new name with the same ids.
      for (const message of conversation.messages.values()) {
        this.index.delete(message.id);
        this.changes.delete(message.id);
      }
      for (const pending of this.pendingFor(conversation.key)) this.pending.delete(pending.clientId);
      if (conversation.key === this.active) {
        const to = this.fallbackKey();
        this.open(to);
        this.roomGone = { room: conversation.name, to };
      }
    }
    return gone;
  }

  /** The conversation to open when the open one is gone: general, the first room, or my notes. */
  fallbackKey() {
    if (this.rooms.includes(HOME_ROOM)) return roomKey(HOME_ROOM);
    return this.rooms.length > 0 ? roomKey(this.rooms[0]) : dmKey(this.me);
  }

  /** Returns the last move away from a vanished room ({room, to}) once, then forgets it. */
  takeRoomGone() {
    const gone = this.roomGone;
    this.roomGone = null;
    return gone;
  }

  /** Replaces the online list. */
  setOnline(users) {
    if (Array.isArray(users)) this.online = new Set(users.filter((user) => typeof user === 'string'));
  }

  /** Marks one user online or offline. */
  setPresence(user, online) {
    if (typeof user !== 'string') return;
    if (online) this.online.add(user);
    else {
      this.online.delete(user);
      this.away.delete(user);
    }
  }

  // ---- presence: online, away, last seen ---------------------------------------

  /** Replaces who is away (a subset of the online list). */
  setAway(users) {
    this.away = new Set(Array.isArray(users) ? users.filter((user) => this.online.has(user)) : []);
  }

  /** Takes a `users` frame: the whole online list and who of them is away. */
  applyUsers(frame) {
    const before = this.online;
    this.setOnline(frame.online);
    this.setAway(frame.away);
    // Gone without a presence frame (a burst summary): their last seen time is unknown.
    for (const user of before) {
      if (!this.online.has(user)) this.forgetLastSeen(user);
    }
  }

  /** Takes a `presence` frame: a user turned online, away or offline (v1: `online` only). */
  applyPresence(frame) {
    const { user } = frame;
    if (typeof user !== 'string') return;
    const status = ['online', 'away', 'offline'].includes(frame.status)
      ? frame.status
      : (frame.online === true ? 'online' : 'offline');
    this.setPresence(user, status !== 'offline');
    if (status === 'away') this.away.add(user);
    else this.away.delete(user);
    if (status === 'offline' && (typeof frame.last_seen === 'string' || frame.last_seen === null)) {
      this.lastSeen.set(user, frame.last_seen);
      this.profilesAsked.add(user); // the frame told it: nothing to ask
    } else {
      this.forgetLastSeen(user);
    }
  }

  /** Takes the answer to `profile`: when an offline user was last seen. */
  applyProfile(frame) {
    if (typeof frame.user !== 'string' || frame.status !== 'offline') return;
    if (this.statusOf(frame.user) !== 'offline') return; // back online since it was asked
    if (typeof frame.last_seen === 'string' || frame.last_seen === null) this.lastSeen.set(frame.user, frame.last_seen);
  }

  forgetLastSeen(user) {
    this.lastSeen.delete(user);
    this.profilesAsked.delete(user);
  }

  /** 'online', 'away' or 'offline'. */
  statusOf(user) {
    if (!this.online.has(user)) return 'offline';
    return this.away.has(user) ? 'away' : 'online';
  }

  /** When an offline user was last seen: an ISO time, null for never, undefined when not known. */
  lastSeenOf(user) {
    return this.lastSeen.get(user);
  }

  /** The offline direct partners whose last seen time to ask for now; each is asked once per socket. */
  takeProfilesToAsk() {
    if (!this.knowsAway) return [];
    // A few at a time (the most recent conversations first): `profile` counts
    // against the read limit, and a burst summary may take many people offline.
    const ask = this.directOrder.filter(
      (user) => user !== this.me && this.statusOf(user) === 'offline' && !this.profilesAsked.has(user),
    ).slice(0, PROFILES_PER_ASK);
    for (const user of ask) this.profilesAsked.add(user);
    return ask;
  }

  /** Rooms to list: the server's rooms, then any other room a message arrived in. */
  roomNames() {
    const names = [...this.rooms];
    for (const conversation of this.conversations.values()) {
      if (conversation.kind === 'room' && !names.includes(conversation.name)) names.push(conversation.name);
    }
    return names;
  }

  /** Users with a direct conversation, the most recently active first. */
  directUsers() {
    return this.directOrder;
  }

  /**
   * Makes `key` the open conversation. A "new messages" line is placed at my read
   * position if something there is unread, and the one of the conversation left goes.
   */
  open(key) {
    const left = this.active === null ? null : this.conversations.get(this.active);
    if (left && left.key !== key) left.dividerSeq = null;
    const conversation = this.conversation(key);
    if (this.active !== key) conversation.dividerSeq = this.unreadOf(key) > 0 ? conversation.readSeq : null;
    this.active = key;
    return conversation;
  }

  // ---- messages ---------------------------------------------------------------

  /**
   * Files a message frame, keeping per id the frame with the highest `rev` (a frame
   * without `rev` counts as rev 0; the copy built from our own ack gives way to any
   * server frame). `inRange`: the frame falls within what the page has loaded of its
   * conversation (a history page, or a loaded conversation from its oldest page on).
   * Returns {conversation, added (a new id), changed (a newer revision of a held one)}.
   */
  applyMessage(frame, { inRange = false } = {}) {
    if (!Number.isInteger(frame.id) || !Number.isInteger(frame.seq)) return NOTHING;
    const key = messageKey(frame, this.me);
    if (key === null) return NOTHING;
    const rev = revOf(frame);
    if (rev > this.maxRev) this.maxRev = rev;
    // Newer than anything seen means new activity (not a page of the past, not
    // a change): that direct conversation moves to the top of its list.
    const isNewest = frame.id > this.maxId;
    if (isNewest) this.maxId = frame.id;

    const held = this.message(frame.id);
    if (held) return this.replaceMessage(held, frame, key);

    // Our own message came back (live, by sync or in history): it is no longer pending.
    const wasPending = frame.from === this.me && typeof frame.client_id === 'string' && this.pending.delete(frame.client_id);
    // A change to an old message this page never loaded: the history page that
    // reaches it brings its current state, so filing it now would only show it
    // out of place, above a hole.
    const lowest = this.conversations.get(key)?.lowestSeq() ?? null;
    if (!inRange && !wasPending && frame.id <= this.baseId && (lowest === null || frame.seq < lowest)) return NOTHING;

    const conversation = this.conversation(key);
    conversation.put(frame);
    this.index.set(frame.id, { key, seq: frame.seq });
    conversation.typing.delete(frame.from); // their message is here: they stopped typing
    if (isNewest && conversation.kind === 'dm' && this.directOrder[0] !== conversation.name) {
      this.directOrder = [conversation.name, ...this.directOrder.filter((user) => user !== conversation.name)];
    }
    return { conversation, added: true, changed: false };
  }

  // A lower or equal revision is old news; a newer one replaces the held frame
  // (its body, deletion and reactions all come from the newer frame).
  replaceMessage(held, frame, key) {
    const where = this.index.get(frame.id);
    const rev = revOf(frame);
    if (held.provisional ? rev < revOf(held) : rev <= revOf(held)) {
      return { conversation: this.conversations.get(where.key), added: false, changed: false };
    }
    if (where.key !== key || where.seq !== frame.seq) this.conversations.get(where.key)?.forget(where.seq);
    const conversation = this.conversation(key);
    conversation.put(frame);
    this.index.set(frame.id, { key, seq: frame.seq });
    this.changes.delete(frame.id); // the answer to a change of ours, or a newer state anyway
    return { conversation, added: false, changed: true };
  }

  /** The message with `id` as held now, or null. */
  message(id) {
    const where = this.index.get(id);
    const message = where && this.conversations.get(where.key)?.messages.get(where.seq);
    return message && message.id === id ? message : null;
  }

  /** Forgets the messages of conversation `key` that `predicate(message)` picks (a window of history left behind). */
  forgetMessages(key, predicate) {
    const conversation = this.conversations.get(key);
    if (!conversation) return;
    for (const message of [...conversation.messages.values()]) {
      if (!predicate(message)) continue;
      conversation.forget(message.seq);
      this.index.delete(message.id);
      this.changes.delete(message.id);
    }
  }

  /** My newest message in `key` that can still be edited, or null. */
  lastOwnMessage(key) {
    const messages = this.conversations.get(key)?.inOrder() ?? [];
    for (let index = messages.length - 1; index >= 0; index -= 1) {
      if (this.canEdit(messages[index])) return messages[index];
    }
    return null;
  }

  /** Whether I may edit `message`: my own, not deleted, on a server that knows edits. */
  canEdit(message) {
    return this.hasRevisions && message.from === this.me && message.deleted !== true;
  }

  /** Whether I may delete `message`: my own (staff: anyone's), not deleted yet. */
  canDelete(message) {
    return this.hasRevisions && message.deleted !== true && (message.from === this.me || this.staff);
  }

  /** Whether I may react to `message`: any message not deleted. */
  canReact(message) {
    return this.hasRevisions && message.deleted !== true;
  }

  /** Builds the stored message an `ack` stands for, from the pending message it acknowledges. */
  messageFromAck(ack) {
    const pending = this.pending.get(ack.client_id);
    if (!pending) return null;
    const { kind, name } = parseKey(pending.key);
    return {
      type: 'message',
      id: ack.id,
      seq: ack.seq,
      ...(Number.isInteger(ack.rev) ? { rev: ack.rev } : {}),
      ...(kind === 'room' ? { room: name } : { to: name }),
      from: this.me,
      body: pending.body,
      ...(pending.attachments.length > 0 ? { attachments: pending.attachments } : {}),
      sent_at: ack.sent_at,
      client_id: pending.clientId,
      provisional: true,
    };
  }

  // ---- pending messages and changes ----------------------------------------------

  /**
   * Records an outgoing message that is not yet acknowledged; `attachments` are its
   * files as a message frame lists them, kept so that a resend carries them too.
   */
  addPending(key, body, clientId, attachments = []) {
    const pending = { clientId, key, body, attachments, state: 'pending', reason: null, sentOn: null, createdAt: Date.now() };
    this.pending.set(clientId, pending);
    return pending;
  }

  /** Pending messages not yet sent on the socket of `generation`, oldest first. */
  unsent(generation) {
    return [...this.pending.values()].filter((pending) => pending.state === 'pending' && pending.sentOn !== generation);
  }

  /** Records that a pending message went out on the socket of `generation`. */
  markSent(clientId, generation) {
    const pending = this.pending.get(clientId);
    if (pending) pending.sentOn = generation;
  }

  /** Marks a pending message as refused by the server. */
  failPending(clientId, reason) {
    const pending = this.pending.get(clientId);
    if (!pending) return;
    pending.state = 'failed';
    pending.reason = reason;
  }

  /** Puts a failed message back in the queue to be sent. */
  retryPending(clientId) {
    const pending = this.pending.get(clientId);
    if (!pending) return null;
    pending.state = 'pending';
    pending.reason = null;
    pending.sentOn = null;
    return pending;
  }

  /** Forgets a pending or failed message. */
  dismissPending(clientId) {
    this.pending.delete(clientId);
  }

  /** Pending and failed messages of one conversation, oldest first. */
  pendingFor(key) {
    return [...this.pending.values()].filter((pending) => pending.key === key);
  }

  /** Records a change sent for message `id` ({body} for an edit, {deleting: true}), until its answer. */
  beginChange(id, change) {
    this.changes.set(id, change);
  }

  /** The unanswered change of message `id`, or null. */
  changeOf(id) {
    return this.changes.get(id) ?? null;
  }

  /** Forgets the unanswered change of message `id` (refused); returns whether there was one. */
  dropChange(id) {
    return this.changes.delete(id);
  }

  /** Forgets every unanswered change: their answers will not come on a new socket; sync brings the truth. */
  dropChanges() {
    this.changes.clear();
  }

  // ---- reading ------------------------------------------------------------------

  /** Moves my read position in `key` forward to `seq` (this page read it); returns whether it moved. */
  markRead(key, seq) {
    const conversation = this.conversations.get(key);
    return conversation ? conversation.readUpTo(seq) : false;
  }

  /**
   * Takes a `read` frame. Mine (another tab or device read) moves my position, my
   * badge and my "new messages" line; the other party's in a direct conversation
   * moves what they have seen. Returns the conversation, or null.
   */
  applyRead(frame) {
    const conversation = this.known(frameKey(frame));
    if (!conversation || !Number.isInteger(frame.seq) || typeof frame.user !== 'string') return null;
    if (frame.user === this.me) {
      if (conversation.readUpTo(frame.seq)) this.followRead(conversation);
    } else if (conversation.kind === 'dm' && frame.seq > conversation.theirReadSeq) {
      conversation.theirReadSeq = frame.seq;
    }
    return conversation;
  }

  // A line shown at my read position follows it when I read elsewhere, and goes
  // once nothing is left unread.
  followRead(conversation) {
    if (conversation.dividerSeq === null) return;
    conversation.dividerSeq = this.unreadOf(conversation.key) > 0 ? conversation.readSeq : null;
  }

  /** Places the "new messages" line at my read position in `key` if none is shown and something is unread. */
  holdDivider(key) {
    const conversation = this.conversations.get(key);
    if (conversation && conversation.dividerSeq === null && this.unreadOf(key) > 0) {
      conversation.dividerSeq = conversation.readSeq;
    }
  }

  /** Messages from others after my read position in `key`. */
  unreadOf(key) {
    return this.conversations.get(key)?.unreadCount(this.me, this.baseId) ?? 0;
  }

  /**
   * Messages from others after my read position in `key` that mention me: the
   * server's count at the last hello, kept live as messages arrive, change and are read.
   */
  mentionsOf(key) {
    const conversation = this.conversations.get(key);
    if (!conversation) return 0;
    const base = this.mentionBases.get(conversation) ?? NO_MENTIONS;
    // A held message that arrives or changes gives the conversation a new sorted
    // list, so the last count stands while that list, the position and the base do.
    const sorted = conversation.inOrder();
    const last = this.mentionCounts.get(conversation);
    if (last && last.sorted === sorted && last.readSeq === conversation.readSeq && last.base === base
      && last.me === this.me && last.baseId === this.baseId) return last.value;
    const value = countMentions(conversation, base, this.me, this.baseId);
    this.mentionCounts.set(conversation, { sorted, readSeq: conversation.readSeq, base, me: this.me, baseId: this.baseId, value });
    return value;
  }

  /** Sum of all unread badges; muted conversations (level `none`) show a dot, not a count, and add nothing. */
  totalUnread() {
    let total = 0;
    for (const key of this.conversations.keys()) {
      if (!this.isMuted(key)) total += this.unreadOf(key);
    }
    return total;
  }

  // ---- notification levels --------------------------------------------------------

  /** Takes `hello.levels`, the server's word on every level that is not the default. */
  applyLevels(entries) {
    this.levels.clear();
    for (const entry of entries) {
      const key = entry !== null && typeof entry === 'object' ? frameKey(entry) : null;
      if (key !== null) this.setLevel(key, entry.level);
    }
  }

  /** Sets how much conversation `key` notifies me (a `notify` frame, or my choice); returns whether it changed. */
  setLevel(key, level) {
    if (key === null || !isLevel(level) || level === this.levelOf(key)) return false;
    if (level === DEFAULT_LEVEL) this.levels.delete(key);
    else this.levels.set(key, level);
    return true;
  }

  /** How much conversation `key` notifies me: 'all', 'mentions' (the default) or 'none'. */
  levelOf(key) {
    return this.levels.get(key) ?? DEFAULT_LEVEL;
  }

  /** Whether conversation `key` is muted: nothing there notifies, its badge is a dot. */
  isMuted(key) {
    return this.levelOf(key) === 'none';
  }

  /** My newest message in direct conversation `key` that the other person has read, or null. */
  seenMessage(key) {
    const conversation = this.conversations.get(key);
    if (!conversation || conversation.kind !== 'dm' || conversation.name === this.me) return null;
    const messages = conversation.inOrder();
    for (let index = messages.length - 1; index >= 0; index -= 1) {
      const message = messages[index];
      if (message.from === this.me && message.seq <= conversation.theirReadSeq) return message;
    }
    return null;
  }

  // ---- typing ---------------------------------------------------------------------

  /** Takes a `typing` frame received at time `now` (ms); returns whether it named a conversation here. */
  applyTyping(frame, now) {
    const conversation = this.known(frameKey(frame));
    if (!conversation || typeof frame.user !== 'string' || frame.user === this.me) return false;
    conversation.typing.set(frame.user, now + TYPING_SHOWN_MS);
    return true;
  }

  /** Who is typing in `key` at time `now`, in the order they started. */
  typists(key, now) {
    return this.conversations.get(key)?.typistsAt(now) ?? [];
  }

  /** When the next typist of `key` stops showing after time `now` (ms), or null when nobody shows. */
  typingEndsAt(key, now) {
    const times = [...(this.conversations.get(key)?.typing.values() ?? [])].filter((until) => until > now);
    return times.length > 0 ? Math.min(...times) : null;
  }

  // ---- catching up ----------------------------------------------------------------

  /**
   * Where a `sync` after a reconnect starts: an unfinished sync's position, else the
   * largest rev seen (`{since}`), or id (`{after}`) on a server without revisions.
   * The position is pinned now: live messages may raise the maximum before the answer.
   */
  beginSync() {
    // A position of the other kind was pinned by a server that spoke the other way.
    if (this.syncPosition !== null && ('since' in this.syncPosition) !== this.hasRevisions) this.syncPosition = null;
    this.syncPosition ??= this.hasRevisions ? { since: this.maxRev } : { after: this.maxId };
    return this.syncPosition;
  }

  /**
   * Takes a `sync` answer's paging fields: returns the position of the next page to
   * ask for, or null when the sync is complete.
   */
  syncAnswered(frame) {
    const from = this.syncPosition ?? this.beginSync();
    // Page on from the answer's last_rev (last_id), not from the maximum: live
    // messages that arrived meanwhile may have raised it past messages still to sync.
    const field = 'since' in from ? 'since' : 'after';
    const last = integer(field === 'since' ? frame.last_rev : frame.last_id, from[field]);
    if (frame.has_more === true && last > from[field]) {
      this.syncPosition = { [field]: last };
      return this.syncPosition;
    }
    this.syncPosition = null;
    if (field === 'since' && last > this.maxRev) this.maxRev = last;
    if (field === 'after' && last > this.maxId) this.maxId = last;
    return null;
  }
}
