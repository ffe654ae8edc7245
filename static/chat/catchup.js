// catchup.js: makes sure the page misses nothing. Files every message (live,
// synced or paged), fetches the gap a jump in `seq` reveals, pages history, and
// after a reconnect syncs from the largest rev (or id) seen until `has_more` ends.

import { GAP_PAGE, HISTORY_PAGE, errorText, historyFrame, messageKey, syncFrame } from './protocol.js';

const HISTORY_TIMEOUT_MS = 20_000;

/** How far the page has fetched one conversation, and the history request in flight. */
class Paging {
  constructor() {
    this.loaded = false; // the newest page has been fetched
    this.oldestSeq = null; // smallest seq fetched by paging backwards: the next `before`
    this.hasOlder = true;
    this.request = null; // the history request in flight: {mode, value, timer}
    this.queue = []; // history requests waiting for that one to be answered
    this.gapsAsked = new Set(); // `after` values already asked, so a gap is fetched once
    this.loadError = null;
  }
}

/** Schedules `sync` and `history` requests and files what they bring into the store. */
export class CatchUp {
  /**
   * `send(frame)` returns whether the frame went out; `changed()` asks for a redraw;
   * `timers` ({set, clear}, setTimeout's by default) time out unanswered history requests.
   */
  constructor(store, send, changed, timers = { set: (fn, ms) => setTimeout(fn, ms), clear: (timer) => clearTimeout(timer) }) {
    this.store = store;
    this.send = send;
    this.changed = changed;
    this.timers = timers;
    this.ready = false; // hello received on the current socket
    this.paging = new Map(); // conversation key -> Paging
  }

  /** How far conversation `key` is fetched: {loaded, hasOlder, oldestSeq, loadingOlder, loadError}. */
  status(key) {
    const paging = this.pagingOf(key);
    return {
      loaded: paging.loaded,
      canLoadOlder: paging.loaded && paging.hasOlder && paging.oldestSeq !== null && paging.oldestSeq > 1,
      loadingOlder: paging.request?.mode === 'before',
      loadError: paging.loadError,
    };
  }

  pagingOf(key) {
    let paging = this.paging.get(key);
    if (!paging) {
      paging = new Paging();
      this.paging.set(key, paging);
    }
    return paging;
  }

  // ---- the socket's life --------------------------------------------------------

  /** After a hello: on a reconnect sync what was missed, then ask what waited for a socket. */
  connected(first) {
    this.ready = true;
    if (!first) this.send(syncFrame(this.store.beginSync()));
    for (const key of this.paging.keys()) this.sendNextHistory(key);
  }

  /** The socket closed: requests in flight are asked again on the next one. */
  disconnected() {
    // Their answers never come, so they go back to the front of their queue. Sync
    // alone would not do: a gap's messages have ids below the one that revealed it.
    this.ready = false;
    for (const paging of this.paging.values()) {
      const request = paging.request;
      if (!request) continue;
      this.timers.clear(request.timer);
      paging.request = null;
      paging.queue.unshift({ mode: request.mode, value: request.value });
    }
  }

  /** Forgets the paging of conversations the store forgot (rooms removed or renamed). */
  forget(keys) {
    for (const key of keys) {
      const request = this.paging.get(key)?.request;
      if (request) this.timers.clear(request.timer);
      this.paging.delete(key);
    }
  }

  // ---- messages -------------------------------------------------------------------

  /** Files one message (`page`: from a history page) and fetches any gap in its conversation's seq it reveals. */
  receive(message, { checkGap = true, page = false } = {}) {
    const key = Number.isInteger(message.id) ? messageKey(message, this.store.me) : null;
    if (key === null) return;
    const before = this.store.conversations.get(key)?.maxSeq ?? 0;
    const paging = this.pagingOf(key);
    const inRange = page || (paging.loaded && (paging.oldestSeq === null || message.seq >= paging.oldestSeq));
    const { added } = this.store.applyMessage(message, { inRange });
    // seq has no gaps, so a jump past the newest loaded one means the live path
    // dropped something. Only for loaded conversations: the others fetch their
    // newest page when opened anyway.
    if (added && checkGap && paging.loaded && message.seq > before + 1) {
      this.requestHistory(key, 'after', before);
    }
  }

  /** Files a `sync` answer and asks for its next page while `has_more` is true. */
  syncAnswered(frame) {
    if (!Array.isArray(frame.messages)) return;
    for (const message of frame.messages) this.receive(message, { checkGap: false });
    const next = this.store.syncAnswered(frame);
    if (next !== null) this.send(syncFrame(next));
  }

