// The page's store (static/chat/store.js) when the room list changes: a room
// renamed or removed leaves the sidebar, and a page open on it moves elsewhere.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { dmKey, roomKey } from '../../static/chat/protocol.js';
import { Store } from '../../static/chat/store.js';

/** A store for bob that has seen `rooms` and has `open` open. */
function storeIn(rooms, open) {
  const store = new Store('bob');
  store.setRooms(rooms);
  store.open(roomKey(open));
  return store;
}

/** A stored room message as the server sends it. */
function roomMessage(id, seq, room, body = 'hi') {
  return { type: 'message', id, seq, room, from: 'alice', body, sent_at: '2026-01-01T10:00:00Z' };
}

test('the open room removed moves the page to general and records why', () => {
  const store = storeIn(['general', 'x'], 'x');
  store.setRooms(['general']);
  assert.equal(store.active, roomKey('general'));
  assert.deepEqual(store.takeRoomGone(), { room: 'x', to: roomKey('general') });
  assert.deepEqual(store.roomNames(), ['general']);
});

test('the notice of a move is given once', () => {
  const store = storeIn(['general', 'x'], 'x');
  store.setRooms(['general']);
  assert.notEqual(store.takeRoomGone(), null);
  assert.equal(store.takeRoomGone(), null);
});

test('a renamed open room is left for general, not followed under its new name', () => {
  const store = storeIn(['general', 'x'], 'x');
  store.setRooms(['general', 'y']);
  assert.equal(store.active, roomKey('general'));
  assert.deepEqual(store.roomNames(), ['general', 'y']);
});

test('with general gone too the page moves to the first room', () => {
  const store = storeIn(['general', 'x', 'zeta'], 'x');
  store.setRooms(['alpha', 'zeta']);
  assert.equal(store.active, roomKey('alpha'));
  assert.deepEqual(store.takeRoomGone(), { room: 'x', to: roomKey('alpha') });
});

test('with no room left the page moves to my notes to self', () => {
  const store = storeIn(['general'], 'general');
  store.setRooms([]);
  assert.equal(store.active, dmKey('bob'));
  assert.deepEqual(store.takeRoomGone(), { room: 'general', to: dmKey('bob') });
});

test('a removed room that is not open leaves the sidebar without moving the page', () => {
  const store = storeIn(['general', 'x'], 'general');
  store.applyMessage(roomMessage(1, 1, 'x'));
  assert.deepEqual(store.roomNames(), ['general', 'x']);
  const forgotten = store.setRooms(['general']);
  assert.deepEqual(forgotten.map((conversation) => conversation.key), [roomKey('x')]);
  assert.deepEqual(store.roomNames(), ['general']);
  assert.equal(store.active, roomKey('general'));
  assert.equal(store.takeRoomGone(), null);
});

test('an unchanged room list moves nothing', () => {
  const store = storeIn(['general', 'x'], 'x');
  assert.deepEqual(store.setRooms(['general', 'x']), []);
  assert.equal(store.active, roomKey('x'));
  assert.equal(store.takeRoomGone(), null);
});

test('a direct conversation stays open whatever happens to the rooms', () => {
  const store = storeIn(['general', 'x'], 'general');
  store.open(dmKey('alice'));
  store.setRooms([]);
  assert.equal(store.active, dmKey('alice'));
  assert.equal(store.takeRoomGone(), null);
});

test('unsent messages of a removed room are dropped, not sent to another room', () => {
  const store = storeIn(['general', 'x'], 'x');
  store.addPending(roomKey('x'), 'for x only', 'c1');
  store.addPending(roomKey('general'), 'for general', 'c2');
  store.setRooms(['general']);
  assert.deepEqual([...store.pending.keys()], ['c2']);
  assert.deepEqual(store.pendingFor(store.active).map((pending) => pending.body), ['for general']);
});

test('messages of a renamed room show again under its new name', () => {
  const store = storeIn(['general', 'x'], 'x');
  assert.equal(store.applyMessage(roomMessage(7, 1, 'x')).added, true);
  store.setRooms(['general', 'y']);
  // The server sends the same message (same id) as a message of room y now.
  const { conversation, added } = store.applyMessage(roomMessage(7, 1, 'y'));
  assert.equal(added, true);
  assert.deepEqual(conversation.inOrder().map((message) => message.id), [7]);
});

test('a room list that is not a list changes nothing', () => {
  const store = storeIn(['general', 'x'], 'x');
  assert.deepEqual(store.setRooms(undefined), []);
  assert.deepEqual(store.rooms, ['general', 'x']);
  assert.equal(store.active, roomKey('x'));
});

test('general is where a page starts and returns, wherever it sorts among the rooms', () => {
  const store = new Store('bob');
  store.setRooms(['alpha', 'general', 'zeta']);
  assert.equal(store.fallbackKey(), roomKey('general'));
});
