// The page's store (static/chat/store.js) and reading: unread badges and the
// "new messages" line start from hello.unread, stay live, never move back, and
// follow my reads in other tabs; "seen" follows the other party's reads.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { dmKey, roomKey } from '../../static/chat/protocol.js';
import { Store } from '../../static/chat/store.js';

const GENERAL = roomKey('general');
const RANDOM = roomKey('random');
const ALICE = dmKey('alice');

/** Bob's store after a hello saying general was read up to 50 of 57, with 7 unread. */
function afterReload() {
  const store = new Store('bob');
  store.setRooms(['general', 'random']);
  store.applyHello({
    type: 'hello', user: 'bob', rooms: ['general', 'random'], last_id: 300, rev: 300,
    unread: [
      { room: 'general', read_seq: 50, last_seq: 57, unread: 7, mentions: 1 },
      { room: 'random', read_seq: 9, last_seq: 9, unread: 0, mentions: 0 },
      { with: 'alice', read_seq: 3, last_seq: 4, unread: 1, mentions: 0 },
    ],
  });
  return store;
}

/** A message as the server sends it: in general unless `to` or `room` says otherwise. */
function message(id, seq, { from = 'alice', room = 'general', ...rest } = {}) {
  const where = rest.to ? {} : { room };
  return { type: 'message', id, seq, rev: id, ...where, from, body: `m${id}`, sent_at: '2026-01-01T10:00:00Z', ...rest };
}

/** The messages of general from `first` to `last` seq, as a history page brings them. */
function page(store, first, last, from = 'alice') {
  for (let seq = first; seq <= last; seq += 1) store.applyMessage(message(200 + seq, seq, { from }), { inRange: true });
}

test('badges after a reload come from hello.unread', () => {
  const store = afterReload();
  assert.equal(store.unreadOf(GENERAL), 7);
  assert.equal(store.unreadOf(RANDOM), 0);
  assert.equal(store.unreadOf(ALICE), 1);
  assert.equal(store.totalUnread(), 8);
});

test('a new message from someone else counts, one of mine does not', () => {
  const store = afterReload();
  store.open(RANDOM);
  store.applyMessage(message(301, 58));
  store.applyMessage(message(302, 59, { from: 'bob' }));
  assert.equal(store.unreadOf(GENERAL), 8);
});

test('a change to an old message does not count as unread', () => {
  const store = afterReload();
  page(store, 40, 57);
  store.applyMessage({ ...message(245, 45), rev: 301, body: 'edited' });
  assert.equal(store.unreadOf(GENERAL), 7);
});

test('reading in this tab moves the position forward and never back', () => {
  const store = afterReload();
  page(store, 40, 57);
  assert.equal(store.markRead(GENERAL, 55), true);
  assert.equal(store.unreadOf(GENERAL), 2);
  assert.equal(store.markRead(GENERAL, 52), false);
  assert.equal(store.conversations.get(GENERAL).readSeq, 55);
  assert.equal(store.unreadOf(GENERAL), 2);
});

test('a read frame that would move back changes nothing', () => {
  const store = afterReload();
  store.applyRead({ type: 'read', user: 'bob', room: 'general', seq: 56 });
  store.applyRead({ type: 'read', user: 'bob', room: 'general', seq: 51 });
  assert.equal(store.conversations.get(GENERAL).readSeq, 56);
});

test('a later hello with an older read position does not move it back', () => {
  const store = afterReload();
  store.markRead(GENERAL, 57);
  store.applyHello({
    type: 'hello', user: 'bob', rooms: ['general', 'random'], last_id: 300, rev: 300,
    unread: [{ room: 'general', read_seq: 50, last_seq: 57, unread: 7 }],
  });
  assert.equal(store.conversations.get(GENERAL).readSeq, 57);
  assert.equal(store.unreadOf(GENERAL), 0);
});

test('a reconnect hello with a position read on another device moves the line and the badge', () => {
  const store = afterReload();
  store.open(GENERAL);
  page(store, 40, 57);
  store.applyHello({
    type: 'hello', user: 'bob', rooms: ['general', 'random'], last_id: 300, rev: 300,
    unread: [{ room: 'general', read_seq: 55, last_seq: 57, unread: 2 }],
  });
  assert.equal(store.conversations.get(GENERAL).dividerSeq, 55);
  assert.equal(store.unreadOf(GENERAL), 2);
});

test('reading up to the end without the messages loaded clears the badge', () => {
  const store = afterReload();
  store.applyRead({ type: 'read', user: 'bob', room: 'general', seq: 57 });
  assert.equal(store.unreadOf(GENERAL), 0);
});

test('reading part of the way without the messages loaded leaves at most what is left', () => {
  const store = afterReload();
  store.applyRead({ type: 'read', user: 'bob', room: 'general', seq: 55 });
  assert.equal(store.unreadOf(GENERAL), 2);
});

