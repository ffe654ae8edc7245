// uploads.js: the composer's upload queue. Each chosen file is queued, uploaded
// with POST /uploads/ (XMLHttpRequest: fetch reports no upload progress), and ends
// done with the server's answer or failed with a reason. No DOM.

import { formatBytes } from './format.js';
import { gettext, interpolate, ngettext } from './i18n.js';

export const UPLOAD_URL = '/uploads/';
export const MAX_FILES = 10; // attachments per message, as the server takes them
export const PARALLEL_UPLOADS = 3; // the rest wait, so a big batch does not starve the socket

/** Reads Django's CSRF token: the `csrftoken` cookie, else the token of a form on the page. */
export function csrfToken(doc = globalThis.document) {
  if (!doc) return '';
  for (const part of (doc.cookie || '').split(';')) {
    const [name, ...value] = part.trim().split('=');
    if (name === 'csrftoken') return decodeURIComponent(value.join('='));
  }
  return doc.querySelector?.('input[name="csrfmiddlewaretoken"]')?.value ?? '';
}

/** The JSON object of an answer, or null when it is not one. */
function parsed(text) {
  try {
    const value = JSON.parse(text);
    return value !== null && typeof value === 'object' ? value : null;
  } catch {
    return null;
  }
}

/** Says that a file is over `limit` bytes. */
function tooBigText(limit) {
  return interpolate(gettext('Too big: files may be at most %(limit)s.'), { limit: formatBytes(limit) }, true);
}

/** Says why an upload failed, from the HTTP status and the server's JSON answer. `maxBytes`: the page's limit, if known. */
export function failureReason(status, answer, { maxBytes = null } = {}) {
  const message = typeof answer?.message === 'string' && answer.message.trim() !== '' ? answer.message.trim() : '';
  if (status === 0) return gettext('Could not reach the server: you may be offline.');
  if (status === 413) {
    // The limit as the answer gives it, else the server's sentence (which names it), else the page's.
    if (Number.isInteger(answer?.limit)) return tooBigText(answer.limit);
    if (message) return message;
    return Number.isInteger(maxBytes) ? tooBigText(maxBytes) : gettext('Too big for the server.');
  }
  if (status === 415) return message || gettext('This type of file is not accepted.');
  if (status === 429) return gettext('Too many uploads: wait a moment, then retry.');
  if (status === 403) return message || gettext('The server refused the upload: reload the page and try again.');
  // A 2xx that is not the JSON answer: a login page after the session ended, or a proxy's page.
  if (status >= 200 && status < 300) return gettext('The server did not take the file: reload the page and try again.');
  return message || interpolate(gettext('The upload failed (HTTP %(status)s).'), { status }, true);
}

/**
 * The entry a `send` frame's message carries for an upload, built from the upload's
 * answer (the same shape as a message frame's `attachments`): what a message shows
 * while the server has not yet sent its own.
 */
export function attachmentOf(answer) {
  const entry = { id: answer.id, name: answer.name, size: answer.size, type: answer.type, url: `${UPLOAD_URL}${answer.id}/` };
  if (Number.isInteger(answer.width) && Number.isInteger(answer.height)) {
    Object.assign(entry, { thumb_url: `${UPLOAD_URL}${answer.id}/thumb/`, width: answer.width, height: answer.height });
  }
  return entry;
}

/**
 * The files of the message being written. Every entry:
 * {key, file, name, size, type, state: 'queued'|'uploading'|'done'|'failed',
 *  progress (0..1), answer (the server's, once done), reason (once failed)}.
 * `createRequest` makes an XMLHttpRequest (a fake one in tests); `onChange` is
 * called after every change of state or progress.
 */
export class UploadQueue {
  constructor({
    createRequest = () => new XMLHttpRequest(),
    token = () => csrfToken(),
    url = UPLOAD_URL,
    maxBytes = null,
    maxFiles = MAX_FILES,
    parallel = PARALLEL_UPLOADS,
    onChange = () => {},
  } = {}) {
    Object.assign(this, { createRequest, token, url, maxBytes, maxFiles, parallel, onChange });
    this.entries = [];
    this.requests = new Map(); // key -> the request of an upload in progress
    this.counter = 0;
  }

  /** The entries, in the order the files were added. */
  get items() {
    return [...this.entries];
  }

