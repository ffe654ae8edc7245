// store.js: the page's state and nothing else (no DOM, no socket). Conversations
// and their messages by seq, the global de-duplication by id, the largest id
// seen (for sync), pending outgoing messages by client_id, and unread counts.

import { dmKey, messageKey, parseKey, roomKey } from './protocol.js';

/** The room a page falls back to when its room disappears. */
export const HOME_ROOM = 'general';

/** One room or direct conversation and what the page has loaded of it. */
export class Conversation {
  constructor(key) {
    const { kind, name } = parseKey(key);
    this.key = key;
    this.kind = kind; // "room" | "dm"
    this.name = name; // room name, or the other user's username
    this.messages = new Map(); // seq -> message frame
    this.sorted = null; // cache of messages in seq order, rebuilt after a change
    this.maxSeq = 0; // largest seq loaded, 0 when none
    this.loaded = false; // the newest page has been fetched
    this.oldestSeq = null; // smallest seq fetched by paging backwards: the next `before`
    this.hasOlder = true;
    this.unread = 0;
    this.request = null; // the history request in flight: {mode, value, timer}
    this.queue = []; // history requests waiting for that one to be answered
    this.gapsAsked = new Set(); // `after` values already asked, so a gap is fetched once
    this.loadError = null;
  }

  /** Stores (or replaces) the message at its seq. */
  put(message) {
    this.messages.set(message.seq, message);
    this.sorted = null;
    if (message.seq > this.maxSeq) this.maxSeq = message.seq;
  }

  /** Returns the messages in seq order. */
  inOrder() {
    if (this.sorted === null) {
      this.sorted = [...this.messages.values()].sort((a, b) => a.seq - b.seq);
    }
    return this.sorted;
  }
}

/** Everything the page knows, changed only through these methods. */
export class Store {
  constructor(me) {
    this.me = me;
    this.helloSeen = false;
    this.conversations = new Map(); // key -> Conversation
    this.seenIds = new Set(); // every message id stored, across all conversations
    this.maxId = 0; // largest message id seen
    this.syncCursor = null; // `after` of an unfinished sync, so a new socket resumes it
    this.pending = new Map(); // client_id -> {clientId, key, body, state, reason, sentOn}
    this.active = null; // key of the open conversation
    this.rooms = []; // room names from the server, in its order
    this.directOrder = []; // usernames of direct conversations, most recent first
    this.online = new Set();
    this.roomGone = null; // {room, to}: the open room vanished and the page moved to `to`
  }

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
      for (const message of conversation.messages.values()) this.seenIds.delete(message.id);
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
    else this.online.delete(user);
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

  /** Makes `key` the open conversation and clears its unread count. */
  open(key) {
    const conversation = this.conversation(key);
    this.active = key;
    conversation.unread = 0;
    return conversation;
  }

  /**
   * Files a message frame under its conversation unless its id was seen before.
   * Returns {conversation, added}; `countUnread` makes it count towards the badge.
   */
  addMessage(message, { countUnread = false } = {}) {
    if (!Number.isInteger(message.id) || !Number.isInteger(message.seq)) return { conversation: null, added: false };
    const key = messageKey(message, this.me);
    if (key === null) return { conversation: null, added: false };
    const conversation = this.conversation(key);
    // Newer than anything seen means new activity (not a page of the past):
    // that direct conversation moves to the top of its list.
    const isNewest = message.id > this.maxId;
    if (isNewest) this.maxId = message.id;

    if (this.seenIds.has(message.id)) {
      // The copy built from our own ack gives way to the server's frame.
      const existing = conversation.messages.get(message.seq);
      if (existing && existing.provisional && existing.id === message.id) conversation.put(message);
      return { conversation, added: false };
    }
    this.seenIds.add(message.id);
    conversation.put(message);
    if (isNewest && conversation.kind === 'dm' && this.directOrder[0] !== conversation.name) {
      this.directOrder = [conversation.name, ...this.directOrder.filter((user) => user !== conversation.name)];
    }

    // Our own message came back (live, by sync or in history): it is no longer pending.
    if (message.from === this.me && typeof message.client_id === 'string') {
      this.pending.delete(message.client_id);
    }
    if (countUnread && message.from !== this.me && key !== this.active) conversation.unread += 1;
    return { conversation, added: true };
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
      ...(kind === 'room' ? { room: name } : { to: name }),
      from: this.me,
      body: pending.body,
      sent_at: ack.sent_at,
      client_id: pending.clientId,
      provisional: true,
    };
  }

  /** Records an outgoing message that is not yet acknowledged. */
  addPending(key, body, clientId) {
    const pending = { clientId, key, body, state: 'pending', reason: null, sentOn: null, createdAt: Date.now() };
    this.pending.set(clientId, pending);
    return pending;
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

  /** Sum of all unread badges. */
  totalUnread() {
    let total = 0;
    for (const conversation of this.conversations.values()) total += conversation.unread;
    return total;
  }

  /** The id a `sync` after a reconnect starts from. */
  syncAfter() {
    return this.syncCursor ?? this.maxId;
  }
}
