// Catching up (static/chat/catchup.js with the real store): after a reconnect the
// page syncs since the largest rev it has seen and pages on `last_rev` while
// `has_more`; a jump in seq fetches the gap; requests lost with a socket are
// asked again. Frames "sent" are collected where the socket would take them.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CatchUp } from '../../static/chat/catchup.js';
import { roomKey } from '../../static/chat/protocol.js';
import { Store } from '../../static/chat/store.js';

const GENERAL = roomKey('general');

/** A page for bob after its first hello: the store, the catch-up and the frames it sent. */
function page({ rev = 100, lastId = 100 } = {}) {
  const store = new Store('bob');
  const sent = [];
  const timers = { set: () => ({}), clear: () => {} }; // history timeouts never fire here
  const catchUp = new CatchUp(store, (frame) => sent.push(frame) > 0, () => {}, timers);
  const hello = { type: 'hello', user: 'bob', rooms: ['general'], last_id: lastId, ...(rev === null ? {} : { rev }) };
  store.setRooms(['general']);
  store.applyHello(hello);
  catchUp.connected(true);
  store.open(GENERAL);
  return { store, catchUp, sent, hello };
}

/** The same socket story as a reconnect: closed, then a new hello. */
function reconnect({ store, catchUp, hello }) {
  catchUp.disconnected();
  store.applyHello(hello);
  catchUp.connected(false);
}

function message(id, seq, rev = id) {
  return { type: 'message', id, seq, rev, room: 'general', from: 'alice', body: `m${id}`, sent_at: '2026-01-01T10:00:00Z' };
}

test('the first hello does not sync: the page starts from the newest rev', () => {
  const { sent } = page();
  assert.deepEqual(sent.filter((frame) => frame.type === 'sync'), []);
});

test('a reconnect syncs since the largest rev seen and pages on last_rev until has_more ends', () => {
  const state = page();
  const { store, catchUp, sent } = state;
  catchUp.receive(message(101, 1, 104));
  reconnect(state);
  assert.deepEqual(sent.at(-1), { type: 'sync', since: 104 });

  catchUp.syncAnswered({ type: 'sync', messages: [message(102, 2, 105), message(101, 1, 106)], has_more: true, last_rev: 106 });
  assert.deepEqual(sent.at(-1), { type: 'sync', since: 106 });
  catchUp.syncAnswered({ type: 'sync', messages: [message(103, 3, 107)], has_more: false, last_rev: 107 });
  assert.equal(sent.filter((frame) => frame.type === 'sync').length, 2);
  assert.deepEqual(store.conversations.get(GENERAL).inOrder().map((held) => [held.id, held.rev]), [[101, 106], [102, 105], [103, 107]]);

  reconnect(state);
  assert.deepEqual(sent.at(-1), { type: 'sync', since: 107 });
});

test('live messages during a sync do not move the page it asks for next', () => {
  const state = page();
  const { catchUp, sent } = state;
  reconnect(state);
  assert.deepEqual(sent.at(-1), { type: 'sync', since: 100 });
  catchUp.receive(message(150, 1, 150)); // live, while the sync pages are on their way
  catchUp.syncAnswered({ type: 'sync', messages: [message(101, 2, 101)], has_more: true, last_rev: 120 });
  assert.deepEqual(sent.at(-1), { type: 'sync', since: 120 });
});

test('a sync cut short by another reconnect resumes where it stood', () => {
  const state = page();
  const { catchUp, sent } = state;
  reconnect(state);
  catchUp.syncAnswered({ type: 'sync', messages: [], has_more: true, last_rev: 130 });
  catchUp.receive(message(200, 1, 200));
  reconnect(state);
  assert.deepEqual(sent.at(-1), { type: 'sync', since: 130 });
});

test('a server that comes back without revisions is asked after the largest id, even mid-sync', () => {
  const state = page();
  const { catchUp, sent } = state;
  catchUp.receive(message(101, 1, 101));
  reconnect(state);
  catchUp.syncAnswered({ type: 'sync', messages: [], has_more: true, last_rev: 130 });
  state.hello = { type: 'hello', user: 'bob', rooms: ['general'], last_id: 101 };
  reconnect(state);
  assert.deepEqual(sent.at(-1), { type: 'sync', after: 101 });
});

