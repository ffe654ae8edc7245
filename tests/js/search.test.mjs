// Message search (static/chat/search.js): the request built for what was typed,
// the words highlighted in a result, the labels of a result and the filter that
// keeps only the answer to the latest request.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  Scope, SearchRequests, formatWhen, highlightParts, highlightRanges, isSearchable, mergeRanges, queryWords,
  resultLabel, searchRequest, snippet,
} from '../../static/chat/search.js';

/** The highlighted pieces of `body` for `q`, as text. */
const marked = (body, q) => highlightParts(body, highlightRanges(body, q)).filter((part) => part.mark).map((part) => part.text);

test('a query needs a word character in any script to be searched', () => {
  assert.equal(isSearchable('deploy'), true);
  assert.equal(isSearchable('  прив'), true);
  assert.equal(isSearchable('東京'), true);
  assert.equal(isSearchable('42'), true);
  assert.equal(isSearchable('  '), false);
  assert.equal(isSearchable('?!.'), false);
  assert.equal(isSearchable(''), false);
  assert.equal(isSearchable('___'), false); // the server splits words on underscores
  assert.equal(isSearchable('a'.repeat(200)), true);
  assert.equal(isSearchable('a'.repeat(201)), false);
});

test('the request searches everywhere, or in the open room or direct conversation, and pages with before', () => {
  assert.deepEqual(searchRequest({ q: ' deploy friday ' }), { type: 'search', q: 'deploy friday', limit: 20 });
  assert.deepEqual(
    searchRequest({ q: 'deploy', scope: Scope.HERE, activeKey: 'room:general', before: 900 }),
    { type: 'search', q: 'deploy', room: 'general', before: 900, limit: 20 },
  );
  assert.deepEqual(
    searchRequest({ q: 'deploy', scope: Scope.HERE, activeKey: 'dm:alice' }),
    { type: 'search', q: 'deploy', with: 'alice', limit: 20 },
  );
  assert.deepEqual(searchRequest({ q: 'deploy', scope: Scope.ALL, activeKey: 'dm:alice' }), { type: 'search', q: 'deploy', limit: 20 });
  assert.equal(searchRequest({ q: '***' }), null);
});

test('query words are split on anything but word characters and lower-cased', () => {
  assert.deepEqual(queryWords('Deploy, FRIDAY deploy'), ['deploy', 'friday']);
  assert.deepEqual(queryWords('Привет-мир'), ['привет', 'мир']);
});

test('a Cyrillic prefix is highlighted in a capitalised word', () => {
  assert.deepEqual(marked('Привет всем!', 'прив'), ['Прив']);
  assert.deepEqual(highlightRanges('Привет всем!', 'прив'), [[0, 4]]);
});

test('every word of the query is highlighted, each time it starts a word', () => {
  assert.deepEqual(marked('Deploy on Friday; redeploy after the deploy', 'deploy friday'), ['Deploy', 'Friday', 'deploy']);
});

test('the last word of the query matches as a prefix, words inside other words do not', () => {
  assert.deepEqual(marked('deployment deferred; we redeploy', 'deploy def'), ['deploy', 'def']);
});

test('overlapping and touching ranges are merged into one mark', () => {
  assert.deepEqual(marked('Привет', 'при привет'), ['Привет']);
  assert.deepEqual(mergeRanges([[5, 8], [0, 3], [2, 4], [4, 5], [10, 12]]), [[0, 8], [10, 12]]);
});

test('lower-casing that changes the length still marks the right characters', () => {
  // "İ" lower-cases to two units: the mark must still cover "İst" of the original.
  assert.deepEqual(marked('İstanbul trip', 'i̇st'), ['İst']);
});

test('a body without matches is one unmarked part, and text between marks is kept', () => {
  assert.deepEqual(highlightParts('nothing here', highlightRanges('nothing here', 'deploy')), [{ text: 'nothing here', mark: false }]);
  const parts = highlightParts('a deploy b', [[2, 8]]);
  assert.deepEqual(parts, [{ text: 'a ', mark: false }, { text: 'deploy', mark: true }, { text: ' b', mark: false }]);
  assert.equal(parts.map((part) => part.text).join(''), 'a deploy b');
});

test('a result names its room, the other party of a direct message, or my notes', () => {
  const sentAt = '2026-03-05T14:07:00Z';
  const inRoom = resultLabel({ id: 1, seq: 1, room: 'general', from: 'alice', body: 'x', sent_at: sentAt }, 'bob', 'en-GB');
  assert.equal(inRoom.where, '#general');
  assert.equal(inRoom.from, 'alice');
  assert.equal(inRoom.key, 'room:general');
  assert.equal(inRoom.when, formatWhen(sentAt, 'en-GB'));
  assert.match(inRoom.when, /2026/);
  assert.equal(resultLabel({ id: 2, seq: 1, to: 'alice', from: 'bob', sent_at: sentAt }, 'bob').where, 'alice');
  assert.equal(resultLabel({ id: 3, seq: 1, to: 'bob', from: 'alice', sent_at: sentAt }, 'bob').where, 'alice');
  assert.equal(resultLabel({ id: 4, seq: 1, to: 'bob', from: 'bob', sent_at: sentAt }, 'bob').where, 'notes to self');
  assert.equal(resultLabel({ id: 5, seq: 1, from: 'bob' }, 'bob'), null);
  assert.equal(formatWhen('not a time'), '');
});

test('only the answer to the latest request is taken; older queries and repeats are ignored', () => {
  const requests = new SearchRequests();
  requests.ask(searchRequest({ q: 'dep' }));
  requests.ask(searchRequest({ q: 'deploy' }));
  assert.equal(requests.accept({ type: 'search', q: 'dep', messages: [], has_more: false }), null);
  assert.deepEqual(requests.accept({ type: 'search', q: 'deploy', messages: [], has_more: false }), { append: false });
  assert.equal(requests.accept({ type: 'search', q: 'deploy', messages: [], has_more: false }), null);
});

test('an answer for another scope is stale, and a page asked with before is appended', () => {
  const requests = new SearchRequests();
  requests.ask(searchRequest({ q: 'deploy', scope: Scope.HERE, activeKey: 'room:general', before: 50 }));
  assert.equal(requests.accept({ type: 'search', q: 'deploy', messages: [] }), null);
  assert.equal(requests.accept({ type: 'search', q: 'deploy', room: 'random', messages: [] }), null);
  assert.deepEqual(requests.accept({ type: 'search', q: 'deploy', room: 'general', messages: [] }), { append: true });
});

test('a cancelled request takes no answer', () => {
  const requests = new SearchRequests();
  requests.ask(searchRequest({ q: 'deploy' }));
  requests.cancel();
  assert.equal(requests.accept({ type: 'search', q: 'deploy', messages: [] }), null);
});

test('a long body is cut around its first match, which stays highlighted', () => {
  const body = `${'a'.repeat(500)} deploy ${'b'.repeat(500)}`;
  const { text, ranges } = snippet(body, highlightRanges(body, 'deploy'), { length: 100, lead: 20 });
  assert.ok(text.startsWith('…') && text.endsWith('…'));
  assert.equal(highlightParts(text, ranges).filter((part) => part.mark).map((part) => part.text).join(), 'deploy');
  assert.deepEqual(snippet('short deploy', [[6, 12]]), { text: 'short deploy', ranges: [[6, 12]] });
});
