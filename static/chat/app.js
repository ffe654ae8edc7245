// app.js: wires the socket, the store, the catch-up module, the frame handlers
// and the view together, and turns what the person does (send, edit, delete,
// react, type, read) into client frames.

import { CatchUp } from './catchup.js';
import { frameHandlers } from './handlers.js';
import {
  bodyProblem, deleteFrame, dmKey, editFrame, newClientId, parseKey, reactFrame, readFrame, sendFrame, typingFrame,
} from './protocol.js';
import { ReadMarker } from './reading.js';
import { ChatSocket, CloseCode } from './socket.js';
import { Store } from './store.js';
import { TypingNotifier } from './typing.js';
import { ChatView } from './view.js';

const LOGIN_URL = '/accounts/login/?next=/';
const NOT_CONNECTED = 'Not connected: try again once the connection is back.';

const root = document.getElementById('chat');
if (root) startChat(root);

/** Starts the chat page inside `root` (the <main id="chat"> element). */
function startChat(root) {
  const store = new Store(root.dataset.username || '');
  let renderQueued = null;
  let typingTimer = null;

  const view = new ChatView(root, {
    open: (key) => openConversation(key),
    loadOlder,
    send: sendMessage,
    retry: retryMessage,
    dismiss: (clientId) => { store.dismissPending(clientId); render(); },
    reconnectNow: () => socket.reconnectNow(),
    edit: editMessage,
    remove: deleteMessage,
    react: reactTo,
    lastEditable: () => (store.active === null ? null : store.lastOwnMessage(store.active)?.id ?? null),
    typing: () => {
      // Notes to self have nobody to tell.
      if (store.active !== null && store.active !== dmKey(store.me)) typingNotifier.typed(store.active);
    },
    newestShown: (key, seq) => { readMarker.newestShown(key, seq); render(); },
  });

  const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  const socket = new ChatSocket(`${scheme}//${window.location.host}${root.dataset.wsPath}`, {
    onFrame: handleFrame,
    onState: connectionChanged,
  });
  const catchUp = new CatchUp(store, (frame) => socket.send(frame), () => render());
  // `read` and `typing` go only to a server that knows them; a position read
  // here still clears this page's badge.
  const readMarker = new ReadMarker({
    store,
    send: (key, seq) => !store.hasRevisions || socket.send(readFrame(key, seq)),
    isTabVisible: () => document.visibilityState === 'visible',
  });
  const typingNotifier = new TypingNotifier((key) => store.hasRevisions && socket.send(typingFrame(key)));
  const handlers = frameHandlers({
    store,
    catchUp,
    roomsChanged,
    connected,
    notify: (text) => view.notify(text),
    typingChanged: showTyping,
    now: () => Date.now(),
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
      // What arrives while the reader looks elsewhere gets a "new messages" line above it.
      if (store.active !== null && !readMarker.reading()) store.holdDivider(store.active);
      view.renderSidebar(store);
      const paging = store.active === null ? null : catchUp.status(store.active);
      view.renderConversation(store, paging, { now: Date.now(), toBottom: options.toBottom });
    };
    if (document.hidden) setTimeout(draw, 100);
    else requestAnimationFrame(draw);
  }

  // Someone shows as typing for a few seconds after their last `typing` frame:
  // draw again when the next of them runs out.
  function showTyping() {
    clearTimeout(typingTimer);
    const endsAt = store.active === null ? null : store.typingEndsAt(store.active, Date.now());
    if (endsAt === null) return;
    typingTimer = setTimeout(() => {
      render();
      showTyping();
    }, endsAt - Date.now() + 50);
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
    if (state === 'open') return; // "open" for the page means hello arrived, see connected()

    document.body.dataset.socketState = state;
    catchUp.disconnected();
    store.dropChanges(); // their answers went with the socket; the sync after the next hello shows what was saved
    if (store.helloSeen) render();
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
    const handler = handlers.get(frame.type);
    if (!handler) return; // unknown types are additions we do not use yet
    handler(frame);
    render();
  }

  /** After a hello: catch up, open a conversation, send what waited for a socket. */
  function connected(first) {
    catchUp.connected(first);
    if (store.active === null) openConversation(initialConversation(), { focus: false });
    else catchUp.ensureLoaded(store.active);
    sendPending();
    readMarker.flush();
    document.body.dataset.socketState = 'open';
    view.setConnection('open', '');
  }

  /** Takes the server's room list; if the open room is gone, says where the page went. */
  function roomsChanged(names) {
    catchUp.forget(store.setRooms(names).map((conversation) => conversation.key));
    const gone = store.takeRoomGone();
    if (!gone) return;
    openConversation(gone.to, { focus: false });
    const { kind, name } = parseKey(gone.to);
    const where = kind === 'room' ? `#${name}` : 'your notes to self';
    view.notify(`The room #${gone.room} was removed or renamed; you are now in ${where}.`, { polite: true });
  }

  // ---- what the person does --------------------------------------------------

  function sendMessage(text) {
    const body = text.trim();
    if (body === '' || store.active === null) return false;
    const problem = bodyProblem(body);
    if (problem) {
      view.setComposerError(problem);
      return false;
    }
    store.addPending(store.active, body, newClientId());
    typingNotifier.sent(store.active);
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
    if (!catchUp.ready) return;
    for (const pending of store.unsent(socket.generation)) {
      if (socket.send(sendFrame(pending.key, pending.body, pending.clientId))) store.markSent(pending.clientId, socket.generation);
    }
  }

  /** Saves a new body for my message `id`; returns '' when sent (or nothing changed), else why not. */
  function editMessage(id, text) {
    const message = store.message(id);
    if (!message || !store.canEdit(message)) return 'This message can no longer be edited.';
    const body = text.trim();
    if (body === message.body) return '';
    const problem = bodyProblem(body);
    if (problem) return body === '' ? 'Message is empty; to remove it, use Delete.' : problem;
    if (!catchUp.ready || !socket.send(editFrame(id, body))) return NOT_CONNECTED;
    store.beginChange(id, { body });
    render();
    return '';
  }

  function deleteMessage(id) {
    const message = store.message(id);
    if (!message || !store.canDelete(message)) return;
    if (!catchUp.ready || !socket.send(deleteFrame(id))) {
      view.notify(`The message was not deleted. ${NOT_CONNECTED}`);
      return;
    }
    store.beginChange(id, { deleting: true });
    render();
  }

  function reactTo(id, emoji, on) {
    const message = store.message(id);
    if (!message || !store.canReact(message)) return;
    if (!catchUp.ready || !socket.send(reactFrame(id, emoji, on))) view.notify(`The reaction was not sent. ${NOT_CONNECTED}`);
  }

  // ---- conversations -----------------------------------------------------------

  function openConversation(key, { focus = true } = {}) {
    store.open(key);
    catchUp.ensureLoaded(key);
    window.history.replaceState(null, '', `#${encodeURIComponent(key)}`);
    view.setComposerError('');
    render({ toBottom: true });
    showTyping();
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

  function loadOlder() {
    if (store.active !== null) catchUp.loadOlder(store.active);
    render();
  }

  window.addEventListener('hashchange', () => {
    const key = decodeURIComponent(window.location.hash.slice(1));
    const { kind, name } = parseKey(key);
    // Only rooms the server lists: an old link must not open a room that is gone.
    const known = kind === 'dm' || (kind === 'room' && store.rooms.includes(name));
    if (known && name !== '' && key !== store.active) openConversation(key);
  });

  // Coming back to the tab counts as reading what is on screen.
  document.addEventListener('visibilitychange', () => {
    readMarker.check();
    render();
  });
  // What was read in the last second must not be unread again after a reload.
  window.addEventListener('pagehide', () => readMarker.flush({ leaving: true }));

  socket.start();
}
