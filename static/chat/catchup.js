// catchup.js: makes sure the page misses nothing. Files every message (live,
// synced or paged), fetches the gap a jump in `seq` reveals, pages history, and
// after a reconnect syncs from the largest rev (or id) seen until `has_more` ends.
// A jump to an old message shows a window of history around it, apart from the
// newest messages, until it grows into them or the reader goes to the latest.

import { gettext } from './i18n.js';
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
    // A jump to a message not loaded shows the page around it: {fromSeq, toSeq,
    // hasOlder, hasNewer}, shown instead of the newest messages while a hole
    // separates the two. Live messages are still filed, only not shown.
    this.window = null;
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

  /**
   * How far conversation `key` is fetched: {loaded, canLoadOlder, loadingOlder,
   * canLoadNewer, loadingNewer, loadError, window}; `window` ({fromSeq, toSeq}, or
   * null for everything held) is the range of seqs to show.
   */
  status(key) {
    const paging = this.pagingOf(key);
    const span = paging.window;
    const canLoadOlder = span
      ? span.hasOlder && span.fromSeq > 1
      : paging.loaded && paging.hasOlder && paging.oldestSeq !== null && paging.oldestSeq > 1;
    return {
      loaded: paging.loaded || span !== null,
      canLoadOlder,
      loadingOlder: paging.request?.mode === 'before',
      canLoadNewer: span !== null && span.hasNewer,
      loadingNewer: paging.request?.mode === 'newer',
      loadError: paging.loadError,
      window: span && { fromSeq: span.fromSeq, toSeq: span.toSeq },
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

  /** Fetches the page before the oldest message shown of `key`, if there is one. */
  loadOlder(key) {
    const paging = this.paging.get(key);
    if (paging?.window) {
      if (paging.window.hasOlder) this.requestHistory(key, 'before', paging.window.fromSeq);
      return;
    }
    if (!paging || !paging.loaded || !paging.hasOlder || paging.oldestSeq === null) return;
    this.requestHistory(key, 'before', paging.oldestSeq);
  }

  /** Fetches the page after the newest message of the window shown of `key`, if it has one. */
  loadNewer(key) {
    const span = this.paging.get(key)?.window;
    if (span && span.hasNewer) this.requestHistory(key, 'newer', span.toSeq);
  }

  /**
   * Makes the message at `seq` of `key` shown: returns true when it is held and
   * shown now, else asks for the page around it (shown as a window when it
   * arrives) and returns false.
   */
  jumpTo(key, seq) {
    const paging = this.pagingOf(key);
    const held = this.store.conversations.get(key)?.messages.has(seq) === true;
    const span = paging.window;
    if (held && !span) return true;
    if (held && seq >= span.fromSeq && seq <= span.toSeq) return true;
    if (held && this.inNewest(paging, seq)) {
      this.showLatest(key);
      return true;
    }
    this.requestHistory(key, 'around', seq);
    return false;
  }

  /** Leaves the window around an old message of `key` (if one is shown) for the newest messages. */
  showLatest(key) {
    this.leaveWindow(key);
    this.ensureLoaded(key);
  }

  // Whether `seq` lies in the newest messages loaded (from the newest page down).
  inNewest(paging, seq) {
    return paging.loaded && seq >= (paging.oldestSeq ?? 1);
  }

  // Forgets the window and the messages held only for it (keeping those within
  // `keep`, a window that replaces it): what stays is contiguous again, so a
  // conversation without a window shows everything it holds.
  leaveWindow(key, keep = null) {
    const paging = this.pagingOf(key);
    const span = paging.window;
    if (!span) return;
    paging.window = null;
    const newestFrom = paging.loaded ? (paging.oldestSeq ?? 1) : span.toSeq + 1;
    const kept = (seq) => keep !== null && seq >= keep.fromSeq && seq <= keep.toSeq;
    this.store.forgetMessages(key, (message) => message.seq < newestFrom && !kept(message.seq));
  }

  // A window that reaches the newest messages loaded (or the newest of all)
  // joins them: the conversation is one contiguous run again.
  joinWindow(key) {
    const paging = this.pagingOf(key);
    const span = paging.window;
    if (!span) return;
    const touches = paging.loaded && span.toSeq + 1 >= (paging.oldestSeq ?? 1);
    if (!touches && span.hasNewer) return;
    paging.window = null;
    if (!paging.loaded) {
      // It reached the newest message: it is the newest page now.
      paging.loaded = true;
      paging.oldestSeq = span.fromSeq;
      paging.hasOlder = span.hasOlder;
      this.fetchHoleAbove(key, span.toSeq);
    } else if (paging.oldestSeq === null || span.fromSeq < paging.oldestSeq) {
      paging.oldestSeq = span.fromSeq;
      paging.hasOlder = span.hasOlder;
    }
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
    const options = {
      initial: {},
      before: { before: request.value },
      after: { after: request.value, limit: GAP_PAGE },
      newer: { after: request.value },
      around: { around: request.value },
    }[request.mode];
    if (!this.send(historyFrame(key, { limit: HISTORY_PAGE, ...options }))) return;
    paging.loadError = null;
    paging.request = request;
    // If no answer comes (the server refused it with an error we cannot tie
    // to this request), free the slot so the conversation is not stuck.
    request.timer = this.timers.set(() => {
      if (paging.request !== request) return;
      paging.request = null;
      if (!paging.loaded) paging.loadError = gettext('Could not load messages. Open the conversation again to retry.');
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

    const span = paging.window;
    if (mode === 'around') {
      this.aroundAnswered(key, frame, seqs);
    } else if (mode === 'before' && span && request.value === span.fromSeq) {
      // An older page of the window, not of the newest messages.
      if (seqs.length > 0) span.fromSeq = Math.min(span.fromSeq, ...seqs);
      span.hasOlder = frame.has_more === true && seqs.length > 0;
    } else if (mode === 'newer') {
      if (span && request.value === span.toSeq) {
        if (seqs.length > 0) span.toSeq = Math.max(span.toSeq, ...seqs);
        span.hasNewer = frame.has_more === true && seqs.length > 0;
      }
    } else if (mode === 'initial' || (mode === 'before' && request.value === paging.oldestSeq)) {
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
    this.joinWindow(key);
    this.dropStale(key);
    this.sendNextHistory(key);
  }

  // A page that answers a window since left (or replaced), or that came after its
  // request gave up, lies below the newest messages loaded with a hole between:
  // without a window everything held is shown, so it goes.
  dropStale(key) {
    const paging = this.pagingOf(key);
    if (paging.window || !paging.loaded || paging.oldestSeq === null) return;
    const oldest = paging.oldestSeq;
    this.store.forgetMessages(key, (message) => message.seq < oldest);
  }

  // The page around a message becomes the window shown, replacing any earlier one.
  aroundAnswered(key, frame, seqs) {
    if (seqs.length === 0) return; // nothing there any more: the view stays as it was
    const paging = this.pagingOf(key);
    const span = {
      fromSeq: Math.min(...seqs),
      toSeq: Math.max(...seqs),
      hasOlder: (frame.has_older ?? frame.has_more) === true,
      hasNewer: frame.has_newer === true,
    };
    this.leaveWindow(key, span);
    paging.window = span;
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