test('a read frame from my other tab clears the badge and the new-messages line here', () => {
  const store = afterReload();
  store.open(GENERAL);
  page(store, 40, 57);
  assert.equal(store.conversations.get(GENERAL).dividerSeq, 50);
  store.applyRead({ type: 'read', user: 'bob', room: 'general', seq: 57 });
  assert.equal(store.unreadOf(GENERAL), 0);
  assert.equal(store.conversations.get(GENERAL).dividerSeq, null);
  assert.equal(store.totalUnread(), 1);
});

test('a read frame from my other tab part of the way moves the line with it', () => {
  const store = afterReload();
  store.open(GENERAL);
  page(store, 40, 57);
  store.applyRead({ type: 'read', user: 'bob', room: 'general', seq: 54 });
  assert.equal(store.conversations.get(GENERAL).dividerSeq, 54);
  assert.equal(store.unreadOf(GENERAL), 3);
});

test('reading in this tab keeps the line where it was while the conversation stays open', () => {
  const store = afterReload();
  store.open(GENERAL);
  page(store, 40, 57);
  store.markRead(GENERAL, 57);
  assert.equal(store.conversations.get(GENERAL).dividerSeq, 50);
  // The server echoes my own read back: nothing moves.
  store.applyRead({ type: 'read', user: 'bob', room: 'general', seq: 57 });
  assert.equal(store.conversations.get(GENERAL).dividerSeq, 50);
  // Leaving and coming back: nothing unread, no line.
  store.open(RANDOM);
  store.open(GENERAL);
  assert.equal(store.conversations.get(GENERAL).dividerSeq, null);
});

test('messages arriving while I look elsewhere get a line above them', () => {
  const store = afterReload();
  store.open(RANDOM);
  assert.equal(store.conversations.get(RANDOM).dividerSeq, null);
  store.applyMessage(message(301, 10, { room: 'random' }));
  store.holdDivider(RANDOM);
  assert.equal(store.conversations.get(RANDOM).dividerSeq, 9);
  // A second message does not move the line.
  store.applyMessage(message(302, 11, { room: 'random' }));
  store.holdDivider(RANDOM);
  assert.equal(store.conversations.get(RANDOM).dividerSeq, 9);
});

test('a deleted unread message no longer counts', () => {
  const store = afterReload();
  page(store, 40, 57);
  store.applyMessage({ ...message(257, 57), rev: 400, body: '', deleted: true });
  assert.equal(store.unreadOf(GENERAL), 6);
});

test('without hello.unread only messages newer than the page count', () => {
  const store = new Store('bob');
  store.setRooms(['general']);
  store.applyHello({ type: 'hello', user: 'bob', rooms: ['general'], last_id: 300 });
  page(store, 40, 57); // ids 240..257: before the page loaded
  store.applyMessage(message(301, 58));
  assert.equal(store.unreadOf(GENERAL), 1);
});

test('seen marks my newest direct message the other person has read', () => {
  const store = afterReload();
  store.applyMessage(message(301, 5, { to: 'alice', from: 'bob' }));
  store.applyMessage(message(302, 6, { to: 'alice', from: 'bob' }));
  assert.equal(store.seenMessage(ALICE), null);
  store.applyRead({ type: 'read', user: 'alice', with: 'alice', seq: 5 });
  assert.equal(store.seenMessage(ALICE).id, 301);
  store.applyRead({ type: 'read', user: 'alice', with: 'alice', seq: 6 });
  assert.equal(store.seenMessage(ALICE).id, 302);
  // Their read is not mine: my own position in the conversation did not move.
  assert.equal(store.conversations.get(ALICE).readSeq, 3);
});

test('seen never moves back', () => {
  const store = afterReload();
  store.applyMessage(message(301, 5, { to: 'alice', from: 'bob' }));
  store.applyMessage(message(302, 6, { to: 'alice', from: 'bob' }));
  store.applyRead({ type: 'read', user: 'alice', with: 'alice', seq: 6 });
  store.applyRead({ type: 'read', user: 'alice', with: 'alice', seq: 5 });
  assert.equal(store.seenMessage(ALICE).id, 302);
});

test('a read frame about a room from someone else changes nothing of mine', () => {
  const store = afterReload();
  store.applyRead({ type: 'read', user: 'alice', room: 'general', seq: 57 });
  assert.equal(store.unreadOf(GENERAL), 7);
});

test('hello.unread tells how far the other party of a direct conversation has read', () => {
  const store = new Store('alice');
  store.applyHello({
    type: 'hello', user: 'alice', online: [], rooms: ['general'], direct: ['bob'],
    last_id: 2, rev: 2, staff: false,
    unread: [{ with: 'bob', read_seq: 2, last_seq: 2, unread: 0, mentions: 0, their_read_seq: 1 }],
  });
  store.applyMessage({ type: 'message', id: 1, seq: 1, to: 'bob', from: 'alice', body: 'one', sent_at: '2026-12-01T10:00:00.000Z', client_id: 'a', rev: 1 }, { inRange: true });
  store.applyMessage({ type: 'message', id: 2, seq: 2, to: 'bob', from: 'alice', body: 'two', sent_at: '2026-12-01T10:00:01.000Z', client_id: 'b', rev: 2 }, { inRange: true });
  assert.equal(store.seenMessage('dm:bob').id, 1);
});
