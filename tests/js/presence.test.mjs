// Presence on the page: when it tells the server it is idle or active
// (static/chat/presence.js, with an injected clock and timers), how presence is
// put into words, and what the store keeps of who is online, away and last seen.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { installRussian } from './catalogue.mjs';
import {
  applyPresenceBatch, IDLE_AFTER_MS, IdleReporter, lastSeenText, presenceNote, withPresenceBatches,
} from '../../static/chat/presence.js';
import { frameHandlers } from '../../static/chat/handlers.js';
import { Store } from '../../static/chat/store.js';

/** A fake clock with timers that run only when the test moves time on. */
function fakeClock(start = 1_000_000) {
  const clock = { time: start, timers: new Map(), next: 1 };
  clock.now = () => clock.time;
  clock.setTimer = (fn, ms) => {
    const id = clock.next++;
    clock.timers.set(id, { fn, at: clock.time + ms });
    return id;
  };
  clock.clearTimer = (id) => clock.timers.delete(id);
  clock.advance = (ms) => {
    const until = clock.time + ms;
    for (;;) {
      const due = [...clock.timers].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      clock.timers.delete(due[0]);
      clock.time = due[1].at;
      due[1].fn();
    }
    clock.time = until;
  };
  return clock;
}

function reporter({ hidden = false } = {}) {
  const clock = fakeClock();
  const sent = [];
  const page = { hidden };
  const idle = new IdleReporter({
    send: (value) => { sent.push(value); return true; },
    isHidden: () => page.hidden,
    now: clock.now,
    setTimer: clock.setTimer,
    clearTimer: clock.clearTimer,
  });
  return { clock, sent, page, idle };
}

test('five minutes without input sends idle once', () => {
  const { clock, sent } = reporter();
  clock.advance(IDLE_AFTER_MS - 1);
  assert.deepEqual(sent, []);
  clock.advance(1);
  assert.deepEqual(sent, [true]);
  clock.advance(IDLE_AFTER_MS * 3);
  assert.deepEqual(sent, [true]);
});

test('input keeps the page active and uses one timer, not one per event', () => {
  const { clock, sent, idle } = reporter();
  for (let i = 0; i < 10; i++) {
    clock.advance(IDLE_AFTER_MS / 2);
    idle.input();
  }
  assert.deepEqual(sent, []);
  assert.equal(clock.timers.size, 1);
  clock.advance(IDLE_AFTER_MS);
  assert.deepEqual(sent, [true]);
});

test('input after idling sends active once', () => {
  const { clock, sent, idle } = reporter();
  clock.advance(IDLE_AFTER_MS);
  idle.input();
  idle.input();
  assert.deepEqual(sent, [true, false]);
  // And the watch goes on: quiet again, idle again.
  clock.advance(IDLE_AFTER_MS);
  assert.deepEqual(sent, [true, false, true]);
});

test('hiding the tab sends idle at once; showing it sends active', () => {
  const { sent, page, idle } = reporter();
  page.hidden = true;
  idle.visibilityChanged();
  idle.input(); // a stray event while hidden changes nothing
  assert.deepEqual(sent, [true]);
  page.hidden = false;
  idle.visibilityChanged();
  assert.deepEqual(sent, [true, false]);
});

test('a hidden tab that times out too sends idle only once', () => {
  const { clock, sent, page, idle } = reporter();
  page.hidden = true;
  idle.visibilityChanged();
  clock.advance(IDLE_AFTER_MS * 2);
  assert.deepEqual(sent, [true]);
});

test('every new socket is told the current state', () => {
  const { clock, sent, idle } = reporter();
  idle.connected();
  assert.deepEqual(sent, [false]);
  clock.advance(IDLE_AFTER_MS);
  idle.connected();
  assert.deepEqual(sent, [false, true, true]);
});

test('a page loaded hidden starts idle', () => {
  const { sent, idle } = reporter({ hidden: true });
  idle.connected();
  assert.deepEqual(sent, [true]);
});

