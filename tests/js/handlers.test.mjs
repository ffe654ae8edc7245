// The frame handlers (static/chat/handlers.js) with the real store and catch-up
// module: each server frame type changes what the page holds as it should.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CatchUp } from '../../static/chat/catchup.js';
import { frameHandlers } from '../../static/chat/handlers.js';
import { dmKey, roomKey } from '../../static/chat/protocol.js';
import { Store } from '../../static/chat/store.js';

const GENERAL = roomKey('general');

/** A page for bob: feed(frame) runs the frame through its handler; `events` records the page callbacks. */
function page() {
  const store = new Store('bob');
  const sent = [];
  const catchUp = new CatchUp(store, (frame) => sent.push(frame) > 0, () => {}, { set: () => ({}), clear: () => {} });
  const events = { notices: [], connected: [], typing: 0 };
  const handlers = frameHandlers({
    store,
    catchUp,
    roomsChanged: (names) => store.setRooms(names),
    connected: (first) => {
      events.connected.push(first);
      catchUp.connected(first);
      if (store.active === null) store.open(GENERAL);
    },
    notify: (text) => events.notices.push(text),
    typingChanged: () => { events.typing += 1; },
    now: () => 1_000,
  });
  const feed = (frame) => handlers.get(frame.type)(frame);
  feed({
    type: 'hello', user: 'bob', online: ['alice', 'bob'], rooms: ['general'], last_id: 10, rev: 20, staff: false,
    unread: [{ room: 'general', read_seq: 8, last_seq: 10, unread: 2, mentions: 0 }],
  });
  return { store, sent, events, feed };
}

function message(id, seq, rev, fields = {}) {
  return { type: 'message', id, seq, rev, room: 'general', from: 'alice', body: `m${id}`, sent_at: '2026-01-01T10:00:00Z', ...fields };
}

test('every server frame type the page uses has its handler in the table', () => {
  const handlers = frameHandlers({ store: new Store('bob'), catchUp: null });
  assert.deepEqual([...handlers.keys()].sort(), [
    'ack', 'error', 'hello', 'history', 'message', 'notify', 'presence', 'presence_batch', 'profile', 'read', 'rooms', 'search', 'sync', 'typing', 'users',
  ]);
});

test('hello sets who I am, my rights and the unread counts', () => {
  const { store, events } = page();
  assert.deepEqual(events.connected, [true]);
  assert.equal(store.me, 'bob');
  assert.equal(store.hasRevisions, true);
  assert.equal(store.unreadOf(GENERAL), 2);
});

test('an edited message frame replaces the message in place', () => {
  const { store, feed } = page();
  feed(message(11, 11, 21, { body: 'teh' }));
  feed(message(11, 11, 22, { body: 'the', edited_at: '2026-01-01T10:01:00Z' }));
  assert.deepEqual(store.conversations.get(GENERAL).inOrder().map((held) => held.body), ['the']);
});

test('a refused edit shows the stored text again and says why', () => {
  const { store, feed, events } = page();
  feed(message(11, 11, 21, { from: 'bob', body: 'teh' }));
  store.beginChange(11, { body: 'the' });
  feed({ type: 'error', code: 'muted', detail: 'muted', id: 11, until: '2026-01-01T10:10:00Z' });
  assert.equal(store.changeOf(11), null);
  assert.match(events.notices.at(-1), /^Your change was not saved: You are muted until /);
});

test('a refused send marks that pending message as failed', () => {
  const { store, feed } = page();
  store.addPending(GENERAL, 'hi', 'k1');
  feed({ type: 'error', code: 'rate_limited', retry_after: 3, client_id: 'k1' });
  assert.equal(store.pending.get('k1').state, 'failed');
});

test('my read in another tab clears the badge here', () => {
  const { store, feed } = page();
  feed({ type: 'read', user: 'bob', room: 'general', seq: 10 });
  assert.equal(store.unreadOf(GENERAL), 0);
});

test('a typing frame shows the typist and asks for a redraw when they stop', () => {
  const { store, feed, events } = page();
  feed({ type: 'typing', user: 'alice', room: 'general' });
  assert.deepEqual(store.typists(GENERAL, 1_000), ['alice']);
  assert.equal(events.typing, 1);
});

test('the other party reading my direct message marks it seen', () => {
  const { store, feed } = page();
  feed({ type: 'message', id: 11, seq: 1, rev: 21, to: 'alice', from: 'bob', body: 'hi', sent_at: '2026-01-01T10:00:00Z' });
  feed({ type: 'read', user: 'alice', with: 'alice', seq: 1 });
  assert.equal(store.seenMessage(dmKey('alice')).id, 11);
});

test('a reconnect hello syncs since the largest rev seen', () => {
  const { sent, feed, events } = page();
  feed(message(11, 11, 25));
  feed({ type: 'hello', user: 'bob', online: ['bob'], rooms: ['general'], last_id: 11, rev: 25, unread: [] });
  assert.deepEqual(events.connected, [true, false]);
  assert.deepEqual(sent.find((frame) => frame.type === 'sync'), { type: 'sync', since: 25 });
});

test('a search answer goes to the search panel, and an error tells it its search may be refused', () => {
  const answers = [];
  const refusals = [];
  const handlers = frameHandlers({
    store: new Store('bob'),
    catchUp: null,
    notify: () => {},
    searchAnswered: (frame) => answers.push(frame.q),
    searchRefused: (text) => refusals.push(text),
  });
  handlers.get('search')({ type: 'search', q: 'deploy', messages: [], has_more: false });
  handlers.get('search')({ type: 'search', q: 'broken' }); // no messages: not an answer
  handlers.get('error')({ type: 'error', code: 'rate_limited', retry_after: 2 });
  assert.deepEqual(answers, ['deploy']);
  assert.equal(refusals.length, 1);
  assert.match(refusals[0], /too fast/);
});
