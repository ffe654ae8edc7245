// Notifications (static/chat/notices.js): which new messages notify at each level,
// the words and tags of a notification, permission asked only on a press, and the
// unread count in the title and the favicon. The store keeps the levels.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CatchUp } from '../../static/chat/catchup.js';
import { frameHandlers } from '../../static/chat/handlers.js';
import {
  DEFAULT_LEVEL, Notices, countText, faviconSvg, faviconUrl, notificationOf, permissionOf, shouldNotify, titleWithCount, truncate,
} from '../../static/chat/notices.js';
import { dmKey, notifyFrame, roomKey } from '../../static/chat/protocol.js';
import { Store } from '../../static/chat/store.js';

const ME = 'bob';

function message(fields = {}) {
  return { type: 'message', id: 11, seq: 3, rev: 11, room: 'general', from: 'alice', body: 'hello', mentions: [], deleted: false, ...fields };
}

const roomPlain = message();
const roomMention = message({ body: '@bob look', mentions: ['bob'] });
const direct = message({ room: undefined, to: ME });

// ---- the decision -------------------------------------------------------------

test('each level decides for rooms, mentions and direct messages while the page is away', () => {
  const decide = (msg, level) => shouldNotify(msg, { me: ME, level, away: true });
  const table = [
    // [message, all, mentions, none]
    [roomPlain, true, false, false],
    [roomMention, true, true, false],
    [direct, true, true, false],
  ];
  for (const [msg, all, mentions, none] of table) {
    assert.equal(decide(msg, 'all'), all);
    assert.equal(decide(msg, 'mentions'), mentions);
    assert.equal(decide(msg, 'none'), none);
  }
});

test('nothing notifies while the person looks at the page', () => {
  for (const level of ['all', 'mentions', 'none']) {
    for (const msg of [roomPlain, roomMention, direct]) {
      assert.equal(shouldNotify(msg, { me: ME, level, away: false }), false);
    }
  }
});

test('my own messages and deleted ones never notify', () => {
  assert.equal(shouldNotify(message({ from: ME }), { me: ME, level: 'all', away: true }), false);
  assert.equal(shouldNotify(message({ from: ME, room: undefined, to: 'alice' }), { me: ME, level: 'all', away: true }), false);
  assert.equal(shouldNotify(message({ deleted: true, body: '' }), { me: ME, level: 'all', away: true }), false);
});

test('a mention of somebody else is not one of me', () => {
  assert.equal(shouldNotify(message({ mentions: ['carol'] }), { me: ME, level: 'mentions', away: true }), false);
});

// ---- the words ----------------------------------------------------------------

test('a notification names the sender and the room, or only the sender of a direct message', () => {
  assert.deepEqual(notificationOf(roomPlain, ME), { key: roomKey('general'), title: 'alice in #general', body: 'hello', tag: 'chat:room:general' });
  assert.deepEqual(notificationOf(direct, ME), { key: dmKey('alice'), title: 'alice', body: 'hello', tag: 'chat:dm:alice' });
});

test('files sent without a word are named in the notification', () => {
  const files = [{ id: 'a', name: 'beach.jpg' }, { id: 'b', name: 'report.pdf' }];
  assert.equal(notificationOf(message({ body: '', attachments: files }), ME).body, '📎 beach.jpg, report.pdf');
  assert.equal(notificationOf(message({ body: '', attachments: [{ id: 'c' }] }), ME).body, '📎 file');
  // With words, the words are what it says; with neither, it says nothing.
  assert.equal(notificationOf(message({ body: 'look', attachments: files }), ME).body, 'look');
  assert.equal(notificationOf(message({ body: '', attachments: [] }), ME).body, '');
});

test('a long body is cut to about 120 characters, counted as characters', () => {
  const long = 'ж'.repeat(200);
  const cut = notificationOf(message({ body: long }), ME).body;
  assert.equal([...cut].length, 120);
  assert.ok(cut.endsWith('…'));
  assert.equal(truncate('😀'.repeat(120)), '😀'.repeat(120));
  assert.equal(truncate('a'.repeat(121)).length, 120);
});

