// The composer's upload queue (static/chat/uploads.js): each file goes queued →
// uploading (with progress) → done with the server's answer or failed with a
// reason; cancel aborts, retry starts again, and the limits refuse files early.
// The requests are fakes with XMLHttpRequest's interface: the unit is the queue.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { roomKey, sendFrame } from '../../static/chat/protocol.js';
import { Store } from '../../static/chat/store.js';
import { UploadQueue, attachmentOf, csrfToken, failureReason } from '../../static/chat/uploads.js';

/** A stand-in XMLHttpRequest that records what was asked and lets the test answer. */
class FakeRequest {
  constructor() {
    this.upload = {};
    this.headers = {};
    this.aborted = false;
  }

  open(method, url) {
    Object.assign(this, { method, url });
  }

  setRequestHeader(name, value) {
    this.headers[name] = value;
  }

  send(body) {
    this.body = body;
  }

  abort() {
    this.aborted = true;
  }

  progress(loaded, total) {
    this.upload.onprogress({ lengthComputable: true, loaded, total });
  }

  answer(status, body) {
    this.status = status;
    this.responseText = typeof body === 'string' ? body : JSON.stringify(body);
    this.onload();
  }

  fail() {
    this.status = 0;
    this.onerror();
  }
}

function setup(options = {}) {
  const requests = [];
  let changes = 0;
  const queue = new UploadQueue({
    createRequest: () => {
      const request = new FakeRequest();
      requests.push(request);
      return request;
    },
    token: () => 'the-token',
    onChange: () => { changes += 1; },
    ...options,
  });
  return { queue, requests, changes: () => changes };
}

const file = (name, size = 10, type = 'text/plain') => new File([new Uint8Array(size)], name, { type });
const states = (queue) => queue.items.map((entry) => entry.state);

test('a file is posted as multipart field "file" with the CSRF header, and its progress goes 0..1', () => {
  const { queue, requests } = setup();
  queue.add([file('notes.txt', 10)]);
  assert.equal(requests.length, 1);
  const [request] = requests;
  assert.equal(request.method, 'POST');
  assert.equal(request.url, '/uploads/');
  assert.equal(request.headers['X-CSRFToken'], 'the-token');
  assert.equal(request.body.get('file').name, 'notes.txt');
  assert.deepEqual(states(queue), ['uploading']);
  assert.equal(queue.items[0].progress, 0);
  request.progress(5, 10);
  assert.equal(queue.items[0].progress, 0.5);
  assert.ok(queue.busy());
});

test('the server\'s 201 answer makes the file done and an attachment of the next message', () => {
  const { queue, requests } = setup();
  queue.add([file('photo.png', 10, 'image/png'), file('notes.txt')]);
  requests[0].answer(201, { id: 'k1', name: 'photo.png', size: 10, type: 'image/png', width: 4, height: 3 });
  assert.deepEqual(states(queue), ['done', 'uploading']);
  assert.equal(queue.items[0].progress, 1);
  assert.ok(queue.busy(), 'one is still on its way');
  requests[1].answer(201, { id: 'k2', name: 'notes.txt', size: 10, type: 'text/plain' });
  assert.ok(!queue.busy());
  assert.deepEqual(queue.attachments(), [
    { id: 'k1', name: 'photo.png', size: 10, type: 'image/png', url: '/uploads/k1/', thumb_url: '/uploads/k1/thumb/', width: 4, height: 3 },
    { id: 'k2', name: 'notes.txt', size: 10, type: 'text/plain', url: '/uploads/k2/' },
  ]);
});

test('every failure says why, from the status', () => {
  const cases = [
    [413, { error: 'too_big', message: 'The file is larger than 5 MB.' }, 'The file is larger than 5 MB.'],
    [413, { error: 'too_big', message: 'x', limit: 2048 }, 'Too big: files may be at most 2 KB.'],
    [415, { error: 'bad_type', message: '' }, 'This type of file is not accepted.'],
    [429, { error: 'rate_limited', message: 'slow down' }, 'Too many uploads: wait a moment, then retry.'],
    [400, { error: 'empty', message: 'The file is empty.' }, 'The file is empty.'],
    [500, '<html>oops</html>', 'The upload failed (HTTP 500).'],
    [200, '<html>log in</html>', 'The server did not take the file: reload the page and try again.'],
  ];
  for (const [status, body, reason] of cases) {
    const { queue, requests } = setup();
    queue.add([file('a.bin')]);
    requests[0].answer(status, body);
    assert.deepEqual(states(queue), ['failed'], `status ${status}`);
    assert.equal(queue.items[0].reason, reason, `status ${status}`);
  }
  const { queue, requests } = setup();
  queue.add([file('a.bin')]);
  requests[0].fail();
  assert.equal(queue.items[0].reason, 'Could not reach the server: you may be offline.');
  assert.ok(queue.failed());
  assert.ok(!queue.busy());
});

test('413 without a sentence names the limit the page knows', () => {
  assert.equal(failureReason(413, null, { maxBytes: 5 * 1024 * 1024 }), 'Too big: files may be at most 5 MB.');
  assert.equal(failureReason(413, null), 'Too big for the server.');
});