// ---- words ------------------------------------------------------------------

const NOW = Date.parse('2026-12-02T18:30:00Z');
const UTC = { locale: 'en-GB', timeZone: 'UTC' };

test('last seen within the hour counts minutes', () => {
  assert.equal(lastSeenText('2026-12-02T18:29:40.000Z', NOW, UTC), 'last seen just now');
  assert.equal(lastSeenText('2026-12-02T18:25:00.000Z', NOW, UTC), 'last seen 5 minutes ago');
  assert.equal(lastSeenText('2026-12-02T18:29:00.000Z', NOW, UTC), 'last seen 1 minute ago');
});

test('last seen earlier today or yesterday names the time', () => {
  assert.equal(lastSeenText('2026-12-02T09:15:00.000Z', NOW, UTC), 'last seen today at 09:15');
  assert.equal(lastSeenText('2026-12-01T18:04:00.000Z', NOW, UTC), 'last seen yesterday at 18:04');
});

test('last seen before yesterday names the date, with the year when not this one', () => {
  assert.equal(lastSeenText('2026-11-20T08:00:00.000Z', NOW, UTC), 'last seen 20 Nov');
  assert.equal(lastSeenText('2025-11-20T08:00:00.000Z', NOW, UTC), 'last seen 20 Nov 2025');
});

test('today and yesterday follow the reader’s time zone', () => {
  // 23:30 UTC on the 1st is already the 2nd in Moscow (UTC+3).
  const moscow = { locale: 'en-GB', timeZone: 'Europe/Moscow' };
  assert.equal(lastSeenText('2026-12-01T23:30:00.000Z', NOW, moscow), 'last seen today at 02:30');
  assert.equal(lastSeenText('2026-12-01T23:30:00.000Z', NOW, UTC), 'last seen yesterday at 23:30');
});

test('in Russian, last seen is worded with the catalogue and counts minutes in three forms', () => {
  const russian = { locale: 'ru', timeZone: 'UTC' };
  const remove = installRussian();
  try {
    assert.equal(lastSeenText('2026-12-02T18:29:00.000Z', NOW, russian), 'был(а) в сети 1 минуту назад');
    assert.equal(lastSeenText('2026-12-02T18:27:00.000Z', NOW, russian), 'был(а) в сети 3 минуты назад');
    assert.equal(lastSeenText('2026-12-02T18:25:00.000Z', NOW, russian), 'был(а) в сети 5 минут назад');
    assert.equal(lastSeenText('2026-12-02T18:09:00.000Z', NOW, russian), 'был(а) в сети 21 минуту назад');
    assert.equal(lastSeenText('2026-12-01T18:04:00.000Z', NOW, russian), 'был(а) в сети вчера в 18:04');
    assert.equal(lastSeenText('2026-11-20T08:00:00.000Z', NOW, russian), 'был(а) в сети 20 нояб.');
    assert.deepEqual(presenceNote('away', null, NOW, russian), { text: 'отошёл(а)', visible: true });
  } finally {
    remove();
  }
});

test('no time, no words', () => {
  assert.equal(lastSeenText(null, NOW, UTC), '');
  assert.equal(lastSeenText('not a time', NOW, UTC), '');
});

test('online is said to screen readers only; away and last seen are shown', () => {
  assert.deepEqual(presenceNote('online', null, NOW, UTC), { text: 'online', visible: false });
  assert.deepEqual(presenceNote('away', null, NOW, UTC), { text: 'away', visible: true });
  assert.deepEqual(presenceNote('offline', '2026-12-02T18:25:00.000Z', NOW, UTC), {
    text: 'last seen 5 minutes ago', visible: true,
  });
  assert.deepEqual(presenceNote('offline', null, NOW, UTC), { text: 'offline', visible: false });
});

// ---- the store ----------------------------------------------------------------

