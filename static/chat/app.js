// app.js: wires the socket, the store and the view together. Turns server
// frames into state changes and what the person does into client frames, and
// makes sure no message is lost across reconnects (sync) or dropped frames (gaps).

import { ChatSocket, CloseCode } from './socket.js';
import { Store } from './store.js';
import { ChatView } from './view.js';
import {
  GAP_PAGE, HISTORY_PAGE, MAX_BODY_CHARS,
  bodyLength, errorText, historyFrame, historyKey, messageKey, newClientId,
  parseKey, sendFrame, syncFrame,
} from './protocol.js';

const LOGIN_URL = '/accounts/login/?next=/';
const HISTORY_TIMEOUT_MS = 20_000;

const root = document.getElementById('chat');
if (root) startChat(root);

/** Starts the chat page inside `root` (the <main id="chat"> element). */
function startChat(root) {
  const store = new Store(root.dataset.username || '');
  let ready = false; // hello received on the current socket
  let renderQueued = null;

  const view = new ChatView(root, {
    open: (key) => openConversation(key),
    loadOlder,
    send: sendMessage,
    retry: retryMessage,
    dismiss: (clientId) => { store.dismissPending(clientId); render(); },
    reconnectNow: () => socket.reconnectNow(),
  });

  const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  const socket = new ChatSocket(`${scheme}//${window.location.host}${root.dataset.wsPath}`, {
    onFrame: handleFrame,
    onState: connectionChanged,
  });

  // ---- rendering -----------------------------------------------------------

  // Frames come in bursts (a sync page, presence storms); draw once per
  // animation frame. A hidden tab gets no animation frames, but its title
  // should still count unread messages, so fall back to a timer there.
  function render({ toBottom = false } = {}) {
    if (renderQueued) {
      renderQueued.toBottom ||= toBottom;
      return;
    }
    renderQueued = { toBottom };
    const draw = () => {
      const options = renderQueued;
      renderQueued = null;
      view.renderSidebar(store);
      view.renderConversation(store, options);
    };
    if (document.hidden) setTimeout(draw, 100);
    else requestAnimationFrame(draw);
  }

  // ---- connection ----------------------------------------------------------

  function connectionChanged(state, { code, retryInMs, opened, failures } = {}) {
    if (state === 'ended') {
      // SESSION_ENDED (4001): the session is over (logout, expiry). Reconnecting would be refused.
      document.body.dataset.socketState = 'closed';
      view.setConnection('closed', 'Your session has ended. Taking you to the login page…');
      window.location.assign(LOGIN_URL);
      return;
    }
    if (state === 'open') return; // "open" for the page means hello arrived, see hello()

    ready = false;
    document.body.dataset.socketState = state;
    requeueHistoryRequests();
    if (state === 'connecting') {
      view.setConnection('connecting', store.helloSeen ? 'Reconnecting…' : 'Connecting…');
      return;
    }
    const seconds = Math.max(1, Math.round(retryInMs / 1000));
    if (code === CloseCode.TOO_MANY_SOCKETS) {
      view.setConnection('closed', `Too many open tabs or windows for this account. Close some; trying again in about ${seconds} s.`, { canRetry: true });
    } else {
      if (code === CloseCode.FRAME_TOO_BIG) view.notify('A frame was too big for the server, so the connection was closed.');
      view.setConnection('closed', 'Connection lost. Reconnecting…', { canRetry: true });
    }
    if (!opened && failures % 3 === 0) checkSession();
  }

  // A session that expired while the socket was down is refused at the
  // handshake (HTTP 403), which the browser reports only as a failed
  // connection, never as 4001. So after a few failed handshakes ask the
  // server: if the chat page itself redirects, the session is gone.
  async function checkSession() {
    let response;
    try {
      response = await fetch(window.location.pathname, { redirect: 'manual', cache: 'no-store', credentials: 'same-origin' });
    } catch {
      return; // server unreachable: keep retrying the socket
    }
    if (response.type === 'opaqueredirect') {
      view.setConnection('closed', 'Your session has ended. Taking you to the login page…');
      window.location.assign(LOGIN_URL);
    }
  }

  function handleFrame(frame) {
    const handler = FRAME_HANDLERS.get(frame.type);
    if (!handler) return; // unknown types are additions we do not use yet
    handler(frame);
    render();
  }

  const FRAME_HANDLERS = new Map(Object.entries({
    hello(frame) {
      const first = !store.helloSeen;
      if (typeof frame.user === 'string') store.me = frame.user;
      // On page load start from the newest id without fetching everything;
      // after a reconnect catch up on what this page missed meanwhile.
      if (first) store.maxId = Number.isInteger(frame.last_id) ? frame.last_id : 0;
      store.helloSeen = true;
      roomsChanged(frame.rooms); // rooms renamed or removed while the socket was down
      store.setOnline(frame.online);
      store.setDirect(frame.direct); // an extension: absent from servers without it
      ready = true;
      if (!first) {
        // Pin the cursor now: live messages may raise maxId before the answer.
        store.syncCursor = store.syncAfter();
        socket.send(syncFrame(store.syncCursor));
      }

      if (store.active === null) openConversation(initialConversation(), { focus: false });
      else ensureLoaded(store.conversation(store.active));
      for (const conversation of store.conversations.values()) sendNextHistory(conversation);
      sendPending();
      document.body.dataset.socketState = 'open';
      view.setConnection('open', '');
    },

    rooms(frame) {
      roomsChanged(frame.rooms);
    },

    presence(frame) {
      store.setPresence(frame.user, frame.online === true);
    },

    users(frame) {
      store.setOnline(frame.online);
    },

    message(frame) {
      receive(frame, { countUnread: true });
    },

    ack(frame) {
      const message = store.messageFromAck(frame);
      if (message) receive(message, { countUnread: false });
    },

    history(frame) {
      const key = historyKey(frame);
      if (key === null || !Array.isArray(frame.messages)) return;
      // A late answer about a room forgotten since must not bring it back to the sidebar.
      if (parseKey(key).kind === 'room' && !store.conversations.has(key)) return;
      historyAnswered(store.conversation(key), frame);
    },

    sync(frame) {
      if (!Array.isArray(frame.messages)) return;
      for (const message of frame.messages) receive(message, { countUnread: true, checkGap: false });
      // Page on from the answer's last_id, not from maxId: live messages that
      // arrived meanwhile may have raised maxId past messages still to sync.
      const from = store.syncAfter();
      const lastId = Number.isInteger(frame.last_id) ? frame.last_id : from;
      if (frame.has_more && lastId > from) {
        store.syncCursor = lastId;
        socket.send(syncFrame(lastId));
      } else {
        store.syncCursor = null;
        if (lastId > store.maxId) store.maxId = lastId;
      }
    },

    error(frame) {
      if (typeof frame.client_id === 'string' && store.pending.has(frame.client_id)) {
        store.failPending(frame.client_id, errorText(frame));
        return;
      }
      if (frame.code === 'unknown_room' || frame.code === 'unknown_user') historyRefused(frame);
      view.notify(errorText(frame));
    },
  }));

  // ---- rooms -----------------------------------------------------------------

  /** Takes the server's room list; if the open room is gone, says where the page went. */
  function roomsChanged(names) {
    for (const conversation of store.setRooms(names)) {
      if (conversation.request) clearTimeout(conversation.request.timer);
    }
    const gone = store.takeRoomGone();
    if (!gone) return;
    openConversation(gone.to, { focus: false });
    const { kind, name } = parseKey(gone.to);
    const where = kind === 'room' ? `#${name}` : 'your notes to self';
    view.notify(`The room #${gone.room} was removed or renamed; you are now in ${where}.`, { polite: true });
  }

  // ---- messages --------------------------------------------------------------

  /** Files one message and fetches any gap in its conversation's seq it reveals. */
  function receive(message, { countUnread, checkGap = true }) {
    const key = typeof message.id === 'number' ? messageKey(message, store.me) : null;
    if (key === null) return;
    const conversation = store.conversation(key);
    const before = conversation.maxSeq;
    const { added } = store.addMessage(message, { countUnread });
    // seq has no gaps, so a jump past the newest loaded one means the live path
    // dropped something. Only for loaded conversations: the others fetch their
    // newest page when opened anyway.
    if (added && checkGap && conversation.loaded && message.seq > before + 1) {
      requestHistory(conversation, 'after', before);
    }
  }

  function sendMessage(text) {
    const body = text.trim();
    if (body === '' || store.active === null) return false;
    const length = bodyLength(body);
    if (length > MAX_BODY_CHARS) {
      view.setComposerError(`Message is longer than ${MAX_BODY_CHARS} characters (it has ${length}); shorten it to send.`);
      return false;
    }
    store.addPending(store.active, body, newClientId());
    sendPending();
    render({ toBottom: true });
    return true;
  }

  function retryMessage(clientId) {
    if (store.retryPending(clientId)) sendPending();
    render();
  }

  // Sends every pending message not yet sent on this socket. After a reconnect
  // that resends with the same client_id: if the first try was stored, the
  // server answers with its ack instead of storing a second copy.
  function sendPending() {
    if (!ready) return;
    for (const pending of store.pending.values()) {
      if (pending.state !== 'pending' || pending.sentOn === socket.generation) continue;
      if (socket.send(sendFrame(pending.key, pending.body, pending.clientId))) pending.sentOn = socket.generation;
    }
  }

  // ---- conversations and history ---------------------------------------------

  function openConversation(key, { focus = true } = {}) {
    const conversation = store.open(key);
    ensureLoaded(conversation);
    window.history.replaceState(null, '', `#${encodeURIComponent(key)}`);
    view.setComposerError('');
    render({ toBottom: true });
    if (focus) view.focusComposer();
  }

  /** The conversation to show first: the one named in the address, else general (see fallbackKey). */
  function initialConversation() {
    const wanted = decodeURIComponent(window.location.hash.slice(1));
    const { kind, name } = parseKey(wanted);
    if (kind === 'room' && store.rooms.includes(name)) return wanted;
    if (kind === 'dm' && name !== '') return wanted;
    return store.fallbackKey();
  }

  /** Fetches the newest page of a conversation the first time it is shown. */
  function ensureLoaded(conversation) {
    if (!conversation.loaded) requestHistory(conversation, 'initial');
  }

  function loadOlder() {
    const conversation = store.active && store.conversations.get(store.active);
    if (!conversation || !conversation.loaded || !conversation.hasOlder || conversation.oldestSeq === null) return;
    requestHistory(conversation, 'before', conversation.oldestSeq);
    render();
  }

  // A history answer names its conversation but not whether it answers a
  // `before` or an `after`, so each conversation has at most one request in
  // flight and the rest wait in its queue.
  function requestHistory(conversation, mode, value) {
    const same = (request) => request && request.mode === mode && request.value === value;
    if (same(conversation.request) || conversation.queue.some(same)) return;
    if (mode === 'after') {
      // A gap history answered once is not asked again: if a moderator deleted
      // the missing message, asking again would loop forever.
      if (conversation.gapsAsked.has(value)) return;
      conversation.gapsAsked.add(value);
    }
    conversation.queue.push({ mode, value });
    sendNextHistory(conversation);
  }

  function sendNextHistory(conversation) {
    if (conversation.request || conversation.queue.length === 0 || !ready) return;
    const request = conversation.queue.shift();
    const options = { initial: {}, before: { before: request.value }, after: { after: request.value, limit: GAP_PAGE } }[request.mode];
    if (!socket.send(historyFrame(conversation.key, { limit: HISTORY_PAGE, ...options }))) return;
    conversation.loadError = null;
    conversation.request = request;
    // If no answer comes (the server refused it with an error we cannot tie
    // to this request), free the slot so the conversation is not stuck.
    request.timer = setTimeout(() => {
      if (conversation.request !== request) return;
      conversation.request = null;
      if (!conversation.loaded) conversation.loadError = 'Could not load messages. Open the conversation again to retry.';
      sendNextHistory(conversation);
      render();
    }, HISTORY_TIMEOUT_MS);
  }

  function historyAnswered(conversation, frame) {
    const request = conversation.request;
    conversation.request = null;
    if (request) clearTimeout(request.timer);
    const mode = request ? request.mode : 'unasked';

    // Messages filling a gap are new to the reader; pages of the past are not.
    const seqs = [];
    for (const message of frame.messages) {
      receive(message, { countUnread: mode === 'after', checkGap: false });
      if (Number.isInteger(message.seq)) seqs.push(message.seq);
    }

    if (mode === 'initial' || mode === 'before') {
      if (mode === 'initial') {
        conversation.loaded = true;
        fetchHoleAbove(conversation, seqs.length > 0 ? Math.max(...seqs) : 0);
      }
      if (seqs.length > 0) {
        const lowest = Math.min(...seqs);
        conversation.oldestSeq = conversation.oldestSeq === null ? lowest : Math.min(conversation.oldestSeq, lowest);
      }
      conversation.hasOlder = frame.has_more === true && seqs.length > 0;
    } else if (mode === 'after' && frame.has_more === true && seqs.length > 0) {
      requestHistory(conversation, 'after', Math.max(...seqs));
    }
    sendNextHistory(conversation);
  }

  // Live messages that arrived while the first page was on its way are not
  // checked for gaps (the conversation was not loaded yet); check them now.
  function fetchHoleAbove(conversation, newestInPage) {
    for (let seq = newestInPage + 1; seq < conversation.maxSeq; seq += 1) {
      if (!conversation.messages.has(seq)) {
        requestHistory(conversation, 'after', seq - 1);
        return;
      }
    }
  }

  // unknown_room / unknown_user without a client_id answers a history request;
  // it cannot say which, so every unanswered one of that kind gives up.
  function historyRefused(frame) {
    const kind = frame.code === 'unknown_room' ? 'room' : 'dm';
    for (const conversation of store.conversations.values()) {
      if (conversation.kind !== kind || !conversation.request) continue;
      clearTimeout(conversation.request.timer);
      conversation.request = null;
      conversation.queue = [];
      if (!conversation.loaded) conversation.loadError = errorText(frame);
    }
  }

  // Answers to requests sent on a closed socket never come, so they go back to
  // the front of their queue and are asked again after the next hello. Sync
  // alone would not do: a gap's messages have ids below the one that revealed it.
  function requeueHistoryRequests() {
    for (const conversation of store.conversations.values()) {
      const request = conversation.request;
      if (!request) continue;
      clearTimeout(request.timer);
      conversation.request = null;
      conversation.queue.unshift({ mode: request.mode, value: request.value });
    }
  }

  window.addEventListener('hashchange', () => {
    const key = decodeURIComponent(window.location.hash.slice(1));
    const { kind, name } = parseKey(key);
    // Only rooms the server lists: an old link must not open a room that is gone.
    const known = kind === 'dm' || (kind === 'room' && store.rooms.includes(name));
    if (known && name !== '' && key !== store.active) openConversation(key);
  });

  socket.start();
}
