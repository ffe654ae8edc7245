// A message's files as the page shows them (static/chat/attachments.js): which
// entries become images and which cards, the label a card shows for a type, and
// the size a thumbnail takes before its image arrives.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  THUMB_BOX, UNKNOWN_LABEL, attachmentSummary, attachmentsKey, attachmentsOf, localUrl, thumbSize, typeLabel,
} from '../../static/chat/attachments.js';

const photo = {
  id: 'p1', name: 'beach.jpg', size: 204800, type: 'image/jpeg', url: '/uploads/p1/', thumb_url: '/uploads/p1/thumb/', width: 4000, height: 3000,
};
const pdf = { id: 'd1', name: 'report.pdf', size: 1536, type: 'application/pdf', url: '/uploads/d1/' };

test('an entry with a thumbnail is an image, any other a file card, in the order sent', () => {
  const shown = attachmentsOf([pdf, photo]);
  assert.deepEqual(shown.map((entry) => [entry.id, entry.kind]), [['d1', 'file'], ['p1', 'image']]);
  assert.equal(shown[1].thumb, '/uploads/p1/thumb/');
  assert.equal(shown[1].url, '/uploads/p1/');
  assert.equal(shown[0].label, 'PDF');
  assert.equal(shown[0].size, 1536);
});

test('an SVG or any image without a thumbnail is a file to download, not an image to show', () => {
  const svg = { id: 's1', name: 'logo.svg', size: 900, type: 'image/svg+xml', url: '/uploads/s1/' };
  const [entry] = attachmentsOf([svg]);
  assert.equal(entry.kind, 'file');
  assert.equal(entry.label, 'SVG');
});

test('entries without an id or a link on this site are left out', () => {
  const entries = [
    null, 'p1', { ...pdf, id: '' }, { ...pdf, id: 7 }, { ...pdf, url: undefined },
    { ...pdf, url: 'https://evil.example/x' }, { ...pdf, url: '//evil.example/x' }, { ...pdf, url: 'javascript:alert(1)' },
    { ...pdf, url: '/\\evil.example/x' },
  ];
  assert.deepEqual(attachmentsOf(entries), []);
  assert.deepEqual(attachmentsOf(undefined), []);
  assert.deepEqual(attachmentsOf({ 0: pdf }), []);
});

test('a thumbnail link off this site makes the entry a plain file, never an outside image', () => {
  const [entry] = attachmentsOf([{ ...photo, thumb_url: 'https://tracker.example/pixel.gif' }]);
  assert.equal(entry.kind, 'file');
  assert.equal(entry.label, 'JPG');
});

test('only paths on this site are links', () => {
  assert.equal(localUrl('/uploads/abc/'), '/uploads/abc/');
  for (const url of ['uploads/abc/', 'http://x.y/', '//x.y/', '/\\x.y', 'data:image/png;base64,AAAA', 42, null]) {
    assert.equal(localUrl(url), null, String(url));
  }
});

test('a card names the type people know: from the media type first, else from the name', () => {
  assert.equal(typeLabel('application/pdf', 'whatever.bin'), 'PDF');
  assert.equal(typeLabel('application/zip', 'sources'), 'ZIP');
  assert.equal(typeLabel('text/plain; charset=utf-8', 'notes'), 'TXT');
  assert.equal(typeLabel('APPLICATION/PDF', 'x'), 'PDF');
  assert.equal(typeLabel('application/vnd.openxmlformats-officedocument.wordprocessingml.document', 'cv'), 'DOCX');
  assert.equal(typeLabel('application/octet-stream', 'backup.tar.gz'), 'GZ');
  assert.equal(typeLabel('', 'Makefile.mk'), 'MK');
  assert.equal(typeLabel('application/x-tex', 'paper'), 'TEX');
  assert.equal(typeLabel('audio/ogg', 'voice'), 'OGG');
});

test('a type and name that tell nothing read as a file', () => {
  assert.equal(typeLabel('application/octet-stream', 'README'), UNKNOWN_LABEL);
  assert.equal(typeLabel(undefined, undefined), UNKNOWN_LABEL);
  assert.equal(typeLabel('application/octet-stream', 'archive.verylongext'), UNKNOWN_LABEL);
  assert.equal(typeLabel('', '.'), UNKNOWN_LABEL);
});

test('a thumbnail fits its box with its proportions kept', () => {
  assert.deepEqual(thumbSize(4000, 3000), { width: 320, height: 240 });
  assert.deepEqual(thumbSize(3000, 4000), { width: 180, height: 240 });
  assert.deepEqual(thumbSize(1000, 100), { width: 320, height: 32 });
  assert.deepEqual(thumbSize(100, 10000), { width: 2, height: 240 });
  assert.deepEqual(thumbSize(5000, 1), { width: 320, height: 1 });
});

test('a small image is never enlarged', () => {
  assert.deepEqual(thumbSize(64, 48), { width: 64, height: 48 });
  assert.deepEqual(thumbSize(320, 240), { width: 320, height: 240 });
});

test('an image of unknown size takes the whole box', () => {
  for (const [width, height] of [[0, 0], [undefined, 100], [100, NaN], [-5, 10]]) {
    assert.deepEqual(thumbSize(width, height), THUMB_BOX);
  }
  assert.deepEqual(thumbSize(undefined, undefined, { width: 10, height: 20 }), { width: 10, height: 20 });
});

test('attachments are known by their ids: a new name or size is not a new set', () => {
  const before = attachmentsKey(attachmentsOf([photo, pdf]));
  const after = attachmentsKey(attachmentsOf([{ ...photo, name: 'renamed.jpg' }, { ...pdf, size: 9 }]));
  assert.equal(before, after);
  assert.notEqual(before, attachmentsKey(attachmentsOf([photo])));
  assert.notEqual(before, attachmentsKey(attachmentsOf([pdf, photo])));
  assert.equal(attachmentsKey([]), '');
});

test('a files-only message stands in text for its files by their names', () => {
  assert.equal(attachmentSummary([photo, pdf]), '📎 beach.jpg, report.pdf');
  assert.equal(attachmentSummary([]), '');
  assert.equal(attachmentSummary(undefined), '');
});