test('on a server without revisions the page syncs after the largest id', () => {
  const state = page({ rev: null, lastId: 40 });
  const { catchUp, sent } = state;
  catchUp.receive({ ...message(41, 1), rev: undefined });
  reconnect(state);
  assert.deepEqual(sent.at(-1), { type: 'sync', after: 41 });
  catchUp.syncAnswered({ type: 'sync', messages: [], has_more: true, last_id: 90 });
  assert.deepEqual(sent.at(-1), { type: 'sync', after: 90 });
});

test('a jump in seq in a loaded conversation fetches the gap once', () => {
  const { catchUp, sent } = page();
  catchUp.ensureLoaded(GENERAL);
  assert.deepEqual(sent.at(-1), { type: 'history', room: 'general', limit: 50 });
  catchUp.historyAnswered(GENERAL, { type: 'history', room: 'general', messages: [message(101, 1), message(102, 2)], has_more: false });
  catchUp.receive(message(105, 5));
  assert.deepEqual(sent.at(-1), { type: 'history', room: 'general', limit: 100, after: 2 });
  catchUp.historyAnswered(GENERAL, { type: 'history', room: 'general', messages: [message(103, 3)], has_more: false });
  catchUp.receive(message(106, 6)); // seq 4 is still missing: a moderator deleted it; not asked again
  assert.equal(sent.filter((frame) => frame.after === 2).length, 1);
});

test('a message synced into a loaded empty conversation is shown', () => {
  const state = page();
  const { store, catchUp } = state;
  catchUp.ensureLoaded(GENERAL);
  catchUp.historyAnswered(GENERAL, { type: 'history', room: 'general', messages: [], has_more: false });
  // While the socket was down someone wrote the first message; the new hello covers its id.
  state.hello = { ...state.hello, last_id: 101, rev: 101, unread: [{ room: 'general', read_seq: 0, last_seq: 1, unread: 1 }] };
  reconnect(state);
  catchUp.syncAnswered({ type: 'sync', messages: [message(101, 1)], has_more: false, last_rev: 101 });
  assert.deepEqual(store.conversations.get(GENERAL).inOrder().map((held) => held.id), [101]);
  assert.equal(store.unreadOf(GENERAL), 1);
});

test('a change to a message older than the loaded pages waits for the page that reaches it', () => {
  const { store, catchUp } = page({ rev: 300, lastId: 300 });
  catchUp.ensureLoaded(GENERAL);
  catchUp.historyAnswered(GENERAL, { type: 'history', room: 'general', messages: [message(251, 51), message(252, 52)], has_more: true });
  catchUp.receive({ ...message(210, 10), rev: 301, body: 'edited' });
  catchUp.receive({ ...message(251, 51), rev: 302, body: 'edited too' });
  assert.deepEqual(store.conversations.get(GENERAL).inOrder().map((held) => [held.seq, held.body]), [[51, 'edited too'], [52, 'm252']]);
});

test('a history request lost with its socket is asked again after the next hello', () => {
  const state = page();
  const { catchUp, sent } = state;
  catchUp.ensureLoaded(GENERAL);
  const asked = sent.length;
  reconnect(state);
  assert.deepEqual(sent.slice(asked).map((frame) => frame.type), ['sync', 'history']);
});

test('older pages are asked from the oldest seq loaded', () => {
  const { catchUp, sent } = page();
  catchUp.ensureLoaded(GENERAL);
  catchUp.historyAnswered(GENERAL, { type: 'history', room: 'general', messages: [message(151, 51), message(152, 52)], has_more: true });
  assert.equal(catchUp.status(GENERAL).canLoadOlder, true);
  catchUp.loadOlder(GENERAL);
  assert.deepEqual(sent.at(-1), { type: 'history', room: 'general', limit: 50, before: 51 });
  assert.equal(catchUp.status(GENERAL).loadingOlder, true);
});

// ---- jumping to an old message: the window around it ----------------------------

/** `count` messages of general from seq `from` on (ids 100 + seq). */
function run(from, count) {
  return Array.from({ length: count }, (_, index) => message(100 + from + index, from + index));
}

