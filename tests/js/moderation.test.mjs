// The staff menu's logic (static/chat/moderation.js): who gets which entries, the
// frames each choice sends, and the words for mutes and deactivations.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  MUTE_CHOICES, deactivateFrame, menuChoice, moderationNotice, muteFrame, mutedText, staffMenuItems,
} from '../../static/chat/moderation.js';
import { Store } from '../../static/chat/store.js';

const hello = (fields) => ({
  type: 'hello', user: 'root', online: ['root', 'bob'], rooms: ['general'], direct: [], last_id: 0, rev: 0, unread: [], ...fields,
});

test('a staff member gets mutes, unmute and deactivate for someone else', () => {
  const items = staffMenuItems({ staff: true, me: 'root', user: 'bob' });
  assert.deepEqual(items.map((item) => item.label), ['Mute 10 min', 'Mute 1 h', 'Mute 1 day', 'Unmute', 'Deactivate…']);
  assert.deepEqual(items.filter((item) => item.action === 'mute').map((item) => item.minutes), [10, 60, 1440]);
  assert.equal(items.find((item) => item.action === 'deactivate').confirm, true);
});

test('nobody gets a menu about themselves, and non-staff get none at all', () => {
  assert.deepEqual(staffMenuItems({ staff: true, me: 'root', user: 'root' }), []);
  assert.deepEqual(staffMenuItems({ staff: false, me: 'carol', user: 'bob' }), []);
  assert.deepEqual(staffMenuItems({ staff: true, me: 'root', user: '' }), []);
});

test('the page knows it is staff only when hello says so', () => {
  const staffStore = new Store('root');
  staffStore.applyHello(hello({ staff: true }));
  assert.equal(staffStore.staff, true);
  for (const staff of [false, undefined, 'yes']) {
    const store = new Store('root');
    store.applyHello(hello({ staff }));
    assert.equal(store.staff, false, `staff: ${staff}`);
  }
});

test('a mute is for everywhere unless limited to a room; unmute sends zero minutes', () => {
  assert.deepEqual(muteFrame('bob', 10), { type: 'mute', user: 'bob', minutes: 10 });
  assert.deepEqual(muteFrame('bob', 60, 'general'), { type: 'mute', user: 'bob', minutes: 60, room: 'general' });
  assert.deepEqual(menuChoice({ action: 'mute', user: 'bob', minutes: 1440 }), { frame: { type: 'mute', user: 'bob', minutes: 1440 } });
  assert.deepEqual(menuChoice({ action: 'unmute', user: 'bob', minutes: 0, room: 'general' }), {
    frame: { type: 'mute', user: 'bob', minutes: 0, room: 'general' },
  });
  assert.ok(MUTE_CHOICES.every(({ minutes }) => minutes >= 1 && minutes <= 43200));
});

test('deactivating asks first and sends only once confirmed; cancel sends nothing', () => {
  assert.deepEqual(menuChoice({ action: 'deactivate', user: 'bob' }), { confirm: true });
  assert.deepEqual(menuChoice({ action: 'confirm-deactivate', user: 'bob' }), { frame: deactivateFrame('bob') });
  assert.deepEqual(deactivateFrame('bob'), { type: 'deactivate', user: 'bob' });
  assert.deepEqual(menuChoice({ action: 'cancel', user: 'bob' }), {});
});

test('a muted person is told until when, and something sensible without a time', () => {
  const text = mutedText({ type: 'error', code: 'muted', until: '2030-01-02T03:04:00.000Z' }, 'en-GB');
  assert.match(text, /^You are muted until /);
  assert.match(text, /2030|30/);
  assert.equal(mutedText({ type: 'error', code: 'muted' }, 'en-GB'), 'You are muted for now');
  assert.equal(mutedText({ type: 'error', code: 'muted', until: 'soon' }, 'en-GB'), 'You are muted for now');
});

test('staff are told what their mute, unmute or deactivation did', () => {
  assert.match(moderationNotice({ type: 'mute', user: 'bob', room: null, until: '2030-01-02T03:04:00.000Z' }, 'en-GB'), /^bob is muted until /);
  assert.match(moderationNotice({ type: 'mute', user: 'bob', room: 'general', until: '2030-01-02T03:04:00.000Z' }, 'en-GB'), /^bob is muted in general until /);
  assert.equal(moderationNotice({ type: 'mute', user: 'bob', room: null, until: null }), 'bob is no longer muted.');
  assert.equal(moderationNotice({ type: 'deactivate', user: 'bob' }), "bob's account is deactivated.");
});
