// Mentions of me in the page's store (static/chat/store.js): counted from
// hello.unread after a reload, one more for each live message from someone else
// that mentions me above my read position, and cleared by reading up to it.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { dmKey, roomKey } from '../../static/chat/protocol.js';
import { Store } from '../../static/chat/store.js';

const GENERAL = roomKey('general');
const RANDOM = roomKey('random');
const ALICE = dmKey('alice');

/** Bob's store after a hello: general read up to 50 of 57, 7 unread, 2 of them mention him. */
function afterReload({ mentions = 2 } = {}) {
  const store = new Store('bob');
  store.setRooms(['general', 'random']);
  store.applyHello({
    type: 'hello', user: 'bob', rooms: ['general', 'random'], last_id: 300, rev: 300,
    unread: [
      { room: 'general', read_seq: 50, last_seq: 57, unread: 7, mentions },
      { room: 'random', read_seq: 9, last_seq: 9, unread: 0, mentions: 0 },
      { with: 'alice', read_seq: 3, last_seq: 4, unread: 1, mentions: 1 },
    ],
  });
  return store;
}

/** A message as the server sends it: in general unless `to` or `room` says otherwise. */
function message(id, seq, { from = 'alice', room = 'general', mentions = [], ...rest } = {}) {
  const where = rest.to ? {} : { room };
  return { type: 'message', id, seq, rev: id, ...where, from, body: `m${id}`, mentions, sent_at: '2026-01-01T10:00:00Z', ...rest };
}

test('after a reload the mention counts come from hello.unread', () => {
  const store = afterReload();
  assert.equal(store.mentionsOf(GENERAL), 2);
  assert.equal(store.mentionsOf(RANDOM), 0);
  assert.equal(store.mentionsOf(ALICE), 1);
  assert.equal(store.unreadOf(GENERAL), 7); // the plain unread count keeps its number
  assert.equal(store.mentionsOf(roomKey('nowhere')), 0);
});

test('a live message from someone else that mentions me adds one', () => {
  const store = afterReload();
  store.applyMessage(message(301, 58, { mentions: ['bob'] }));
  assert.equal(store.mentionsOf(GENERAL), 3);
  store.applyMessage(message(302, 1, { room: 'random', mentions: ['carol', 'bob'] }));
  assert.equal(store.mentionsOf(RANDOM), 0); // at or below my read position there
  store.applyMessage(message(303, 10, { room: 'random', mentions: ['carol', 'bob'] }));
  assert.equal(store.mentionsOf(RANDOM), 1);
});

test('my own message, one that mentions others and a deleted one add nothing', () => {
  const store = afterReload();
  store.applyMessage(message(301, 58, { from: 'bob', mentions: ['bob'] }));
  store.applyMessage(message(302, 59, { mentions: ['carol'] }));
  store.applyMessage(message(303, 60, { mentions: ['bob'], deleted: true, body: '' }));
  store.applyMessage(message(304, 61));
  assert.equal(store.mentionsOf(GENERAL), 2);
  assert.equal(store.unreadOf(GENERAL), 9);
});

test('an edit that removes or adds the mention changes the count', () => {
  const store = afterReload();
  store.applyMessage(message(301, 58, { mentions: ['bob'] }));
  store.applyMessage(message(302, 59));
  assert.equal(store.mentionsOf(GENERAL), 3);
  store.applyMessage({ ...message(301, 58), rev: 310, body: 'no one' });
  assert.equal(store.mentionsOf(GENERAL), 2);
  store.applyMessage({ ...message(302, 59, { mentions: ['bob'] }), rev: 311 });
  assert.equal(store.mentionsOf(GENERAL), 3);
});

test('reading up to the newest message clears the count, reading part of it keeps the rest', () => {
  const store = afterReload();
  store.applyMessage(message(301, 58, { mentions: ['bob'] }));
  store.applyMessage(message(302, 59, { mentions: ['bob'] }));
  assert.equal(store.mentionsOf(GENERAL), 4);
  store.markRead(GENERAL, 58);
  assert.equal(store.mentionsOf(GENERAL), 1);
  store.markRead(GENERAL, 59);
  assert.equal(store.mentionsOf(GENERAL), 0);
});

test('with every unread message held the count is exact, read positions included', () => {
  const store = afterReload();
  for (let seq = 51; seq <= 57; seq += 1) {
    store.applyMessage(message(200 + seq, seq, { mentions: seq === 52 || seq === 56 ? ['bob'] : [] }), { inRange: true });
  }
  assert.equal(store.mentionsOf(GENERAL), 2);
  store.markRead(GENERAL, 53);
  assert.equal(store.mentionsOf(GENERAL), 1);
  store.markRead(GENERAL, 57);
  assert.equal(store.mentionsOf(GENERAL), 0);
});

test('a read in another tab clears the count here too', () => {
  const store = afterReload();
  store.applyRead({ type: 'read', user: 'bob', room: 'general', seq: 57 });
  assert.equal(store.mentionsOf(GENERAL), 0);
  store.applyRead({ type: 'read', user: 'bob', with: 'alice', seq: 4 });
  assert.equal(store.mentionsOf(ALICE), 0);
});

test('a later hello replaces the counts with the server\'s', () => {
  const store = afterReload();
  store.applyMessage(message(301, 58, { mentions: ['bob'] }));
  assert.equal(store.mentionsOf(GENERAL), 3);
  store.applyHello({
    type: 'hello', user: 'bob', rooms: ['general', 'random'], last_id: 301, rev: 301,
    unread: [{ room: 'general', read_seq: 57, last_seq: 58, unread: 1, mentions: 1 }],
  });
  assert.equal(store.mentionsOf(GENERAL), 1);
});

test('a server without hello.unread: live mentions still count', () => {
  const store = new Store('bob');
  store.setRooms(['general']);
  store.applyHello({ type: 'hello', user: 'bob', rooms: ['general'], last_id: 10 });
  store.applyMessage(message(11, 5, { mentions: ['bob'] }));
  assert.equal(store.mentionsOf(GENERAL), 1);
});
