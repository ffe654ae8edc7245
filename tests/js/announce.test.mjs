// What a screen reader hears when messages arrive (static/chat/announce.js), with
// an injected clock and timers, and where Alt+ArrowUp/Down lead
// (static/chat/keyboard.js).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Announcer, MAX_SPOKEN_CHARS, announcement, noticeOf, truncate } from '../../static/chat/announce.js';
import { sidebarOrder, stepConversation } from '../../static/chat/keyboard.js';
import { dmKey, roomKey } from '../../static/chat/protocol.js';
import { Store } from '../../static/chat/store.js';

const GENERAL = roomKey('general');
const BOB = { me: 'bob', active: GENERAL };

/** A clock the test moves, and timers that fire only when the clock passes them. */
function fakeTime() {
  let now = 0;
  let timers = [];
  return {
    now: () => now,
    timers: {
      set: (fn, ms) => {
        const timer = { fn, at: now + ms };
        timers.push(timer);
        return timer;
      },
      clear: (timer) => { timers = timers.filter((other) => other !== timer); },
    },
    advance(ms) {
      now += ms;
      for (const timer of timers.filter((t) => t.at <= now)) {
        timers = timers.filter((other) => other !== timer);
        timer.fn();
      }
    },
    pending: () => timers.length,
  };
}

function announcer() {
  const time = fakeTime();
  const said = [];
  const speaker = new Announcer((text) => said.push(text), { now: time.now, timers: time.timers });
  return { time, said, speaker };
}

const inGeneral = (from, body) => noticeOf({ key: GENERAL, from, body }, BOB);

test('a message from someone else in the open room is read out with its author', () => {
  assert.equal(announcement([inGeneral('alice', 'hello')]), 'alice: hello');
});

test('my own messages and deleted ones are not announced', () => {
  assert.equal(noticeOf({ key: GENERAL, from: 'bob', body: 'mine' }, BOB), null);
  assert.equal(noticeOf({ key: GENERAL, from: 'alice', body: '', deleted: true }, BOB), null);
});

test('a message in another room says nothing: its badge does', () => {
  assert.equal(noticeOf({ key: roomKey('random'), from: 'alice', body: 'hi' }, BOB), null);
});

test('a direct message elsewhere is named but not read out', () => {
  const notice = noticeOf({ key: dmKey('alice'), from: 'alice', body: 'secret plans' }, BOB);
  assert.equal(announcement([notice]), 'New message from alice');
});

test('an open direct conversation reads its messages out', () => {
  const notice = noticeOf({ key: dmKey('alice'), from: 'alice', body: 'hi bob' }, { me: 'bob', active: dmKey('alice') });
  assert.equal(announcement([notice]), 'alice: hi bob');
});

test('a long body is cut, whole characters kept, and line breaks read as spaces', () => {
  const long = `${'😀'.repeat(MAX_SPOKEN_CHARS)}tail`;
  const spoken = truncate(long);
  assert.equal([...spoken].length, MAX_SPOKEN_CHARS);
  assert.ok(spoken.endsWith('…'));
  assert.ok(!spoken.includes('\uFFFD'));
  assert.equal(truncate('two\nlines'), 'two lines');
});

test('several messages waiting in one conversation are counted, not read', () => {
  const notices = [inGeneral('alice', 'a'), inGeneral('carol', 'b'), inGeneral('alice', 'c')];
  assert.equal(announcement(notices), '3 new messages in #general');
  const direct = noticeOf({ key: dmKey('dave'), from: 'dave', body: 'x' }, BOB);
  assert.equal(announcement([direct, direct]), '2 new messages from dave');
});

test('notices of several conversations make one announcement, in order of arrival', () => {
  const direct = noticeOf({ key: dmKey('dave'), from: 'dave', body: 'x' }, BOB);
  assert.equal(announcement([direct, inGeneral('alice', 'hi')]), 'New message from dave. alice: hi');
});

test('the first message is said at once', () => {
  const { said, speaker } = announcer();
  speaker.add(inGeneral('alice', 'hello'));
  assert.deepEqual(said, ['alice: hello']);
});

test('a busy room is summed up at most once per two seconds', () => {
  const { time, said, speaker } = announcer();
  speaker.add(inGeneral('alice', 'one'));
  time.advance(500);
  speaker.add(inGeneral('alice', 'two'));
  speaker.add(inGeneral('carol', 'three'));
  speaker.add(inGeneral('alice', 'four'));
  assert.deepEqual(said, ['alice: one']);
  time.advance(1_499);
  assert.deepEqual(said, ['alice: one']);
  time.advance(1);
  assert.deepEqual(said, ['alice: one', '3 new messages in #general']);
  assert.equal(time.pending(), 0);
});

test('a message after a quiet spell is said at once again', () => {
  const { time, said, speaker } = announcer();
  speaker.add(inGeneral('alice', 'one'));
  time.advance(2_000);
  speaker.add(inGeneral('carol', 'two'));
  assert.deepEqual(said, ['alice: one', 'carol: two']);
});

test('a single message inside the pause is read out in full when the pause ends', () => {
  const { time, said, speaker } = announcer();
  speaker.add(inGeneral('alice', 'one'));
  time.advance(100);
  speaker.add(inGeneral('carol', 'two'));
  time.advance(1_900);
  assert.deepEqual(said, ['alice: one', 'carol: two']);
});

test('nothing worth saying schedules nothing', () => {
  const { time, said, speaker } = announcer();
  speaker.add(null);
  assert.deepEqual(said, []);
  assert.equal(time.pending(), 0);
});

// ---- Alt+ArrowUp / Alt+ArrowDown ----------------------------------------------

function bobsStore() {
  const store = new Store('bob');
  store.setRooms(['general', 'random']);
  store.applyHello({ type: 'hello', user: 'bob', rooms: ['general', 'random'], last_id: 0, rev: 0, direct: ['carol', 'alice'] });
  return store;
}

test('the sidebar order is the rooms, then the direct conversations as listed', () => {
  assert.deepEqual(sidebarOrder(bobsStore()), [GENERAL, roomKey('random'), dmKey('carol'), dmKey('alice')]);
});

test('Alt+ArrowDown goes to the next conversation, from the last room into the direct ones', () => {
  const order = sidebarOrder(bobsStore());
  assert.equal(stepConversation(order, GENERAL, 1), roomKey('random'));
  assert.equal(stepConversation(order, roomKey('random'), 1), dmKey('carol'));
});

test('Alt+ArrowUp goes to the previous conversation', () => {
  const order = sidebarOrder(bobsStore());
  assert.equal(stepConversation(order, dmKey('carol'), -1), roomKey('random'));
});

test('past either end there is nowhere to go', () => {
  const order = sidebarOrder(bobsStore());
  assert.equal(stepConversation(order, GENERAL, -1), null);
  assert.equal(stepConversation(order, dmKey('alice'), 1), null);
  assert.equal(stepConversation([], null, 1), null);
});

test('from no listed conversation, down starts at the top and up at the bottom', () => {
  const order = sidebarOrder(bobsStore());
  assert.equal(stepConversation(order, null, 1), GENERAL);
  assert.equal(stepConversation(order, null, -1), dmKey('alice'));
});