function alicesStore() {
  const store = new Store('alice');
  store.applyHello({
    type: 'hello', user: 'alice', rooms: ['general'], last_id: 0, rev: 0,
    online: ['alice', 'bob', 'carol'], away: ['carol'], direct: ['bob', 'dave'],
  });
  return store;
}

test('hello tells who is online and who of them is away', () => {
  const store = alicesStore();
  assert.equal(store.statusOf('bob'), 'online');
  assert.equal(store.statusOf('carol'), 'away');
  assert.equal(store.statusOf('dave'), 'offline');
  assert.equal(store.knowsAway, true);
});

test('presence frames move a user between online, away and offline', () => {
  const store = alicesStore();
  store.applyPresence({ type: 'presence', user: 'bob', online: true, status: 'away' });
  assert.equal(store.statusOf('bob'), 'away');
  store.applyPresence({
    type: 'presence', user: 'bob', online: false, status: 'offline', last_seen: '2026-12-02T18:25:00.000Z',
  });
  assert.equal(store.statusOf('bob'), 'offline');
  assert.equal(store.lastSeenOf('bob'), '2026-12-02T18:25:00.000Z');
  store.applyPresence({ type: 'presence', user: 'bob', online: true, status: 'online' });
  assert.equal(store.statusOf('bob'), 'online');
  assert.equal(store.lastSeenOf('bob'), undefined);
});

test('a v1 presence frame (no status) still means online or offline', () => {
  const store = alicesStore();
  store.applyPresence({ type: 'presence', user: 'carol', online: false });
  assert.equal(store.statusOf('carol'), 'offline');
  store.applyPresence({ type: 'presence', user: 'carol', online: true });
  assert.equal(store.statusOf('carol'), 'online');
});

test('the online list replaces who is away too', () => {
  const store = alicesStore();
  store.applyUsers({ type: 'users', online: ['alice', 'bob'], away: ['bob'] });
  assert.equal(store.statusOf('bob'), 'away');
  assert.equal(store.statusOf('carol'), 'offline');
});

test('last seen is asked once per offline direct peer after each hello', () => {
  const store = alicesStore();
  assert.deepEqual(store.takeProfilesToAsk(), ['dave']);
  assert.deepEqual(store.takeProfilesToAsk(), []);
  store.applyProfile({ type: 'profile', user: 'dave', status: 'offline', last_seen: '2026-12-01T18:04:00.000Z' });
  assert.equal(store.lastSeenOf('dave'), '2026-12-01T18:04:00.000Z');
  // bob leaves in a burst summarised as an online list: no time came with it, so ask.
  store.applyUsers({ type: 'users', online: ['alice', 'carol'], away: [] });
  assert.deepEqual(store.takeProfilesToAsk(), ['bob']);
  // A new socket asks again for every offline peer: they may have come and gone meanwhile.
  store.applyHello({ type: 'hello', user: 'alice', rooms: ['general'], last_id: 0, rev: 0, online: ['alice'], away: [] });
  assert.deepEqual(store.takeProfilesToAsk().sort(), ['bob', 'dave']);
});

test('a server without away is never asked for profiles', () => {
  const store = new Store('alice');
  store.applyHello({ type: 'hello', user: 'alice', rooms: [], last_id: 0, online: ['alice'], direct: ['dave'] });
  assert.equal(store.knowsAway, false);
  assert.deepEqual(store.takeProfilesToAsk(), []);
});

test('hello tells when offline direct partners were last seen: nothing to ask for them', () => {
  const store = new Store('alice');
  store.applyHello({
    type: 'hello', user: 'alice', rooms: ['general'], last_id: 0, rev: 0, online: ['alice'], away: [],
    direct: ['bob', 'dave'], last_seen: { bob: '2026-12-01T18:04:00.000Z', dave: null },
  });
  assert.equal(store.lastSeenOf('bob'), '2026-12-01T18:04:00.000Z');
  assert.equal(store.lastSeenOf('dave'), null);
  assert.deepEqual(store.takeProfilesToAsk(), []);
});

