// "Is typing": who shows as typing (static/chat/store.js, with an injected
// clock), how often this page says I am typing, and how it is put into words
// (static/chat/typing.js).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { dmKey, roomKey } from '../../static/chat/protocol.js';
import { Store } from '../../static/chat/store.js';
import { TypingNotifier, typingParts } from '../../static/chat/typing.js';

const GENERAL = roomKey('general');

function bobsStore() {
  const store = new Store('bob');
  store.setRooms(['general']);
  store.applyHello({ type: 'hello', user: 'bob', rooms: ['general'], last_id: 0, rev: 0 });
  store.conversation(dmKey('alice'));
  return store;
}

test('a typist shows for about five seconds after their last typing frame', () => {
  const store = bobsStore();
  store.applyTyping({ type: 'typing', user: 'alice', room: 'general' }, 1_000);
  assert.deepEqual(store.typists(GENERAL, 5_900), ['alice']);
  assert.deepEqual(store.typists(GENERAL, 6_000), []);
});

test('another typing frame keeps the typist showing', () => {
  const store = bobsStore();
  store.applyTyping({ type: 'typing', user: 'alice', room: 'general' }, 1_000);
  store.applyTyping({ type: 'typing', user: 'alice', room: 'general' }, 4_000);
  assert.deepEqual(store.typists(GENERAL, 8_000), ['alice']);
  assert.equal(store.typingEndsAt(GENERAL, 8_000), 9_000);
});

test('typists show in the order they started, per conversation', () => {
  const store = bobsStore();
  store.applyTyping({ type: 'typing', user: 'carol', room: 'general' }, 1_000);
  store.applyTyping({ type: 'typing', user: 'alice', room: 'general' }, 1_100);
  store.applyTyping({ type: 'typing', user: 'alice', with: 'alice' }, 1_200);
  assert.deepEqual(store.typists(GENERAL, 2_000), ['carol', 'alice']);
  assert.deepEqual(store.typists(dmKey('alice'), 2_000), ['alice']);
});

test('a typist is dropped at once when their message arrives', () => {
  const store = bobsStore();
  store.applyTyping({ type: 'typing', user: 'alice', room: 'general' }, 1_000);
  store.applyTyping({ type: 'typing', user: 'carol', room: 'general' }, 1_000);
  store.applyMessage({ type: 'message', id: 1, seq: 1, rev: 1, room: 'general', from: 'alice', body: 'hi', sent_at: '2026-01-01T10:00:00Z' });
  assert.deepEqual(store.typists(GENERAL, 1_500), ['carol']);
});

test('typing frames about me or about unknown conversations are ignored', () => {
  const store = bobsStore();
  assert.equal(store.applyTyping({ type: 'typing', user: 'bob', room: 'general' }, 1_000), false);
  assert.equal(store.applyTyping({ type: 'typing', user: 'alice', room: 'nowhere' }, 1_000), false);
  assert.deepEqual(store.typists(GENERAL, 1_000), []);
});

test('typing is sent at most once every two seconds per conversation', () => {
  let now = 0;
  const sent = [];
  const notifier = new TypingNotifier((key) => sent.push([now, key]) > 0, () => now);
  for (now = 0; now <= 5_000; now += 250) notifier.typed(GENERAL);
  now = 5_000;
  notifier.typed(dmKey('alice'));
  assert.deepEqual(sent, [[0, GENERAL], [2_000, GENERAL], [4_000, GENERAL], [5_000, dmKey('alice')]]);
});

test('typing not sent for want of a socket is tried again at the next keystroke', () => {
  let connected = false;
  const sent = [];
  const notifier = new TypingNotifier((key) => connected && sent.push(key) > 0, () => 0);
  assert.equal(notifier.typed(GENERAL), false);
  connected = true;
  assert.equal(notifier.typed(GENERAL), true);
  assert.deepEqual(sent, [GENERAL]);
});

test('after my message goes out the next keystroke says typing again', () => {
  const sent = [];
  const notifier = new TypingNotifier((key) => sent.push(key) > 0, () => 0);
  notifier.typed(GENERAL);
  notifier.sent(GENERAL);
  notifier.typed(GENERAL);
  assert.equal(sent.length, 2);
});

test('one or two typists are named, more are several people', () => {
  assert.deepEqual(typingParts([]), []);
  assert.deepEqual(typingParts(['bob']), [{ user: 'bob' }, ' is typing…']);
  assert.deepEqual(typingParts(['bob', 'carol']), [{ user: 'bob' }, ' and ', { user: 'carol' }, ' are typing…']);
  assert.deepEqual(typingParts(['bob', 'carol', 'dave']), ['several people are typing…']);
});