/** A page for bob with general's newest page (seqs 151..200 of 200) loaded. */
function loadedPage() {
  const state = page({ rev: 300, lastId: 300 });
  state.catchUp.ensureLoaded(GENERAL);
  state.catchUp.historyAnswered(GENERAL, { type: 'history', room: 'general', messages: run(151, 50), has_more: true });
  return state;
}

const shownSeqs = (store, status) => store.conversations.get(GENERAL).inOrder()
  .filter((held) => status.window === null || (held.seq >= status.window.fromSeq && held.seq <= status.window.toSeq))
  .map((held) => held.seq);

test('a jump to a message already loaded asks nothing', () => {
  const { catchUp, sent } = loadedPage();
  const asked = sent.length;
  assert.equal(catchUp.jumpTo(GENERAL, 160), true);
  assert.equal(sent.length, asked);
  assert.equal(catchUp.status(GENERAL).window, null);
});

test('a jump to a message not loaded asks the page around it and shows it apart from the newest', () => {
  const { store, catchUp, sent } = loadedPage();
  assert.equal(catchUp.jumpTo(GENERAL, 57), false);
  assert.deepEqual(sent.at(-1), { type: 'history', room: 'general', limit: 50, around: 57 });
  catchUp.historyAnswered(GENERAL, {
    type: 'history', room: 'general', around: 57, messages: run(32, 50), has_more: true, has_older: true, has_newer: true,
  });
  const status = catchUp.status(GENERAL);
  assert.deepEqual(status.window, { fromSeq: 32, toSeq: 81 });
  assert.equal(status.canLoadOlder, true);
  assert.equal(status.canLoadNewer, true);
  assert.deepEqual(shownSeqs(store, status), run(32, 50).map((held) => held.seq));
  assert.equal(catchUp.jumpTo(GENERAL, 57), true);
});

test('live messages during a window are kept, not shown, and there when going to the latest', () => {
  const { store, catchUp } = loadedPage();
  catchUp.jumpTo(GENERAL, 57);
  catchUp.historyAnswered(GENERAL, { type: 'history', room: 'general', messages: run(32, 50), has_older: true, has_newer: true });
  catchUp.receive({ ...message(301, 201, 301), body: 'live' });
  assert.equal(shownSeqs(store, catchUp.status(GENERAL)).includes(201), false);
  catchUp.showLatest(GENERAL);
  const status = catchUp.status(GENERAL);
  assert.equal(status.window, null);
  // The old window is forgotten: what is held runs without a hole to the live message.
  assert.deepEqual(shownSeqs(store, status), [...run(151, 50).map((held) => held.seq), 201]);
  assert.equal(store.message(132), null);
});

test('older and newer pages grow the window; reaching the newest joins the two', () => {
  const { store, catchUp, sent } = loadedPage();
  catchUp.jumpTo(GENERAL, 57);
  catchUp.historyAnswered(GENERAL, { type: 'history', room: 'general', messages: run(32, 50), has_older: true, has_newer: true });
  catchUp.loadOlder(GENERAL);
  assert.deepEqual(sent.at(-1), { type: 'history', room: 'general', limit: 50, before: 32 });
  catchUp.historyAnswered(GENERAL, { type: 'history', room: 'general', messages: run(1, 31), has_more: false });
  assert.equal(catchUp.status(GENERAL).canLoadOlder, false);
  assert.equal(catchUp.status(GENERAL).window.fromSeq, 1);

  catchUp.loadNewer(GENERAL);
  assert.deepEqual(sent.at(-1), { type: 'history', room: 'general', limit: 50, after: 81 });
  assert.equal(catchUp.status(GENERAL).loadingNewer, true);
  catchUp.historyAnswered(GENERAL, { type: 'history', room: 'general', messages: run(82, 50), has_more: true });
  assert.deepEqual(catchUp.status(GENERAL).window, { fromSeq: 1, toSeq: 131 });
  catchUp.loadNewer(GENERAL);
  catchUp.historyAnswered(GENERAL, { type: 'history', room: 'general', messages: run(132, 50), has_more: true });
  const status = catchUp.status(GENERAL);
  assert.equal(status.window, null);
  assert.equal(status.canLoadOlder, false);
  assert.deepEqual(shownSeqs(store, status), run(1, 200).map((held) => held.seq));
});

