// The page's store (static/chat/store.js) and messages that change: per id the
// frame with the highest rev wins, deletions leave a tombstone in place, and
// pending messages are matched by their client_id.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { roomKey } from '../../static/chat/protocol.js';
import { Store } from '../../static/chat/store.js';

const GENERAL = roomKey('general');

/** A store for bob that has had its first hello (newest id 0, rev 0) and has general open. */
function bobsStore({ lastId = 0, rev = 0 } = {}) {
  const store = new Store('bob');
  store.setRooms(['general']);
  store.applyHello({ type: 'hello', user: 'bob', online: ['bob'], rooms: ['general'], last_id: lastId, rev, unread: [] });
  store.open(GENERAL);
  return store;
}

/** A room message in general as the server sends it. */
function message(id, seq, { rev = id, from = 'alice', body = `message ${id}`, ...rest } = {}) {
  return {
    type: 'message', id, seq, rev, room: 'general', from, body,
    sent_at: '2026-01-01T10:00:00Z', edited_at: null, deleted: false, reactions: [], ...rest,
  };
}

const bodies = (store) => store.conversations.get(GENERAL).inOrder().map((held) => held.body);

test('a newer revision of a message replaces the one held', () => {
  const store = bobsStore();
  store.applyMessage(message(1, 1, { rev: 1, body: 'teh' }));
  const result = store.applyMessage(message(1, 1, { rev: 5, body: 'the', edited_at: '2026-01-01T10:01:00Z' }));
  assert.equal(result.changed, true);
  assert.equal(result.added, false);
  assert.deepEqual(bodies(store), ['the']);
  assert.equal(store.message(1).edited_at, '2026-01-01T10:01:00Z');
});

test('an older or equal revision arriving late is ignored', () => {
  const store = bobsStore();
  store.applyMessage(message(1, 1, { rev: 7, body: 'final' }));
  assert.equal(store.applyMessage(message(1, 1, { rev: 3, body: 'draft' })).changed, false);
  assert.equal(store.applyMessage(message(1, 1, { rev: 7, body: 'same rev, other text' })).changed, false);
  assert.deepEqual(bodies(store), ['final']);
});

test('a message without rev from an old server counts as rev 0', () => {
  const store = bobsStore();
  const old = message(1, 1, { body: 'from an old server' });
  delete old.rev;
  store.applyMessage(old);
  assert.equal(store.applyMessage({ ...old, body: 'also rev 0' }).changed, false);
  assert.equal(store.applyMessage(message(1, 1, { rev: 1, body: 'rev 1' })).changed, true);
  assert.deepEqual(bodies(store), ['rev 1']);
});

test('the largest rev seen is where the next sync starts, whatever order frames came in', () => {
  const store = bobsStore({ rev: 10 });
  store.applyMessage(message(1, 1, { rev: 14 }));
  store.applyMessage(message(2, 2, { rev: 12 }));
  assert.deepEqual(store.beginSync(), { since: 14 });
});

test('a deleted message keeps its place as a tombstone without body or reactions', () => {
  const store = bobsStore();
  store.applyMessage(message(1, 1, { body: 'one' }));
  store.applyMessage(message(2, 2, { body: 'two', reactions: [{ emoji: '👍', users: ['bob'] }] }));
  store.applyMessage(message(3, 3, { body: 'three' }));
  store.applyMessage(message(2, 2, { rev: 9, body: '', deleted: true, reactions: [] }));
  const held = store.conversations.get(GENERAL).inOrder();
  assert.deepEqual(held.map((row) => row.seq), [1, 2, 3]);
  assert.equal(held[1].deleted, true);
  assert.deepEqual(held[1].reactions, []);
  assert.equal(store.canReact(held[1]), false);
  assert.equal(store.canDelete(held[1]), false);
});

test('reactions come whole from the newer frame, not merged with the older one', () => {
  const store = bobsStore();
  store.applyMessage(message(1, 1, { rev: 1, reactions: [{ emoji: '👍', users: ['alice', 'bob'] }] }));
  store.applyMessage(message(1, 1, { rev: 2, reactions: [{ emoji: '🎉', users: ['carol'] }] }));
  assert.deepEqual(store.message(1).reactions, [{ emoji: '🎉', users: ['carol'] }]);
});

test('a stale reaction frame does not bring back a reaction that was removed', () => {
  const store = bobsStore();
  store.applyMessage(message(1, 1, { rev: 4, reactions: [] }));
  store.applyMessage(message(1, 1, { rev: 3, reactions: [{ emoji: '👍', users: ['bob'] }] }));
  assert.deepEqual(store.message(1).reactions, []);
});