  // ---- history ----------------------------------------------------------------------

  /** Fetches the newest page of a conversation the first time it is shown. */
  ensureLoaded(key) {
    if (!this.pagingOf(key).loaded) this.requestHistory(key, 'initial');
  }

  /** Fetches the page before the oldest message loaded of `key`, if there is one. */
  loadOlder(key) {
    const paging = this.paging.get(key);
    if (!paging || !paging.loaded || !paging.hasOlder || paging.oldestSeq === null) return;
    this.requestHistory(key, 'before', paging.oldestSeq);
  }

  // A history answer names its conversation but not whether it answers a
  // `before` or an `after`, so each conversation has at most one request in
  // flight and the rest wait in its queue.
  requestHistory(key, mode, value) {
    const paging = this.pagingOf(key);
    const same = (request) => request && request.mode === mode && request.value === value;
    if (same(paging.request) || paging.queue.some(same)) return;
    if (mode === 'after') {
      // A gap history answered once is not asked again: if a moderator deleted
      // the missing message, asking again would loop forever.
      if (paging.gapsAsked.has(value)) return;
      paging.gapsAsked.add(value);
    }
    paging.queue.push({ mode, value });
    this.sendNextHistory(key);
  }

  sendNextHistory(key) {
    const paging = this.pagingOf(key);
    if (paging.request || paging.queue.length === 0 || !this.ready) return;
    const request = paging.queue.shift();
    const options = { initial: {}, before: { before: request.value }, after: { after: request.value, limit: GAP_PAGE } }[request.mode];
    if (!this.send(historyFrame(key, { limit: HISTORY_PAGE, ...options }))) return;
    paging.loadError = null;
    paging.request = request;
    // If no answer comes (the server refused it with an error we cannot tie
    // to this request), free the slot so the conversation is not stuck.
    request.timer = this.timers.set(() => {
      if (paging.request !== request) return;
      paging.request = null;
      if (!paging.loaded) paging.loadError = 'Could not load messages. Open the conversation again to retry.';
      this.sendNextHistory(key);
      this.changed();
    }, HISTORY_TIMEOUT_MS);
  }

  /** Files a `history` answer for conversation `key` and asks whatever it calls for next. */
  historyAnswered(key, frame) {
    const paging = this.pagingOf(key);
    const request = paging.request;
    paging.request = null;
    if (request) this.timers.clear(request.timer);
    const mode = request ? request.mode : 'unasked';

    const seqs = [];
    for (const message of frame.messages) {
      this.receive(message, { checkGap: false, page: true });
      if (Number.isInteger(message.seq)) seqs.push(message.seq);
    }

    if (mode === 'initial' || mode === 'before') {
      if (mode === 'initial') {
        paging.loaded = true;
        this.fetchHoleAbove(key, seqs.length > 0 ? Math.max(...seqs) : 0);
      }
      if (seqs.length > 0) {
        const lowest = Math.min(...seqs);
        paging.oldestSeq = paging.oldestSeq === null ? lowest : Math.min(paging.oldestSeq, lowest);
      }
      paging.hasOlder = frame.has_more === true && seqs.length > 0;
    } else if (mode === 'after' && frame.has_more === true && seqs.length > 0) {
      this.requestHistory(key, 'after', Math.max(...seqs));
    }
    this.sendNextHistory(key);
  }

  // Live messages that arrived while the first page was on its way are not
  // checked for gaps (the conversation was not loaded yet); check them now.
  fetchHoleAbove(key, newestInPage) {
    const conversation = this.store.conversations.get(key);
    if (!conversation) return;
    for (let seq = newestInPage + 1; seq < conversation.maxSeq; seq += 1) {
      if (!conversation.messages.has(seq)) {
        this.requestHistory(key, 'after', seq - 1);
        return;
      }
    }
  }

  /** Gives up the history requests an `unknown_room` or `unknown_user` error may answer. */
  historyRefused(frame) {
    // Such an error carries no client_id and cannot say which request it
    // answers, so every unanswered one of that kind gives up.
    const kind = frame.code === 'unknown_room' ? 'room' : 'dm';
    for (const [key, paging] of this.paging) {
      if (!key.startsWith(`${kind}:`) || !paging.request) continue;
      this.timers.clear(paging.request.timer);
      paging.request = null;
      paging.queue = [];
      if (!paging.loaded) paging.loadError = errorText(frame);
    }
  }
}
