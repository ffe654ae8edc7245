// The message body formatter (static/chat/format.js): which text becomes a link,
// a mention, emphasis or code, and which stays exactly as typed.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { displayName, isLong, tokenize } from '../../static/chat/format.js';

const text = (value) => ({ type: 'text', text: value });
const link = (value, href = value) => ({ type: 'link', text: value, href });

test('plain text is one text token, kept character for character', () => {
  assert.deepEqual(tokenize('hello <b>there</b> & "you"'), [text('hello <b>there</b> & "you"')]);
  assert.deepEqual(tokenize(''), []);
});

test('javascript:, data: and other schemes are never links', () => {
  for (const body of ['javascript:alert(1)', 'data:text/html,<script>alert(1)</script>', 'ftp://x.y/z', 'mailto:a@b.c', 'file:///etc/passwd']) {
    assert.deepEqual(tokenize(body), [text(body)], body);
  }
});

test('http and https URLs become links', () => {
  assert.deepEqual(tokenize('see https://example.com/path?q=1#top now'), [
    text('see '), link('https://example.com/path?q=1#top'), text(' now'),
  ]);
  assert.deepEqual(tokenize('http://x.y'), [link('http://x.y', 'http://x.y/')]);
});

test('a scheme glued to a word, or without a host, is not a link', () => {
  assert.deepEqual(tokenize('xhttps://x.y'), [text('xhttps://x.y')]);
  assert.deepEqual(tokenize('https:// nothing'), [text('https:// nothing')]);
});

test('trailing punctuation ends the sentence, not the link', () => {
  assert.deepEqual(tokenize('http://x.y/z.'), [link('http://x.y/z'), text('.')]);
  assert.deepEqual(tokenize('wow https://x.y/a!?'), [text('wow '), link('https://x.y/a'), text('!?')]);
  assert.deepEqual(tokenize('https://x.y/a, b'), [link('https://x.y/a'), text(', b')]);
});

test('a closing bracket belongs to a link only when it closes one inside it', () => {
  assert.deepEqual(tokenize('https://example.com/a_(b)'), [link('https://example.com/a_(b)')]);
  assert.deepEqual(tokenize('(see https://x.y/z)'), [text('(see '), link('https://x.y/z'), text(')')]);
  assert.deepEqual(tokenize('(https://example.com/a_(b)).'), [text('('), link('https://example.com/a_(b)'), text(').')]);
});

test('*bold* and _italic_ become emphasis', () => {
  assert.deepEqual(tokenize('a *bold* word'), [text('a '), { type: 'strong', children: [text('bold')] }, text(' word')]);
  assert.deepEqual(tokenize('_italic_.'), [{ type: 'em', children: [text('italic')] }, text('.')]);
});

test('markers inside words, unclosed or with spaces inside stay literal', () => {
  for (const body of ['a*b*c', 'snake_case_name', '*unclosed', 'x * y * z', '* not bold*', '**', '*a\nb*', '2*3*4 = 24']) {
    assert.deepEqual(tokenize(body), [text(body)], body);
  }
  assert.deepEqual(tokenize('*one* and *two'), [{ type: 'strong', children: [text('one')] }, text(' and *two')]);
});

test('emphasis nests', () => {
  assert.deepEqual(tokenize('*bold _and italic_*'), [
    { type: 'strong', children: [text('bold '), { type: 'em', children: [text('and italic')] }] },
  ]);
});

test('a link inside emphasis stays whole, underscores and all', () => {
  assert.deepEqual(tokenize('*see https://x.y/a_b_c*'), [
    { type: 'strong', children: [text('see '), link('https://x.y/a_b_c')] },
  ]);
  assert.deepEqual(tokenize('_at https://x.y/a_b_'), [{ type: 'em', children: [text('at '), link('https://x.y/a_b')] }]);
});

test('code keeps its markers, links and mentions literal', () => {
  assert.deepEqual(tokenize('run `a*b*c` now'), [text('run '), { type: 'code', text: 'a*b*c' }, text(' now')]);
  assert.deepEqual(tokenize('`*x* https://x.y @bob`', { mentions: ['bob'] }), [{ type: 'code', text: '*x* https://x.y @bob' }]);
  assert.deepEqual(tokenize('an `unclosed span'), [text('an `unclosed span')]);
});

test('fenced blocks become preformatted code, the lines around the fences dropped', () => {
  assert.deepEqual(tokenize('before\n```\n*x* _y_\nhttps://a.b\n```\nafter'), [
    text('before'), { type: 'pre', text: '*x* _y_\nhttps://a.b' }, text('after'),
  ]);
  assert.deepEqual(tokenize('```one line```'), [{ type: 'pre', text: 'one line' }]);
  assert.deepEqual(tokenize('```python\nprint(1)\n```'), [{ type: 'pre', text: 'print(1)' }]);
  assert.deepEqual(tokenize('```\ncode\n``` *after*'), [{ type: 'pre', text: 'code' }, { type: 'strong', children: [text('after')] }]);
});

test('a fence left open runs to the end, as the server reads code for mentions', () => {
  assert.deepEqual(tokenize('look\n```\n*x* @bob', { mentions: ['bob'] }), [text('look'), { type: 'pre', text: '*x* @bob' }]);
  assert.deepEqual(tokenize('just ```'), [text('just ```')]);
  assert.deepEqual(tokenize('```'), [text('```')]);
});

test('an inline span is closed by a run of as many backticks', () => {
  assert.deepEqual(tokenize('a ``x ` y`` b'), [text('a '), { type: 'code', text: 'x ` y' }, text(' b')]);
  assert.deepEqual(tokenize('`` `tick` ``'), [{ type: 'code', text: '`tick`' }]);
  assert.deepEqual(tokenize('mid ```x``` line'), [text('mid '), { type: 'code', text: 'x' }, text(' line')]);
});

test('only names the message mentions become mentions, mine marked', () => {
  assert.deepEqual(tokenize('hi @bob and @carol', { mentions: ['bob', 'carol'], me: 'carol' }), [
    text('hi '),
    { type: 'mention', name: 'bob', text: '@bob', me: false },
    text(' and '),
    { type: 'mention', name: 'carol', text: '@carol', me: true },
  ]);
  assert.deepEqual(tokenize('hi @nobody', { mentions: ['bob'] }), [text('hi @nobody')]);
  assert.deepEqual(tokenize('mail bob@example.com', { mentions: ['bob', 'example.com'] }), [text('mail bob@example.com')]);
});

test('a mention ends before the punctuation or marker after it', () => {
  assert.deepEqual(tokenize('thanks @bob.', { mentions: ['bob'] }), [
    text('thanks '), { type: 'mention', name: 'bob', text: '@bob', me: false }, text('.'),
  ]);
  assert.deepEqual(tokenize('_ask @bob_', { mentions: ['bob'] }), [
    { type: 'em', children: [text('ask '), { type: 'mention', name: 'bob', text: '@bob', me: false }] },
  ]);
});

test('bodies longer than 600 characters or 12 lines are long', () => {
  assert.equal(isLong('x'.repeat(600)), false);
  assert.equal(isLong('x'.repeat(601)), true);
  assert.equal(isLong(Array(12).fill('line').join('\n')), false);
  assert.equal(isLong(Array(13).fill('line').join('\n')), true);
});

test('a deleted account shows as "deleted user"; every other name as it is', () => {
  assert.equal(displayName('deleted-17'), 'deleted user');
  assert.equal(displayName('alice'), 'alice');
  // Only the reserved prefix: a name that merely contains the word stays.
  assert.equal(displayName('undeleted-17'), 'undeleted-17');
});
