// Marking read (static/chat/reading.js with the real store): only while the
// newest message of the open conversation is on screen in a visible tab, never
// backwards, and coalesced to one `read` per conversation a second.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { roomKey } from '../../static/chat/protocol.js';
import { ReadMarker } from '../../static/chat/reading.js';
import { Store } from '../../static/chat/store.js';

const GENERAL = roomKey('general');
const RANDOM = roomKey('random');

/** Bob's page with general open, 7 unread up to seq 57; a clock that only moves when told. */
function page() {
  const store = new Store('bob');
  store.setRooms(['general', 'random']);
  store.applyHello({
    type: 'hello', user: 'bob', rooms: ['general', 'random'], last_id: 300, rev: 300,
    unread: [{ room: 'general', read_seq: 50, last_seq: 57, unread: 7 }],
  });
  store.open(GENERAL);
  const clock = { now: 0, due: [] };
  const sent = [];
  const tab = { visible: true, connected: true };
  const marker = new ReadMarker({
    store,
    send: (key, seq) => tab.connected && sent.push([clock.now, key, seq]) > 0,
    isTabVisible: () => tab.visible,
    schedule: (fn, ms) => clock.due.push({ at: clock.now + ms, fn }),
    now: () => clock.now,
  });
  /** Moves the clock to `to`, running what falls due on the way. */
  const advance = (to) => {
    for (;;) {
      clock.due.sort((a, b) => a.at - b.at);
      if (clock.due.length === 0 || clock.due[0].at > to) break;
      const next = clock.due.shift();
      clock.now = next.at;
      next.fn();
    }
    clock.now = to;
  };
  return { store, marker, sent, tab, advance };
}

test('the newest message on screen in a visible tab marks the conversation read', () => {
  const { store, marker, sent } = page();
  marker.newestShown(GENERAL, 57);
  assert.deepEqual(sent, [[0, GENERAL, 57]]);
  assert.equal(store.unreadOf(GENERAL), 0);
});

test('nothing is marked while the newest message is off screen', () => {
  const { store, marker, sent } = page();
  marker.newestShown(GENERAL, null);
  assert.deepEqual(sent, []);
  assert.equal(store.unreadOf(GENERAL), 7);
});

test('nothing is marked in a hidden tab until it is shown again', () => {
  const { store, marker, sent, tab } = page();
  tab.visible = false;
  marker.newestShown(GENERAL, 57);
  assert.deepEqual(sent, []);
  assert.equal(store.unreadOf(GENERAL), 7);
  tab.visible = true;
  marker.check();
  assert.deepEqual(sent, [[0, GENERAL, 57]]);
});

test('what is on screen of a conversation no longer open marks nothing', () => {
  const { store, marker, sent } = page();
  marker.newestShown(GENERAL, null);
  store.open(RANDOM);
  marker.newestShown(GENERAL, 57); // a late report about the conversation left
  assert.deepEqual(sent, []);
});

test('the read position is never sent backwards', () => {
  const { marker, sent, advance } = page();
  marker.newestShown(GENERAL, 57);
  advance(5_000);
  marker.newestShown(GENERAL, 55);
  advance(10_000);
  assert.deepEqual(sent, [[0, GENERAL, 57]]);
});

test('a stream of new messages read as they come sends one read a second with the newest seq', () => {
  const { store, marker, sent, advance } = page();
  for (let seq = 57; seq <= 66; seq += 1) {
    advance((seq - 57) * 200); // a message every 200 ms, each read at once
    store.applyMessage({ type: 'message', id: 300 + seq, seq, rev: 300 + seq, room: 'general', from: 'alice', body: 'x', sent_at: '2026-01-01T10:00:00Z' });
    marker.newestShown(GENERAL, seq);
  }
  advance(5_000);
  assert.deepEqual(sent, [[0, GENERAL, 57], [1_000, GENERAL, 61], [2_000, GENERAL, 66]]);
});

test('a read the closed socket could not take goes out at the next flush', () => {
  const { marker, sent, tab } = page();
  tab.connected = false;
  marker.newestShown(GENERAL, 57);
  assert.deepEqual(sent, []);
  tab.connected = true;
  marker.flush(); // after the next hello
  assert.deepEqual(sent, [[0, GENERAL, 57]]);
});

test('a page going away sends at once the position the once-a-second limit held back', () => {
  const { store, marker, sent, advance } = page();
  marker.newestShown(GENERAL, 57);
  advance(300);
  store.applyMessage({ type: 'message', id: 358, seq: 58, rev: 358, room: 'general', from: 'alice', body: 'x', sent_at: '2026-01-01T10:00:00Z' });
  marker.newestShown(GENERAL, 58);
  assert.deepEqual(sent, [[0, GENERAL, 57]]);
  marker.flush({ leaving: true }); // pagehide: a reload or a closed tab
  assert.deepEqual(sent, [[0, GENERAL, 57], [300, GENERAL, 58]]);
});

test('reading says whether the reader is at the newest message of the open conversation', () => {
  const { marker, tab } = page();
  assert.equal(marker.reading(), false);
  marker.newestShown(GENERAL, 57);
  assert.equal(marker.reading(), true);
  tab.visible = false;
  assert.equal(marker.reading(), false);
});
