// Mentioning people (static/chat/mentions.js): the `@fragment` at the caret, who it
// may mean and in what order, how a choice lands in the text, and who is offered.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Conversation } from '../../static/chat/conversation.js';
import {
  MAX_SUGGESTIONS, applyChoice, fragmentAt, mentionsMe, peopleToMention, rankCandidates,
} from '../../static/chat/mentions.js';
import { dmKey, roomKey } from '../../static/chat/protocol.js';

/** The fragment of `text` with the caret at its `|` (the `|` removed). */
const fragmentIn = (text) => fragmentAt(text.replace('|', ''), text.indexOf('|'));

test('an @ and letters at a word start, right before the caret, are a fragment', () => {
  assert.deepEqual(fragmentIn('@b|'), { start: 0, end: 2, query: 'b' });
  assert.deepEqual(fragmentIn('hi @Bo|'), { start: 3, end: 6, query: 'Bo' });
  assert.deepEqual(fragmentIn('line\n@first.la|'), { start: 5, end: 14, query: 'first.la' });
  assert.deepEqual(fragmentIn('(@Élo|'), { start: 1, end: 5, query: 'Élo' });
  assert.deepEqual(fragmentIn('@bo| and more'), { start: 0, end: 3, query: 'bo' });
});

test('no fragment without a name character, inside a word or address, or away from the caret', () => {
  assert.equal(fragmentIn('@|'), null);
  assert.equal(fragmentIn('hi @ |'), null);
  assert.equal(fragmentIn('mail bob@exa|'), null);
  assert.equal(fragmentIn('x.@bo|'), null);
  assert.equal(fragmentIn('@bob |'), null);
  assert.equal(fragmentIn('|@bob'), null);
  assert.equal(fragmentAt('@bob', 9), null);
});

test('candidates match a prefix of the username ignoring case, exact and same-case first', () => {
  const people = ['Bobby', 'carol', 'bo', 'bob', 'BOB2', 'alice', 'bob'];
  assert.deepEqual(rankCandidates(people, 'bob'), ['bob', 'Bobby', 'BOB2']);
  assert.deepEqual(rankCandidates(people, 'B'), ['Bobby', 'BOB2', 'bo', 'bob']);
  assert.deepEqual(rankCandidates(people, 'b'), ['bo', 'bob', 'Bobby', 'BOB2']);
  assert.deepEqual(rankCandidates(people, 'z'), []);
});

test('never more than eight candidates, in the order given', () => {
  const people = Array.from({ length: 20 }, (_, index) => `user${String(index).padStart(2, '0')}`);
  assert.equal(MAX_SUGGESTIONS, 8);
  assert.deepEqual(rankCandidates(people, 'user'), people.slice(0, 8));
  assert.deepEqual(rankCandidates(people, 'user1'), people.slice(10, 18));
});

test('a choice replaces the fragment with @name and a space, the caret after it', () => {
  const text = 'hi @b';
  assert.deepEqual(applyChoice(text, fragmentAt(text, 5), 'bob'), { text: 'hi @bob ', caret: 8 });
});

test('a choice in the middle takes the rest of the typed name and reuses a following space', () => {
  const middle = 'hi @bo| there';
  const text = middle.replace('|', '');
  assert.deepEqual(applyChoice(text, fragmentIn(middle), 'bob'), { text: 'hi @bob there', caret: 8 });
  const inside = 'x @ca|rl, y';
  assert.deepEqual(applyChoice(inside.replace('|', ''), fragmentIn(inside), 'carol'), { text: 'x @carol , y', caret: 9 });
});

/** A room conversation holding messages from `senders`, oldest first. */
function roomWith(senders) {
  const conversation = new Conversation(roomKey('general'));
  senders.forEach((from, index) => conversation.put({ id: index + 1, seq: index + 1, from, body: 'x' }));
  return conversation;
}

test('in a room: recent speakers newest first, then people online, never me, each once', () => {
  const room = roomWith(['carol', 'me', 'bob', 'carol', 'dave']);
  assert.deepEqual(peopleToMention(room, new Set(['zoe', 'me', 'bob', 'anna']), 'me'), ['dave', 'carol', 'bob', 'anna', 'zoe']);
});

test('in a direct conversation: the other person; in my notes: nobody', () => {
  assert.deepEqual(peopleToMention(new Conversation(dmKey('bob')), new Set(['carol']), 'me'), ['bob']);
  assert.deepEqual(peopleToMention(new Conversation(dmKey('me')), new Set(['carol']), 'me'), []);
  assert.deepEqual(peopleToMention(null, new Set(['carol']), 'me'), []);
});

test('a message mentions me when it names me, is from someone else and is not deleted', () => {
  assert.equal(mentionsMe({ from: 'alice', mentions: ['bob'] }, 'bob'), true);
  assert.equal(mentionsMe({ from: 'alice', mentions: ['carol'] }, 'bob'), false);
  assert.equal(mentionsMe({ from: 'bob', mentions: ['bob'] }, 'bob'), false);
  assert.equal(mentionsMe({ from: 'alice', mentions: ['bob'], deleted: true }, 'bob'), false);
  assert.equal(mentionsMe({ from: 'alice', body: '@bob' }, 'bob'), false);
});
