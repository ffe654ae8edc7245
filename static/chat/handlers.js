// handlers.js: what the page does with each server frame, one small function
// per frame type in one table. Handlers change the store (messages go through
// the catch-up module) and call back into the page; none touches the DOM.

import { errorText, frameKey, parseKey } from './protocol.js';

/**
 * Returns the table of frame handlers (type -> function(frame)). `page` holds the
 * store, the catch-up module and the page's own callbacks: roomsChanged(names),
 * connected(first), notify(text), typingChanged() and now().
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
      store.setPresence(frame.user, frame.online === true);
    },

    users(frame) {
      store.setOnline(frame.online);
    },

    message(frame) {
      catchUp.receive(frame);
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

    read(frame) {
      store.applyRead(frame);
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
        page.notify(`Your change was not saved: ${errorText(frame)}.`);
        return;
      }
      if (frame.code === 'unknown_room' || frame.code === 'unknown_user') catchUp.historyRefused(frame);
      page.notify(errorText(frame));
    },
  }));
}