test('the title carries the unread count', () => {
  assert.equal(titleWithCount('Chat', 0), 'Chat');
  assert.equal(titleWithCount('Chat', 3), '(3) Chat');
  assert.equal(titleWithCount('Chat', 1200), '(999+) Chat');
});

test('a count of 1,000 or more shows as 999+: the server stops counting at 1,000', () => {
  assert.equal(countText(0), '0');
  assert.equal(countText(999), '999');
  assert.equal(countText(1000), '999+');
  assert.equal(countText(1042), '999+');
});

test('the favicon is a speech bubble, with a red badge and the count when something is unread', () => {
  assert.ok(!faviconSvg(0).includes('#d93025'));
  assert.match(faviconSvg(4), /<circle[^>]*fill="#d93025"/);
  assert.match(faviconSvg(4), />4<\/text>/);
  assert.match(faviconSvg(25), />9\+<\/text>/);
  const url = faviconUrl(4);
  assert.ok(url.startsWith('data:image/svg+xml,'));
  assert.equal(decodeURIComponent(url.slice('data:image/svg+xml,'.length)), faviconSvg(4));
  assert.ok(!/[<>"#]/.test(url.slice('data:image/svg+xml,'.length)), 'the SVG is encoded for a URL');
});

// ---- the Notices class with a recording fake of the browser ---------------------

/** A fake Notification API that records what was shown and asked. */
function fakeApi(permission = 'granted') {
  const shown = [];
  const asked = [];
  class FakeNotification {
    constructor(title, options) {
      this.title = title;
      this.options = options;
      this.closed = false;
      shown.push(this);
    }

    close() {
      this.closed = true;
    }

    static requestPermission() {
      asked.push(true);
      FakeNotification.permission = 'granted';
      return Promise.resolve('granted');
    }
  }
  FakeNotification.permission = permission;
  return { Api: FakeNotification, shown, asked };
}

/** An element stand-in: `hidden`, `value` and click/change listeners. */
function fakeElement(value = '') {
  const listeners = {};
  return {
    hidden: false,
    value,
    addEventListener: (type, fn) => { listeners[type] = fn; },
    fire: (type) => listeners[type](),
  };
}

function notices({ permission = 'granted', away = true } = {}) {
  const { Api, shown, asked } = fakeApi(permission);
  const events = { focused: 0, opened: [], favicons: [], chosen: [] };
  const env = {
    Notification: Api,
    away: () => away,
    focusWindow: () => { events.focused += 1; },
    open: (key) => events.opened.push(key),
    setFavicon: (href) => events.favicons.push(href),
    permissionButton: fakeElement(),
    blockedLine: fakeElement(),
    levelControl: fakeElement(),
    levelSelect: fakeElement('mentions'),
    chooseLevel: (level) => events.chosen.push(level),
  };
  return { notices: new Notices(env), env, shown, asked, events };
}

test('a direct message raises one notification; clicking it focuses, opens the conversation and closes it', () => {
  const { notices: n, shown, events } = notices();
  const raised = n.messageArrived(direct, { me: ME, level: DEFAULT_LEVEL });
  assert.equal(shown.length, 1);
  assert.equal(raised.title, 'alice');
  assert.deepEqual(raised.options, { body: 'hello', tag: 'chat:dm:alice' });
  raised.onclick();
  assert.equal(events.focused, 1);
  assert.deepEqual(events.opened, [dmKey('alice')]);
  assert.equal(raised.closed, true);
});

test('nothing is shown without permission, while the page is in sight, or at level none', () => {
  for (const permission of ['default', 'denied']) {
    const { notices: n, shown } = notices({ permission });
    assert.equal(n.messageArrived(direct, { me: ME, level: 'all' }), null);
    assert.equal(shown.length, 0);
  }
  const { notices: inSight, shown } = notices({ away: false });
  inSight.messageArrived(direct, { me: ME, level: 'all' });
  const { notices: muted, shown: mutedShown } = notices();
  muted.messageArrived(direct, { me: ME, level: 'none' });
  assert.equal(shown.length + mutedShown.length, 0);
});

test('a browser without the API is left alone', () => {
  assert.equal(permissionOf(undefined), 'unsupported');
  const n = new Notices({ Notification: undefined, away: () => true, setFavicon: () => {} });
  assert.equal(n.messageArrived(direct, { me: ME, level: 'all' }), null);
});

test('permission is asked only when the button is pressed; the button hides once answered', async () => {
  const { env, asked } = notices({ permission: 'default' });
  assert.equal(asked.length, 0, 'never on load');
  assert.equal(env.permissionButton.hidden, false);
  assert.equal(env.blockedLine.hidden, true);
  env.permissionButton.fire('click');
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(asked.length, 1);
  assert.equal(env.permissionButton.hidden, true);
});

test('a blocked browser shows the muted line instead of the button', () => {
  const { env } = notices({ permission: 'denied' });
  assert.equal(env.permissionButton.hidden, true);
  assert.equal(env.blockedLine.hidden, false);
  const { env: granted } = notices({ permission: 'granted' });
  assert.equal(granted.permissionButton.hidden, true);
  assert.equal(granted.blockedLine.hidden, true);
});

test('the favicon changes only when the count does, and goes back to the served icon at zero', () => {
  const { notices: n, events } = notices();
  n.showUnread(0);
  n.showUnread(2);
  n.showUnread(2);
  n.showUnread(0);
  assert.deepEqual(events.favicons, [null, faviconUrl(2), null]);
});

test('the level control shows the level and passes on a choice', () => {
  const { notices: n, env, events } = notices();
  n.showLevel('none');
  assert.equal(env.levelSelect.value, 'none');
  assert.equal(env.levelControl.hidden, false);
  env.levelSelect.value = 'all';
  env.levelSelect.fire('change');
  assert.deepEqual(events.chosen, ['all']);
  n.showLevel(null);
  assert.equal(env.levelControl.hidden, true);
});

// ---- the store and the frames ---------------------------------------------------

/** bob's page: frames go through the real handlers, store and catch-up; new live messages reach `notices`. */
function page({ away = true } = {}) {
  const store = new Store(ME);
  const catchUp = new CatchUp(store, () => true, () => {}, { set: () => ({}), clear: () => {} });
  const { Api, shown } = fakeApi('granted');
  const n = new Notices({ Notification: Api, away: () => away, setFavicon: () => {}, focusWindow: () => {}, open: () => {} });
  const handlers = frameHandlers({
    store,
    catchUp,
    roomsChanged: (names) => store.setRooms(names),
    connected: (first) => catchUp.connected(first),
    notify: () => {},
    typingChanged: () => {},
    now: () => 0,
    messageArrived: (frame) => n.messageArrived(frame, { me: store.me, level: store.levelOf(roomKey(frame.room ?? '')) === 'none' ? 'none' : 'all' }),
  });
  const feed = (frame) => handlers.get(frame.type)(frame);
  return { store, feed, shown };
}

function hello(feed, fields = {}) {
  feed({ type: 'hello', user: ME, online: [], rooms: ['general'], last_id: 10, rev: 10, staff: false, unread: [], levels: [], ...fields });
}

test('only new live messages notify: not their edits, not history or sync pages, not my own', () => {
  const { feed, shown } = page();
  hello(feed);
  feed({ type: 'history', room: 'general', messages: [message({ id: 10, seq: 10, rev: 10, body: 'old' })], has_more: true });
  feed(message({ id: 11, seq: 11, rev: 11, body: 'first' }));
  assert.deepEqual(shown.map((s) => s.options.body), ['first']);

  feed(message({ id: 11, seq: 11, rev: 12, body: 'first, edited', edited_at: '2026-01-01T10:00:00Z' }));
  feed({ type: 'sync', messages: [message({ id: 12, seq: 12, rev: 13, body: 'missed' })], has_more: false, last_rev: 13 });
  // The live copy of a message the sync already brought is not news either.
  feed(message({ id: 12, seq: 12, rev: 13, body: 'missed' }));
  feed(message({ id: 13, seq: 13, rev: 14, from: ME, body: 'mine from another tab' }));
  // Changes to old messages this page never loaded, within and beyond what it holds.
  feed(message({ id: 5, seq: 5, rev: 15, body: 'old, edited', edited_at: '2026-01-01T10:00:00Z' }));
  feed(message({ id: 7, seq: 7, rev: 16, body: 'old, reacted', reactions: [{ emoji: '👍', users: ['carol'] }] }));
  feed(message({ id: 14, seq: 14, rev: 17, body: 'second' }));
  assert.deepEqual(shown.map((s) => s.options.body), ['first', 'second']);
});

test('a muted room stays silent at any message', () => {
  const { feed, shown } = page();
  hello(feed, { levels: [{ room: 'general', level: 'none' }] });
  feed(message({ id: 11, seq: 1, rev: 11, mentions: [ME] }));
  assert.equal(shown.length, 0);
});

test('hello.levels and notify frames set the levels; the default is mentions', () => {
  const { store, feed } = page();
  feed({
    type: 'hello', user: ME, online: [], rooms: ['general', 'random'], last_id: 0, rev: 0, staff: false, unread: [],
    levels: [{ room: 'general', level: 'none' }, { with: 'alice', level: 'all' }, { room: 'random', level: 'loud' }],
  });
  assert.equal(store.hasLevels, true);
  assert.equal(store.levelOf(roomKey('general')), 'none');
  assert.equal(store.levelOf(dmKey('alice')), 'all');
  assert.equal(store.levelOf(roomKey('random')), 'mentions');
  feed({ type: 'notify', room: 'general', level: 'mentions' });
  assert.equal(store.levelOf(roomKey('general')), 'mentions');
  feed({ type: 'notify', with: 'carol', level: 'none' });
  assert.equal(store.isMuted(dmKey('carol')), true);
  // A later hello is the server's word: what it leaves out is the default again.
  feed({ type: 'hello', user: ME, online: [], rooms: ['general'], last_id: 0, rev: 0, staff: false, unread: [], levels: [] });
  assert.equal(store.isMuted(dmKey('carol')), false);
});

test('a server without levels hides the control', () => {
  const { store, feed } = page();
  feed({ type: 'hello', user: ME, online: [], rooms: ['general'], last_id: 0, rev: 0, staff: false, unread: [] });
  assert.equal(store.hasLevels, false);
});

test('muted conversations add nothing to the unread total', () => {
  const { store, feed } = page();
  feed({
    type: 'hello', user: ME, online: [], rooms: ['general', 'random'], last_id: 10, rev: 10, staff: false,
    unread: [{ room: 'general', read_seq: 0, last_seq: 3, unread: 3, mentions: 0 }, { room: 'random', read_seq: 0, last_seq: 2, unread: 2, mentions: 0 }],
    levels: [{ room: 'random', level: 'none' }],
  });
  assert.equal(store.unreadOf(roomKey('random')), 2, 'still unread: the badge shows a dot');
  assert.equal(store.totalUnread(), 3);
  feed({ type: 'notify', room: 'random', level: 'all' });
  assert.equal(store.totalUnread(), 5);
});

test('the notify frame names the conversation as the server expects', () => {
  assert.deepEqual(notifyFrame(roomKey('general'), 'none'), { type: 'notify', room: 'general', level: 'none' });
  assert.deepEqual(notifyFrame(dmKey('alice'), 'all'), { type: 'notify', with: 'alice', level: 'all' });
});