test('an around page that reaches the newest messages loaded joins them at once', () => {
  const { store, catchUp, sent } = loadedPage();
  catchUp.jumpTo(GENERAL, 140);
  catchUp.historyAnswered(GENERAL, { type: 'history', room: 'general', messages: run(115, 50), has_older: true, has_newer: true });
  const status = catchUp.status(GENERAL);
  assert.equal(status.window, null);
  assert.deepEqual(shownSeqs(store, status), run(115, 86).map((held) => held.seq));
  catchUp.loadOlder(GENERAL);
  assert.deepEqual(sent.at(-1), { type: 'history', room: 'general', limit: 50, before: 115 });
});

test('a second jump replaces the window and forgets the first one', () => {
  const { store, catchUp } = loadedPage();
  catchUp.jumpTo(GENERAL, 30);
  catchUp.historyAnswered(GENERAL, { type: 'history', room: 'general', messages: run(5, 50), has_older: true, has_newer: true });
  catchUp.jumpTo(GENERAL, 100);
  catchUp.historyAnswered(GENERAL, { type: 'history', room: 'general', messages: run(75, 50), has_older: true, has_newer: true });
  assert.deepEqual(catchUp.status(GENERAL).window, { fromSeq: 75, toSeq: 124 });
  assert.equal(store.message(105), null); // seq 5, of the first window
  assert.notEqual(store.message(175), null); // seq 75, of the second
});

test('a jump from a window to a message of the newest ones goes back to the latest', () => {
  const { catchUp, sent } = loadedPage();
  catchUp.jumpTo(GENERAL, 57);
  catchUp.historyAnswered(GENERAL, { type: 'history', room: 'general', messages: run(32, 50), has_older: true, has_newer: true });
  const asked = sent.length;
  assert.equal(catchUp.jumpTo(GENERAL, 190), true);
  assert.equal(sent.length, asked);
  assert.equal(catchUp.status(GENERAL).window, null);
});

test('a jump into a conversation never opened waits for its newest page, then asks around', () => {
  const { store, catchUp, sent } = page({ rev: 300, lastId: 300 });
  const RANDOM = roomKey('random');
  store.setRooms(['general', 'random']);
  catchUp.ensureLoaded(RANDOM);
  assert.equal(catchUp.jumpTo(RANDOM, 3), false);
  assert.deepEqual(sent.at(-1), { type: 'history', room: 'random', limit: 50 });
  const randomMessage = (id, seq) => ({ ...message(id, seq), room: 'random' });
  catchUp.historyAnswered(RANDOM, { type: 'history', room: 'random', messages: [randomMessage(290, 90)], has_more: true });
  assert.deepEqual(sent.at(-1), { type: 'history', room: 'random', limit: 50, around: 3 });
  catchUp.historyAnswered(RANDOM, {
    type: 'history', room: 'random', messages: [randomMessage(201, 1), randomMessage(203, 3)], has_older: false, has_newer: true,
  });
  assert.deepEqual(catchUp.status(RANDOM).window, { fromSeq: 1, toSeq: 3 });
  assert.equal(catchUp.status(RANDOM).canLoadOlder, false);
});

test('an around request lost with its socket is asked again after the next hello', () => {
  const state = loadedPage();
  const { catchUp, sent } = state;
  catchUp.jumpTo(GENERAL, 57);
  reconnect(state);
  assert.deepEqual(sent.at(-1), { type: 'history', room: 'general', limit: 50, around: 57 });
});

test('an older page of a window left before it came is not shown above a hole', () => {
  const { store, catchUp } = loadedPage();
  catchUp.jumpTo(GENERAL, 57);
  catchUp.historyAnswered(GENERAL, { type: 'history', room: 'general', messages: run(32, 50), has_older: true, has_newer: true });
  catchUp.loadOlder(GENERAL); // before 32, on its way
  catchUp.showLatest(GENERAL);
  catchUp.historyAnswered(GENERAL, { type: 'history', room: 'general', messages: run(1, 31), has_more: false });
  const status = catchUp.status(GENERAL);
  assert.equal(status.window, null);
  assert.equal(status.canLoadOlder, true);
  assert.deepEqual(shownSeqs(store, status), run(151, 50).map((held) => held.seq));
});