  /**
   * Queues `files` (a FileList or an array of File) and starts uploading; refuses
   * those over the size limit or past the count limit. Returns the refusals as
   * sentences (one per reason), for the page to show.
   */
  add(files) {
    const problems = [];
    const tooBig = [];
    let over = 0;
    for (const file of files) {
      if (Number.isInteger(this.maxBytes) && file.size > this.maxBytes) {
        tooBig.push(file.name);
        continue;
      }
      if (this.entries.length >= this.maxFiles) {
        over += 1;
        continue;
      }
      this.counter += 1;
      this.entries.push({
        key: `u${this.counter}`, file, name: file.name, size: file.size, type: file.type,
        state: 'queued', progress: 0, answer: null, reason: null,
      });
    }
    if (tooBig.length > 0) {
      const text = gettext('Too big to send (files may be at most %(limit)s): %(names)s.');
      problems.push(interpolate(text, { limit: formatBytes(this.maxBytes), names: tooBig.join(', ') }, true));
    }
    if (over > 0) {
      // Two counts, two plurals: "At most 10 files per message:" and "2 more not added."
      const max = this.maxFiles;
      const rule = interpolate(ngettext('At most %(max)s file per message:', 'At most %(max)s files per message:', max), { max }, true);
      const outcome = interpolate(ngettext('%(over)s more not added.', '%(over)s more not added.', over), { over }, true);
      problems.push(`${rule} ${outcome}`);
    }
    this.pump();
    this.onChange();
    return problems;
  }

  /** Stops an upload in progress (or a queued one) and takes the file out; also removes a done or failed one. */
  remove(key) {
    const index = this.entries.findIndex((entry) => entry.key === key);
    if (index === -1) return false;
    this.entries.splice(index, 1);
    const request = this.requests.get(key);
    this.requests.delete(key);
    request?.abort();
    this.pump();
    this.onChange();
    return true;
  }

  /** Uploads a failed file again. */
  retry(key) {
    const entry = this.entries.find((candidate) => candidate.key === key);
    if (!entry || entry.state !== 'failed') return false;
    Object.assign(entry, { state: 'queued', progress: 0, reason: null });
    this.pump();
    this.onChange();
    return true;
  }

  /** Forgets every file, stopping uploads in progress (after a send, the tray starts empty). */
  clear() {
    const requests = [...this.requests.values()];
    this.requests.clear();
    this.entries = [];
    for (const request of requests) request.abort();
    this.onChange();
  }

  /** Whether some file is still queued or uploading. */
  busy() {
    return this.entries.some((entry) => entry.state === 'queued' || entry.state === 'uploading');
  }

  /** Whether some file failed and is still in the tray. */
  failed() {
    return this.entries.some((entry) => entry.state === 'failed');
  }

  /** The uploaded files as a message's `attachments` entries (see attachmentOf), in order. */
  attachments() {
    return this.entries.filter((entry) => entry.state === 'done').map((entry) => attachmentOf(entry.answer));
  }

  // Starts queued uploads while fewer than `parallel` are on their way.
  pump() {
    for (const entry of this.entries) {
      if (this.requests.size >= this.parallel) return;
      if (entry.state === 'queued') this.start(entry);
    }
  }

  start(entry) {
    const request = this.createRequest();
    this.requests.set(entry.key, request);
    Object.assign(entry, { state: 'uploading', progress: 0 });
    // Events of a request that was cancelled (or replaced by a retry) change nothing.
    const current = () => this.requests.get(entry.key) === request;
    request.upload.onprogress = (event) => {
      if (!current() || !event.lengthComputable || event.total <= 0) return;
      entry.progress = Math.min(1, Math.max(0, event.loaded / event.total));
      this.onChange();
    };
    request.onload = () => {
      if (!current()) return;
      const answer = parsed(request.responseText);
      if (request.status === 201 && answer && typeof answer.id === 'string') this.finish(entry, { state: 'done', progress: 1, answer });
      else this.finish(entry, { state: 'failed', reason: failureReason(request.status, answer, { maxBytes: this.maxBytes }) });
    };
    request.onerror = () => {
      if (current()) this.finish(entry, { state: 'failed', reason: failureReason(0, null) });
    };
    request.ontimeout = request.onerror;
    request.open('POST', this.url);
    request.setRequestHeader('X-CSRFToken', this.token());
    const form = new FormData();
    form.append('file', entry.file, entry.name);
    request.send(form);
  }

  finish(entry, change) {
    this.requests.delete(entry.key);
    Object.assign(entry, change);
    this.pump();
    this.onChange();
  }
}
