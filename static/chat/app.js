// app.js: wires the socket, the store, the catch-up module, the frame handlers
// and the view together, and turns what the person does (send, edit, delete,
// react, type, read) into client frames.

import { Announcer, noticeOf } from './announce.js';
import { CatchUp } from './catchup.js';
import { ComposerFiles, carriesFiles, filesOf } from './composer-files.js';
import { frameHandlers } from './handlers.js';
import { gettext, interpolate, locale, ngettext } from './i18n.js';
import { ImageViewer } from './image-viewer.js';
import { peopleToMention } from './mentions.js';
import { StaffMenu, moderationNotice, mutedText } from './moderation.js';
import { Notices, isLevel } from './notices.js';
import { sidebarOrder, stepConversation } from './keyboard.js';
import { IdleReporter, idleFrame, profileFrame, watchPresence, withPresenceBatches } from './presence.js';
import {
  bodyProblem, deleteFrame, dmKey, editFrame, messageKey, newClientId, notifyFrame, parseKey, reactFrame, readFrame, sendFrame, typingFrame,
} from './protocol.js';
import { ReadMarker } from './reading.js';
import { SearchPanel } from './search-panel.js';
import { ChatSocket, CloseCode } from './socket.js';
import { Store } from './store.js';
import { TypingNotifier } from './typing.js';
import { UploadQueue } from './uploads.js';
import { ChatView } from './view.js';

const LOGIN_URL = '/accounts/login/?next=/';

/** Keeps `value` under `item` in localStorage; storage may be off or full, which only costs the memory. */
function remember(item, value) {
  try {
    window.localStorage.setItem(item, value);
  } catch {
    // Nothing to do: the page works without it.
  }
}

/** The value kept under `item` in localStorage, or null. */
function recall(item) {
  try {
    return window.localStorage.getItem(item);
  } catch {
    return null;
  }
}
/** Why a change did not go out: the socket is down. */
const notConnected = () => gettext('Not connected: try again once the connection is back.');

const root = document.getElementById('chat');
if (root) startChat(root);

