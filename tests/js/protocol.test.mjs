// The page's wire format (static/chat/protocol.js): conversation keys, the
// client frames it builds, and the words it puts on error frames.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  deleteFrame, dmKey, editFrame, errorText, frameKey, historyFrame, isReaction, messageKey, parseKey,
  reactFrame, readFrame, revOf, roomKey, sendFrame, syncFrame, typingFrame,
} from '../../static/chat/protocol.js';

test('a key splits into its kind and name, colons in the name included', () => {
  assert.deepEqual(parseKey(roomKey('general')), { kind: 'room', name: 'general' });
  assert.deepEqual(parseKey(dmKey('a:b')), { kind: 'dm', name: 'a:b' });
});

test('a direct message is filed under the other party, a note to self under me', () => {
  assert.equal(messageKey({ room: 'general', from: 'bob' }, 'bob'), roomKey('general'));
  assert.equal(messageKey({ to: 'alice', from: 'bob' }, 'bob'), dmKey('alice'));
  assert.equal(messageKey({ to: 'bob', from: 'alice' }, 'bob'), dmKey('alice'));
  assert.equal(messageKey({ to: 'bob', from: 'bob' }, 'bob'), dmKey('bob'));
  assert.equal(messageKey({ from: 'bob' }, 'bob'), null);
});

test('history, read and typing frames name their conversation by room or with', () => {
  assert.equal(frameKey({ type: 'history', room: 'general' }), roomKey('general'));
  assert.equal(frameKey({ type: 'read', user: 'alice', with: 'alice', seq: 3 }), dmKey('alice'));
  assert.equal(frameKey({ type: 'typing', user: 'bob', with: 'bob' }), dmKey('bob'));
  assert.equal(frameKey({ type: 'typing', user: 'bob', with: '' }), null);
  assert.equal(frameKey({ type: 'typing', user: 'bob' }), null);
});

test('a message without rev is rev 0', () => {
  assert.equal(revOf({ id: 1 }), 0);
  assert.equal(revOf({ id: 1, rev: '9' }), 0);
  assert.equal(revOf({ id: 1, rev: 9 }), 9);
});

test('send and typing address a direct conversation with to, history and read with with', () => {
  assert.deepEqual(sendFrame(dmKey('alice'), 'hi', 'k1'), { type: 'send', to: 'alice', body: 'hi', client_id: 'k1' });
  assert.deepEqual(sendFrame(roomKey('general'), 'hi', 'k1'), { type: 'send', room: 'general', body: 'hi', client_id: 'k1' });
  assert.deepEqual(typingFrame(dmKey('alice')), { type: 'typing', to: 'alice' });
  assert.deepEqual(typingFrame(roomKey('general')), { type: 'typing', room: 'general' });
  assert.deepEqual(readFrame(dmKey('alice'), 12), { type: 'read', with: 'alice', seq: 12 });
  assert.deepEqual(readFrame(roomKey('general'), 57), { type: 'read', room: 'general', seq: 57 });
  assert.deepEqual(historyFrame(dmKey('alice'), { before: 12 }), { type: 'history', with: 'alice', limit: 50, before: 12 });
  assert.deepEqual(historyFrame(roomKey('general'), { after: 50, limit: 100 }), { type: 'history', room: 'general', limit: 100, after: 50 });
});

test('edit, delete and react name the message by id', () => {
  assert.deepEqual(editFrame(119, 'fixed'), { type: 'edit', id: 119, body: 'fixed' });
  assert.deepEqual(deleteFrame(119), { type: 'delete', id: 119 });
  assert.deepEqual(reactFrame(119, '👍', true), { type: 'react', id: 119, emoji: '👍', on: true });
  assert.deepEqual(reactFrame(119, '👍', false), { type: 'react', id: 119, emoji: '👍', on: false });
});

test('sync asks since a rev, or after an id on a server without revisions', () => {
  assert.deepEqual(syncFrame({ since: 840 }), { type: 'sync', since: 840 });
  assert.deepEqual(syncFrame({ since: 0 }), { type: 'sync', since: 0 });
  assert.deepEqual(syncFrame({ after: 118 }), { type: 'sync', after: 118 });
});

test('a reaction is an emoji of at most 16 characters without white space', () => {
  for (const emoji of ['👍', '❤️', '🇫🇷', '👩‍👩‍👧‍👦', '1️⃣', '👍🏽']) assert.equal(isReaction(emoji), true, emoji);
  for (const text of ['', 'ok', '👍 👍', '👍'.repeat(17), ' 👍']) assert.equal(isReaction(text), false, text);
});

test('the errors of changing a message are put into words', () => {
  assert.equal(errorText({ type: 'error', code: 'forbidden', detail: 'not yours', id: 119 }), 'You cannot change that message');
  assert.equal(errorText({ type: 'error', code: 'not_found', id: 119 }), 'That message no longer exists');
  assert.match(errorText({ type: 'error', code: 'muted', until: '2026-01-01T10:10:00Z' }), /^You are muted until /);
  assert.equal(errorText({ type: 'error', code: 'rate_limited', retry_after: 2.2 }), 'You are sending too fast; try again in 3 s');
  assert.equal(errorText({ type: 'error', code: 'something_new', detail: 'news' }), 'news');
});
