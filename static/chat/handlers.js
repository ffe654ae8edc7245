// handlers.js: what the page does with each server frame, one small function
// per frame type in one table. Handlers change the store (messages go through
// the catch-up module) and call back into the page; none touches the DOM.

import { gettext, interpolate } from './i18n.js';
import { applyPresenceBatch } from './presence.js';
import { errorText, frameKey, parseKey } from './protocol.js';

/**
 * Returns the table of frame handlers (type -> function(frame)). `page` holds the
 * store, the catch-up module and the page's own callbacks: roomsChanged(names),
 * connected(first), notify(text), typingChanged() and now(), and optionally
 * searchAnswered(frame), searchRefused(text) and messageArrived(frame) (a new live message).
 */
export function frameHandlers(page) {
  const { store, catchUp } = page;

  return new Map(Object.entries({
    hello(frame) {
      page.roomsChanged(frame.rooms); // rooms renamed or removed while the socket was down
      const { first } = store.applyHello(frame);
      page.connected(first);
    },

    rooms(frame) {
      page.roomsChanged(frame.rooms);
    },

    presence(frame) {
      store.applyPresence(frame);
    },

    // Several changes of one window at once (the socket asked for batches).
    presence_batch(frame) {
      applyPresenceBatch(store, frame);
    },

    users(frame) {
      store.applyUsers(frame);
    },

    profile(frame) {
      store.applyProfile(frame);
    },

    message(frame) {
      // New to the page: not a change of a held message (nor a copy a sync or an
      // ack brought first), and, as ids reach a page in increasing order, above
      // every id seen. History and sync pages never come through here.
      const fresh = Number.isInteger(frame.id) && frame.id > store.maxId && store.message(frame.id) === null;
      catchUp.receive(frame);
      if (fresh && store.message(frame.id) !== null) page.messageArrived?.(frame);
    },

    ack(frame) {
      const message = store.messageFromAck(frame);
      if (message) catchUp.receive(message);
    },

    history(frame) {
      const key = frameKey(frame);
      if (key === null || !Array.isArray(frame.messages)) return;
      // A late answer about a room forgotten since must not bring it back to the sidebar.
      if (parseKey(key).kind === 'room' && !store.conversations.has(key)) return;
      catchUp.historyAnswered(key, frame);
    },

    sync(frame) {
      catchUp.syncAnswered(frame);
    },

    // Results of a message search; the panel tells the latest search's answer from stale ones.
    search(frame) {
      if (typeof frame.q === 'string' && Array.isArray(frame.messages)) page.searchAnswered?.(frame);
    },

    read(frame) {
      store.applyRead(frame);
    },

    // How much a conversation notifies me, chosen in this tab or another.
    notify(frame) {
      store.setLevel(frameKey(frame), frame.level);
    },

    typing(frame) {
      if (store.applyTyping(frame, page.now())) page.typingChanged();
    },

    error(frame) {
      if (typeof frame.client_id === 'string' && store.pending.has(frame.client_id)) {
        store.failPending(frame.client_id, errorText(frame));
        return;
      }
      // A refused edit or delete: the message shows its stored state again.
      if (Number.isInteger(frame.id) && store.dropChange(frame.id)) {
        page.notify(interpolate(gettext('Your change was not saved: %(reason)s.'), { reason: errorText(frame) }, true));
        return;
      }
      if (frame.code === 'unknown_room' || frame.code === 'unknown_user') catchUp.historyRefused(frame);
      // An error names no request: a search on its way says it may be the one refused.
      page.searchRefused?.(errorText(frame));
      page.notify(errorText(frame));
    },
  }));
}
