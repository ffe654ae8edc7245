// The composer's tray (static/chat/composer-files.js): what each file's chip says
// in each state, and which drags and pastes bring files.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { carriesFiles, chipOf, filesOf, outcomeOf } from '../../static/chat/composer-files.js';

const entry = (fields) => ({ key: 'u1', name: 'photo.png', size: 2048, type: 'image/png', state: 'queued', progress: 0, answer: null, reason: null, ...fields });

test('an uploading file shows its progress and offers Cancel, no Retry', () => {
  const chip = chipOf(entry({ state: 'uploading', progress: 0.25 }));
  assert.equal(chip.name, 'photo.png');
  assert.equal(chip.size, '2 KB');
  assert.equal(chip.progress, 0.25);
  assert.equal(chip.progressLabel, 'Uploading photo.png');
  assert.equal(chip.dismiss, 'Cancel');
  assert.equal(chip.dismissLabel, 'Cancel uploading photo.png');
  assert.equal(chip.retry, false);
  assert.equal(chip.thumb, null, 'no thumbnail before the server has it');
});

test('an uploaded image shows its thumbnail from the server and offers Remove', () => {
  const chip = chipOf(entry({ state: 'done', progress: 1, answer: { id: 'ab_c', name: 'photo.png', size: 2048, type: 'image/png', width: 4, height: 3 } }));
  assert.equal(chip.thumb, '/uploads/ab_c/thumb/');
  assert.equal(chip.progress, null);
  assert.equal(chip.status, 'Ready to send');
  assert.equal(chip.dismiss, 'Remove');
});

test('an uploaded file that is not an image has no thumbnail', () => {
  const chip = chipOf(entry({ name: 'a.pdf', state: 'done', answer: { id: 'k', name: 'a.pdf', size: 1, type: 'application/pdf' } }));
  assert.equal(chip.thumb, null);
});

test('a failed file says why and offers Retry and Remove', () => {
  const chip = chipOf(entry({ state: 'failed', reason: 'Too big: files may be at most 5 MB.' }));
  assert.equal(chip.status, 'Too big: files may be at most 5 MB.');
  assert.equal(chip.retry, true);
  assert.equal(chip.retryLabel, 'Retry uploading photo.png');
  assert.equal(chip.dismiss, 'Remove');
  assert.equal(chip.progress, null);
});

test('only drags that carry files count, and their files come out as an array', () => {
  assert.equal(carriesFiles({ types: ['text/plain'] }), false);
  assert.equal(carriesFiles({ types: ['Files', 'text/uri-list'] }), true);
  assert.equal(carriesFiles(null), false);
  const files = [new File(['x'], 'a.txt')];
  assert.deepEqual(filesOf({ files }).map((file) => file.name), ['a.txt']);
  assert.deepEqual(filesOf({}), []);
});

test('the end of an upload is said in words; an upload on its way says nothing', () => {
  assert.equal(outcomeOf(entry({ state: 'done' })), 'photo.png uploaded');
  assert.equal(outcomeOf(entry({ state: 'failed', reason: 'Too many uploads.' })), 'photo.png not uploaded: Too many uploads.');
  assert.equal(outcomeOf(entry({ state: 'uploading' })), null);
});