test('profiles are asked a few at a time', () => {
  const store = new Store('alice');
  const direct = Array.from({ length: 25 }, (_, i) => `user${i}`);
  store.applyHello({ type: 'hello', user: 'alice', rooms: [], last_id: 0, rev: 0, online: ['alice'], away: [], direct });
  const first = store.takeProfilesToAsk();
  assert.equal(first.length, 10);
  const second = store.takeProfilesToAsk();
  assert.equal(second.length, 10);
  assert.equal(new Set([...first, ...second]).size, 20);
  assert.equal(store.takeProfilesToAsk().length, 5);
});

test('a presence batch ends where its changes one by one would', () => {
  const hello = { type: 'hello', user: 'alice', rooms: [], last_id: 0, rev: 0, online: ['alice', 'bob', 'erin'], away: [] };
  const store = new Store('alice');
  store.applyHello(hello);
  const oneByOne = new Store('alice');
  oneByOne.applyHello(hello);
  for (const change of [
    { type: 'presence', user: 'carol', online: true, status: 'online' },
    { type: 'presence', user: 'bob', online: false, status: 'offline', last_seen: '2026-12-01T18:04:00.000Z' },
    { type: 'presence', user: 'dave', online: true, status: 'away' },
    { type: 'presence', user: 'erin', online: false, status: 'offline', last_seen: null },
  ]) oneByOne.applyPresence(change);

  const applied = applyPresenceBatch(store, {
    type: 'presence_batch',
    online: ['carol'],
    away: ['dave'],
    offline: ['bob', 'erin'],
    last_seen: { bob: '2026-12-01T18:04:00.000Z', erin: null },
  });
  assert.equal(applied, 4);
  assert.deepEqual([...store.online].sort(), ['alice', 'carol', 'dave']);
  assert.deepEqual([...store.away], ['dave']);
  assert.equal(store.lastSeenOf('bob'), '2026-12-01T18:04:00.000Z');
  assert.equal(store.lastSeenOf('erin'), null);
  assert.deepEqual([...store.online].sort(), [...oneByOne.online].sort());
  assert.deepEqual([...store.away].sort(), [...oneByOne.away].sort());
  assert.deepEqual(store.takeProfilesToAsk(), oneByOne.takeProfilesToAsk());
});

test('a malformed presence batch changes nothing it cannot read', () => {
  const store = new Store('alice');
  store.applyHello({ type: 'hello', user: 'alice', rooms: [], last_id: 0, rev: 0, online: ['alice'], away: [] });
  assert.equal(applyPresenceBatch(store, { type: 'presence_batch' }), 0);
  assert.equal(applyPresenceBatch(store, { type: 'presence_batch', online: 'bob', last_seen: 'x' }), 0);
  assert.equal(applyPresenceBatch(store, { type: 'presence_batch', online: [null, 7, ['x'], 'bob'] }), 1);
  assert.deepEqual([...store.online].sort(), ['alice', 'bob']);
});

test('the page routes presence_batch frames to the store', () => {
  const store = new Store('alice');
  store.applyHello({ type: 'hello', user: 'alice', rooms: [], last_id: 0, rev: 0, online: ['alice'], away: [] });
  const handlers = frameHandlers({ store, catchUp: {} });
  handlers.get('presence_batch')({
    type: 'presence_batch',
    online: ['bob'], away: [], offline: [], last_seen: {},
  });
  assert.equal(store.statusOf('bob'), 'online');
});

test('the socket URL asks for presence batches', () => {
  assert.equal(withPresenceBatches('ws://chat.example/ws/chat/'), 'ws://chat.example/ws/chat/?presence=batch');
  assert.equal(withPresenceBatches('ws://chat.example/ws/chat/?a=1'), 'ws://chat.example/ws/chat/?a=1&presence=batch');
});