test('my message coming back with its client_id is no longer pending', () => {
  const store = bobsStore();
  store.addPending(GENERAL, 'hello', 'k1');
  store.addPending(GENERAL, 'other', 'k2');
  store.applyMessage(message(5, 1, { from: 'bob', body: 'hello', client_id: 'k1' }));
  assert.deepEqual(store.pendingFor(GENERAL).map((pending) => pending.clientId), ['k2']);
});

test('the copy built from my ack gives way to the server frame of the same message', () => {
  const store = bobsStore();
  store.addPending(GENERAL, 'hello', 'k1');
  const fromAck = store.messageFromAck({ type: 'ack', client_id: 'k1', id: 5, seq: 1, sent_at: '2026-01-01T10:00:00Z' });
  store.applyMessage(fromAck);
  assert.equal(store.message(5).provisional, true);
  store.applyMessage(message(5, 1, { rev: 5, from: 'bob', body: 'hello', client_id: 'k1', reactions: [] }));
  assert.equal(store.message(5).provisional, undefined);
  assert.equal(store.message(5).rev, 5);
  assert.deepEqual(store.pendingFor(GENERAL), []);
});

test('a pending message is sent once per socket', () => {
  const store = bobsStore();
  store.addPending(GENERAL, 'hello', 'k1');
  assert.deepEqual(store.unsent(1).map((pending) => pending.clientId), ['k1']);
  store.markSent('k1', 1);
  assert.deepEqual(store.unsent(1), []);
  assert.deepEqual(store.unsent(2).map((pending) => pending.clientId), ['k1']);
});

test('a change to a message from before the page loaded waits for its history page', () => {
  const store = bobsStore({ lastId: 100, rev: 100 });
  // Live and newer than the page: filed. An edit of message 40 (never loaded): left for history.
  assert.equal(store.applyMessage(message(101, 61, { rev: 101 })).added, true);
  assert.equal(store.applyMessage(message(40, 20, { rev: 102, body: 'edited long ago' })).added, false);
  assert.deepEqual(store.conversations.get(GENERAL).inOrder().map((held) => held.seq), [61]);
  // The history page that reaches it files it, in its current state.
  assert.equal(store.applyMessage(message(40, 20, { rev: 102, body: 'edited long ago' }), { inRange: true }).added, true);
  assert.equal(store.maxRev, 102);
});

test('only my own messages can be edited, and only staff delete other people\'s', () => {
  const store = bobsStore();
  store.applyMessage(message(1, 1, { from: 'alice' }));
  store.applyMessage(message(2, 2, { from: 'bob' }));
  const [hers, mine] = [store.message(1), store.message(2)];
  assert.deepEqual([store.canEdit(hers), store.canDelete(hers), store.canReact(hers)], [false, false, true]);
  assert.deepEqual([store.canEdit(mine), store.canDelete(mine)], [true, true]);
  store.applyHello({ type: 'hello', user: 'bob', rooms: ['general'], last_id: 2, rev: 2, staff: true });
  assert.equal(store.canDelete(hers), true);
  assert.equal(store.canEdit(hers), false);
});

test('a server without revisions offers no changes and syncs by id', () => {
  const store = new Store('bob');
  store.setRooms(['general']);
  store.applyHello({ type: 'hello', user: 'bob', rooms: ['general'], last_id: 7 });
  store.open(GENERAL);
  const old = message(8, 1, { from: 'bob' });
  delete old.rev;
  store.applyMessage(old);
  assert.equal(store.canEdit(store.message(8)), false);
  assert.equal(store.canReact(store.message(8)), false);
  assert.deepEqual(store.beginSync(), { after: 8 });
});

test('my last editable message is the newest of mine that is not deleted', () => {
  const store = bobsStore();
  store.applyMessage(message(1, 1, { from: 'bob', body: 'older' }));
  store.applyMessage(message(2, 2, { from: 'bob', body: '', deleted: true }));
  store.applyMessage(message(3, 3, { from: 'alice' }));
  assert.equal(store.lastOwnMessage(GENERAL).id, 1);
});

test('a change sent is shown until the newer revision answers it', () => {
  const store = bobsStore();
  store.applyMessage(message(1, 1, { from: 'bob', rev: 1, body: 'teh' }));
  store.beginChange(1, { body: 'the' });
  assert.deepEqual(store.changeOf(1), { body: 'the' });
  store.applyMessage(message(1, 1, { from: 'bob', rev: 2, body: 'the' }));
  assert.equal(store.changeOf(1), null);
});