/** Starts the chat page inside `root` (the <main id="chat"> element). */
function startChat(root) {
  const store = new Store(root.dataset.username || '');
  let renderQueued = null;
  let profilesPending = 0; // `profile` frames sent on this socket and not yet answered
  let typingTimer = null;
  let jumpTarget = null; // {key, id}: a search result to show once its row is drawn

  const view = new ChatView(root, {
    open: (key) => openConversation(key),
    loadOlder,
    loadNewer,
    showLatest,
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
    mentionCandidates: () => peopleToMention(store.conversations.get(store.active) ?? null, store.online, store.me),
    step: (direction) => {
      const key = stepConversation(sidebarOrder(store), store.active, direction);
      if (key !== null) openConversation(key);
    },
  });
  // The files of the message being written: uploaded at once, sent with it as attachments.
  const composerForm = document.getElementById('composer-form');
  const maxUploadBytes = Number.parseInt(composerForm.dataset.maxUploadBytes, 10);
  const uploads = new UploadQueue({
    maxBytes: Number.isInteger(maxUploadBytes) && maxUploadBytes > 0 ? maxUploadBytes : null,
    onChange: () => filesChanged(),
  });
  const composerFiles = new ComposerFiles(document.getElementById('composer-files'), uploads, {
    removed: () => view.focusComposer(),
    announce: (text) => view.announce(text),
  });
  // New messages are read out through a polite live region, a busy room summed up.
  const announcer = new Announcer((text) => view.announce(text));

  const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  const url = withPresenceBatches(`${scheme}//${window.location.host}${root.dataset.wsPath}`);
  const socket = new ChatSocket(url, {
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
  // Idle (no input for 5 minutes, or the tab hidden) and back, told only to a server that knows `away`.
  const idleReporter = new IdleReporter({
    send: (idle) => store.knowsAway && socket.send(idleFrame(idle)),
    isHidden: () => document.visibilityState === 'hidden',
  });
  // Staff only: mute or deactivate a person from the online list or one of their messages.
  const staffMenu = new StaffMenu({ onlineList: document.getElementById('online'), messageList: document.getElementById('messages') }, {
    send: (frame) => socket.send(frame),
    isStaff: () => store.staff,
    me: () => store.me,
    room: () => (store.active !== null && parseKey(store.active).kind === 'room' ? parseKey(store.active).name : null),
    senderOf: (id) => store.message(id),
  });
  // A thumbnail in the message list opens its image in the viewer.
  new ImageViewer().watch(document.getElementById('messages'));
  const searchPanel = new SearchPanel({
    send: (frame) => catchUp.ready && socket.send(frame),
    jump: jumpTo,
    activeKey: () => store.active,
    me: () => store.me,
  });
  // The page's icon as served: what the favicon goes back to once nothing is unread.
  const icon = document.querySelector('link[rel~="icon"]');
  const iconHref = icon?.getAttribute('href') ?? null;
  const notices = new Notices({
    Notification: window.Notification,
    away: () => document.visibilityState !== 'visible' || !document.hasFocus(),
    focusWindow: () => window.focus(),
    open: (key) => openConversation(key),
    setFavicon: (href) => { if (icon) icon.href = href ?? iconHref; },
    icon: iconHref,
    permissionButton: document.getElementById('notify-permission'),
    blockedLine: document.getElementById('notify-blocked'),
    levelControl: document.getElementById('notify-level-control'),
    levelSelect: document.getElementById('notify-level'),
    chooseLevel,
  });
  const handlers = frameHandlers({
    store,
    catchUp,
    roomsChanged,
    connected,
    searchAnswered: (frame) => searchPanel.answered(frame),
    searchRefused: (text) => searchPanel.refused(text),
    messageArrived: (frame) => notices.messageArrived(frame, { me: store.me, level: store.levelOf(messageKey(frame, store.me)) }),
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
      notices.showUnread(store.totalUnread());
      notices.showLevel(store.active !== null && store.hasLevels ? store.levelOf(store.active) : null);
      const paging = store.active === null ? null : catchUp.status(store.active);
      view.renderConversation(store, paging, { now: Date.now(), toBottom: options.toBottom });
      staffMenu.decorate();
      showSendState();
      // A search result waits for its row (its page may still be on the way).
      if (jumpTarget !== null && (jumpTarget.key !== store.active || view.revealMessage(jumpTarget.id))) jumpTarget = null;
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
      view.setConnection('closed', gettext('Your session has ended. Taking you to the login page…'));
      window.location.assign(LOGIN_URL);
      return;
    }
    if (state === 'open') return; // "open" for the page means hello arrived, see connected()

    document.body.dataset.socketState = state;
    catchUp.disconnected();
    store.dropChanges(); // their answers went with the socket; the sync after the next hello shows what was saved
    if (store.helloSeen) render();
    if (state === 'connecting') {
      view.setConnection('connecting', store.helloSeen ? gettext('Reconnecting…') : gettext('Connecting…'));
      return;
    }
    const seconds = Math.max(1, Math.round(retryInMs / 1000));
    if (code === CloseCode.TOO_MANY_SOCKETS) {
      const text = ngettext(
        'Too many open tabs or windows for this account. Close some; trying again in about %(seconds)s s.',
        'Too many open tabs or windows for this account. Close some; trying again in about %(seconds)s s.',
        seconds,
      );
      view.setConnection('closed', interpolate(text, { seconds }, true), { canRetry: true });
    } else {
      if (code === CloseCode.FRAME_TOO_BIG) view.notify(gettext('A frame was too big for the server, so the connection was closed.'));
      view.setConnection('closed', gettext('Connection lost. Reconnecting…'), { canRetry: true });
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
      view.setConnection('closed', gettext('Your session has ended. Taking you to the login page…'));
      window.location.assign(LOGIN_URL);
    }
  }

  function handleFrame(frame) {
    // Staff: what a `mute` or `deactivate` of mine did.
    if (frame.type === 'mute' || frame.type === 'deactivate') {
      view.notify(moderationNotice(frame, locale()), { polite: true });
      return;
    }
    // A muted person is told until when, in their own clock.
    if (frame.type === 'error' && frame.code === 'muted') frame = { ...frame, detail: mutedText(frame, locale()) };
    const handler = handlers.get(frame.type);
    if (!handler) return; // unknown types are additions we do not use yet
    // Only a live message new to the page is announced: history and sync pages
    // (catch-up bursts) and changes to held messages are not.
    const fresh = frame.type === 'message' && Number.isInteger(frame.id) && !store.message(frame.id);
    handler(frame);
    if (frame.type === 'users') askLastSeen(); // someone may have left without a presence frame
    if (frame.type === 'profile') {
      profilesPending = Math.max(0, profilesPending - 1);
      askLastSeen(); // the next few, once these are answered
    }
    if (fresh && store.message(frame.id)) announceMessage(frame);
    render();
  }

  /**
   * Asks when my offline direct partners were last seen, each once per socket,
   * a few at a time: `profile` counts against the server's read limit.
   */
  function askLastSeen() {
    if (profilesPending > 0) return;
    for (const user of store.takeProfilesToAsk()) {
      if (socket.send(profileFrame(user))) profilesPending += 1;
    }
  }

  function announceMessage(frame) {
    const key = messageKey(frame, store.me);
    announcer.add(noticeOf({ key, from: frame.from, body: frame.body, deleted: frame.deleted }, { me: store.me, active: store.active }));
  }

  /** After a hello: catch up, open a conversation, send what waited for a socket. */
  function connected(first) {
    catchUp.connected(first);
    // On page load the composer takes the focus: the page is for writing.
    if (store.active === null) openConversation(initialConversation(), { focus: first });
    else catchUp.ensureLoaded(store.active);
    sendPending();
    readMarker.flush();
    idleReporter.connected(); // a new socket starts active on the server
    profilesPending = 0; // answers to the old socket's asks went with it
    askLastSeen();
    searchPanel.connected();
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
    const text = kind === 'room'
      ? gettext('The room #%(room)s was removed or renamed; you are now in #%(where)s.')
      : gettext('The room #%(room)s was removed or renamed; you are now in your notes to self.');
    view.notify(interpolate(text, { room: gone.room, where: name }, true), { polite: true });
  }

  // ---- what the person does --------------------------------------------------

  function sendMessage(text) {
    const body = text.trim();
    if (store.active === null) return false;
    // Send is disabled while files upload; Enter gets the reason.
    if (uploads.busy()) {
      view.setComposerError(gettext('Wait until the files have finished uploading, then send.'));
      return false;
    }
    if (uploads.failed()) {
      view.setComposerError(gettext('A file was not uploaded: retry it or remove it, then send.'));
      return false;
    }
    const attachments = uploads.attachments();
    if (body === '' && attachments.length === 0) return false;
    const problem = body === '' ? '' : bodyProblem(body); // a message of files only may have no text
    if (problem) {
      view.setComposerError(problem);
      return false;
    }
    store.addPending(store.active, body, newClientId(), attachments);
    uploads.clear();
    catchUp.showLatest(store.active); // what I write goes below the newest messages, not an old window
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
      const ids = pending.attachments.map((attachment) => attachment.id);
      if (socket.send(sendFrame(pending.key, pending.body, pending.clientId, ids))) store.markSent(pending.clientId, socket.generation);
    }
  }

  /** Saves a new body for my message `id`; returns '' when sent (or nothing changed), else why not. */
  function editMessage(id, text) {
    const message = store.message(id);
    if (!message || !store.canEdit(message)) return gettext('This message can no longer be edited.');
    const body = text.trim();
    if (body === message.body) return '';
    const problem = bodyProblem(body);
    if (problem) return body === '' ? gettext('Message is empty; to remove it, use Delete.') : problem;
    if (!catchUp.ready || !socket.send(editFrame(id, body))) return notConnected();
    store.beginChange(id, { body });
    render();
    return '';
  }

  function deleteMessage(id) {
    const message = store.message(id);
    if (!message || !store.canDelete(message)) return;
    if (!catchUp.ready || !socket.send(deleteFrame(id))) {
      view.notify(interpolate(gettext('The message was not deleted. %(reason)s'), { reason: notConnected() }, true));
      return;
    }
    store.beginChange(id, { deleting: true });
    render();
  }

  /** Sets how much the open conversation notifies me; the server tells all my tabs. */
  function chooseLevel(level) {
    const key = store.active;
    if (key === null || !isLevel(level)) return;
    if (!catchUp.ready || !socket.send(notifyFrame(key, level))) {
      view.notify(interpolate(gettext('The notification setting was not saved. %(reason)s'), { reason: notConnected() }, true));
    } else {
      store.setLevel(key, level);
    }
    render();
  }

  function reactTo(id, emoji, on) {
    const message = store.message(id);
    if (!message || !store.canReact(message)) return;
    if (!catchUp.ready || !socket.send(reactFrame(id, emoji, on))) view.notify(interpolate(gettext('The reaction was not sent. %(reason)s'), { reason: notConnected() }, true));
  }

  // ---- files -------------------------------------------------------------------

  /** Queues files picked, dropped or pasted; says why some were refused. */
  function attachFiles(files) {
    if (files.length === 0) return;
    view.setComposerError(uploads.add(files).join(' '));
  }

  // Progress comes often: redraw only the tray and the Send button, not the conversation.
  function filesChanged() {
    composerFiles.render();
    showSendState();
  }

  // Send waits for the uploads: it is disabled while a file is queued or uploading.
  function showSendState() {
    view.send.disabled = store.active === null || uploads.busy();
  }

  const attachInput = document.getElementById('attach-input');
  document.getElementById('attach').addEventListener('click', () => attachInput.click());
  attachInput.addEventListener('change', () => {
    attachFiles(filesOf(attachInput));
    attachInput.value = ''; // the same file may be picked again
    view.focusComposer();
  });

  // Files dropped anywhere on the conversation; it is highlighted while files are
  // dragged over it (a counter, as every child entered and left fires its own events).
  const dropZone = composerForm.closest('.conversation');
  let dragDepth = 0;
  const showDrop = (on) => dropZone.classList.toggle('dropping', on);
  dropZone.addEventListener('dragenter', (event) => {
    if (!carriesFiles(event.dataTransfer)) return;
    event.preventDefault();
    dragDepth += 1;
    showDrop(true);
  });
  dropZone.addEventListener('dragover', (event) => {
    if (!carriesFiles(event.dataTransfer)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
  });
  dropZone.addEventListener('dragleave', () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (dragDepth === 0) showDrop(false);
  });
  dropZone.addEventListener('drop', (event) => {
    dragDepth = 0;
    showDrop(false);
    const files = filesOf(event.dataTransfer);
    if (files.length === 0) return;
    event.preventDefault();
    attachFiles(files);
    view.focusComposer();
  });
  // A file dropped beside the conversation would make the browser leave the chat to show it.
  for (const type of ['dragover', 'drop']) {
    window.addEventListener(type, (event) => {
      if (!carriesFiles(event.dataTransfer) || dropZone.contains(event.target)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = 'none';
    });
  }
  // Pasted files (a screenshot, a copied image) are attached; pasted text stays text.
  view.composer.addEventListener('paste', (event) => {
    const files = filesOf(event.clipboardData);
    if (files.length === 0) return;
    if (!Array.from(event.clipboardData.types).includes('text/plain')) event.preventDefault();
    attachFiles(files);
  });

  // ---- conversations -----------------------------------------------------------

  function openConversation(key, { focus = true } = {}) {
    store.open(key);
    catchUp.showLatest(key); // a conversation opens at its newest messages, not at an old window
    window.history.replaceState(null, '', `#${encodeURIComponent(key)}`);
    remember(lastConversationItem(), key);
    view.setComposerError('');
    render({ toBottom: true });
    showTyping();
    if (focus) view.focusComposer();
  }

  /**
   * The conversation to show first: the one named in the address, else the one
   * this person had open last in this browser, else general (see fallbackKey).
   */
  function initialConversation() {
    for (const wanted of [decodeURIComponent(window.location.hash.slice(1)), recall(lastConversationItem())]) {
      const { kind, name } = parseKey(wanted ?? '');
      if (kind === 'room' && store.rooms.includes(name)) return wanted;
      if (kind === 'dm' && name !== '') return wanted;
    }
    return store.fallbackKey();
  }

  // Per person: two accounts in one browser each reopen their own conversation.
  function lastConversationItem() {
    return `chat.lastConversation.${store.me}`;
  }

  function loadOlder() {
    if (store.active !== null) catchUp.loadOlder(store.active);
    render();
  }

  function loadNewer() {
    if (store.active !== null) catchUp.loadNewer(store.active);
    render();
  }

  /** Leaves a window of older history for the newest messages of the open conversation. */
  function showLatest() {
    if (store.active !== null) catchUp.showLatest(store.active);
    render({ toBottom: true });
    view.focusComposer();
  }

  /** Opens a search result's conversation at the message, in context, and highlights it. */
  function jumpTo(message) {
    const key = messageKey(message, store.me);
    if (key === null || !Number.isInteger(message.seq) || !Number.isInteger(message.id)) return;
    if (key !== store.active) openConversation(key, { focus: false });
    // Held: shown at once; else its page is asked and the row appears with it.
    catchUp.jumpTo(key, message.seq);
    jumpTarget = { key, id: message.id };
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

  watchPresence(idleReporter, window, document);
  // "last seen 5 minutes ago" ages: one redraw a minute keeps it true.
  setInterval(() => { if (store.lastSeen.size > 0) render(); }, 60_000);

  socket.start();
}