test('retry uploads a failed file again with a new request', () => {
  const { queue, requests } = setup();
  queue.add([file('a.bin')]);
  requests[0].fail();
  assert.ok(queue.retry(queue.items[0].key));
  assert.equal(requests.length, 2);
  assert.deepEqual(states(queue), ['uploading']);
  assert.equal(queue.items[0].reason, null);
  requests[1].answer(201, { id: 'k9', name: 'a.bin', size: 10, type: 'application/octet-stream' });
  assert.deepEqual(states(queue), ['done']);
  assert.ok(!queue.retry(queue.items[0].key), 'only a failed file is retried');
});

test('cancel aborts the upload in progress and its late answer changes nothing', () => {
  const { queue, requests } = setup();
  queue.add([file('big.iso'), file('small.txt')]);
  const key = queue.items[0].key;
  assert.ok(queue.remove(key));
  assert.ok(requests[0].aborted);
  assert.deepEqual(queue.items.map((entry) => entry.name), ['small.txt']);
  requests[0].answer(201, { id: 'late', name: 'big.iso', size: 10, type: '' });
  assert.deepEqual(queue.attachments(), []);
  assert.deepEqual(states(queue), ['uploading']);
});

test('at most `parallel` uploads run at once; the others wait queued and start as they end', () => {
  const { queue, requests } = setup({ parallel: 2 });
  queue.add([file('1'), file('2'), file('3')]);
  assert.deepEqual(states(queue), ['uploading', 'uploading', 'queued']);
  assert.equal(requests.length, 2);
  requests[0].answer(201, { id: 'k1', name: '1', size: 10, type: '' });
  assert.deepEqual(states(queue), ['done', 'uploading', 'uploading']);
  assert.equal(requests.length, 3);
  queue.remove(queue.items[2].key);
  queue.add([file('4')]);
  assert.deepEqual(states(queue), ['done', 'uploading', 'uploading']);
});

test('an 11th file is refused with a sentence that says the limit', () => {
  const { queue, requests } = setup({ parallel: 20 });
  assert.deepEqual(queue.add(Array.from({ length: 9 }, (_, i) => file(`f${i}`))), []);
  const problems = queue.add([file('ten'), file('eleven'), file('twelve')]);
  assert.equal(queue.items.length, 10);
  assert.equal(requests.length, 10);
  assert.deepEqual(problems, ['At most 10 files per message: 2 more not added.']);
});

test('a file over the page\'s limit is refused before any request', () => {
  const { queue, requests } = setup({ maxBytes: 1024 });
  const problems = queue.add([file('huge.bin', 2048), file('ok.txt', 1024)]);
  assert.deepEqual(problems, ['Too big to send (files may be at most 1 KB): huge.bin.']);
  assert.equal(requests.length, 1);
  assert.equal(requests[0].body.get('file').name, 'ok.txt');
});

test('clear aborts what is on its way and empties the queue; changes are reported', () => {
  const { queue, requests, changes } = setup();
  queue.add([file('a'), file('b')]);
  const before = changes();
  requests[0].progress(1, 10);
  assert.equal(changes(), before + 1);
  queue.clear();
  assert.ok(requests.every((request) => request.aborted));
  assert.deepEqual(queue.items, []);
  assert.ok(!queue.busy());
  requests[1].answer(201, { id: 'x', name: 'b', size: 10, type: '' });
  assert.deepEqual(queue.items, []);
});

test('progress events without a known length move nothing', () => {
  const { queue, requests } = setup();
  queue.add([file('a')]);
  requests[0].upload.onprogress({ lengthComputable: false, loaded: 3, total: 0 });
  assert.equal(queue.items[0].progress, 0);
});

test('the CSRF token comes from the csrftoken cookie, else from a form on the page', () => {
  assert.equal(csrfToken({ cookie: 'a=1; csrftoken=abc%3D; b=2' }), 'abc=');
  const doc = { cookie: '', querySelector: () => ({ value: 'from-form' }) };
  assert.equal(csrfToken(doc), 'from-form');
  assert.equal(csrfToken({ cookie: '', querySelector: () => null }), '');
});

test('an upload answer becomes a message frame\'s attachment entry', () => {
  assert.deepEqual(attachmentOf({ id: 'k', name: 'n.pdf', size: 3, type: 'application/pdf' }), {
    id: 'k', name: 'n.pdf', size: 3, type: 'application/pdf', url: '/uploads/k/',
  });
});

test('a message of files keeps them: a resend on a new socket carries the same ids, the ack shows them', () => {
  const store = new Store('alice');
  const photo = attachmentOf({ id: 'k1', name: 'p.png', size: 3, type: 'image/png', width: 2, height: 2 });
  store.addPending(roomKey('general'), '', 'c1', [photo]);
  const frames = (generation) => store.unsent(generation).map((pending) => (
    sendFrame(pending.key, pending.body, pending.clientId, pending.attachments.map((attachment) => attachment.id))
  ));
  const first = frames(1);
  assert.deepEqual(first, [{ type: 'send', room: 'general', body: '', client_id: 'c1', attachments: ['k1'] }]);
  store.markSent('c1', 1);
  assert.deepEqual(frames(1), [], 'not twice on one socket');
  assert.deepEqual(frames(2), first, 'the same frame after a reconnect');
  const shown = store.messageFromAck({ type: 'ack', client_id: 'c1', id: 7, seq: 1, sent_at: '2026-01-01T00:00:00Z' });
  assert.deepEqual(shown.attachments, [photo]);
});

test('a message without files sends no attachments field', () => {
  assert.deepEqual(sendFrame(roomKey('general'), 'hi', 'c2'), { type: 'send', room: 'general', body: 'hi', client_id: 'c2' });
});
