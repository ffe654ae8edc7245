// view.js: everything the page draws (sidebar lists, message list, connection
// banner, notices, composer) and the DOM events it turns into `actions` calls.
// Text from the wire is only ever inserted with textContent, never as markup,
// so a body like <img src=x onerror=alert(1)> shows up literally. Each body and
// each username is its own bidi island (dir="auto", <bdi>): a right-to-left name
// or an override character (U+202E) in a body cannot reorder the text around it.

import { MAX_BODY_CHARS, dmKey, roomKey } from './protocol.js';

const AT_BOTTOM_SLACK_PX = 40; // "at the bottom" despite sub-pixel rounding
const NEAR_TOP_PX = 80; // scrolled this close to the top loads older messages
const MAX_NOTICES = 4;
const COMPOSER_MAX_ROWS = 8;
const COUNTER_FROM_CHARS = 3500;

/** Creates an element with an optional class name and text. */
function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Sets text only when it changed, so unchanged rows cost no layout. */
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/** Shows `sent_at` as local time, with the date when it is not today. */
function formatTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  const today = new Date().toDateString() === date.toDateString();
  return today ? date.toLocaleTimeString() : `${date.toLocaleDateString()} ${date.toLocaleTimeString()}`;
}

/**
 * Makes `list`'s children match `items` (each with a unique `key`) in order,
 * reusing existing elements so focus, selection and scroll survive a render.
 */
function reconcile(list, items, create, update) {
  const existing = new Map();
  for (const child of [...list.children]) existing.set(child.dataset.key, child);
  const wanted = new Set(items.map((item) => item.key));
  for (const [key, child] of existing) if (!wanted.has(key)) child.remove();

  let cursor = list.firstElementChild;
  for (const item of items) {
    let node = existing.get(item.key);
    if (!node) {
      node = create(item);
      node.dataset.key = item.key;
    }
    update(node, item);
    if (node === cursor) cursor = cursor.nextElementSibling;
    else list.insertBefore(node, cursor);
  }
}

/** Builds a sidebar entry: a button holding a status dot, a name and (when unread) a badge. */
function createEntry() {
  const li = element('li', 'entry');
  const button = element('button', 'entry-button');
  button.type = 'button';
  const name = element('span', 'entry-name');
  name.append(element('bdi', 'entry-label'), element('span', 'entry-note'));
  button.append(element('span', 'presence-dot'), name);
  li.append(button);
  return li;
}

/** Fills a sidebar entry from {label, note, unread, active, online}. */
function updateEntry(li, item) {
  const button = li.firstElementChild;
  setText(button.querySelector('.entry-label'), item.label);
  setText(button.querySelector('.entry-note'), item.note ?? '');
  li.classList.toggle('active', item.active);
  li.classList.toggle('online', item.online === true);
  if (item.active) button.setAttribute('aria-current', 'true');
  else button.removeAttribute('aria-current');

  // The badge exists only while there is something unread.
  let badge = button.querySelector('.badge');
  if (item.unread > 0) {
    if (!badge) {
      badge = element('span', 'badge');
      button.append(badge);
    }
    setText(badge, String(item.unread));
    badge.setAttribute('aria-label', `${item.unread} unread`);
  } else if (badge) {
    badge.remove();
  }
}

/** Builds the skeleton of one message row. */
function createMessage() {
  const li = element('li', 'message');
  const meta = element('div', 'meta');
  meta.append(element('bdi', 'from'), element('time', 'time'));
  const body = element('div', 'body');
  body.dir = 'auto'; // a Hebrew or Arabic message reads right to left, its own way
  li.append(meta, body, element('div', 'status'));
  return li;
}

/** Fills a message row from a stored message or a pending/failed one. */
function updateMessage(li, item) {
  const [meta, body, status] = li.children;
  const [from, time] = meta.children;
  li.classList.toggle('mine', item.mine);
  li.classList.toggle('pending', item.state === 'pending');
  li.classList.toggle('failed', item.state === 'failed');
  setText(from, item.from);
  setText(body, item.body);

  if (item.state === 'stored') {
    li.dataset.id = String(item.message.id);
    li.dataset.seq = String(item.message.seq);
    setText(time, formatTime(item.message.sent_at));
    time.dateTime = item.message.sent_at;
    time.title = new Date(item.message.sent_at).toLocaleString();
    status.hidden = true;
    return;
  }

  li.dataset.clientId = item.pending.clientId;
  setText(time, item.state === 'pending' ? 'sending…' : 'not sent');
  // The status line only changes with the state, so rebuild it only then.
  if (status.dataset.state === item.state && status.dataset.reason === (item.pending.reason ?? '')) return;
  status.dataset.state = item.state;
  status.dataset.reason = item.pending.reason ?? '';
  status.replaceChildren();
  status.hidden = item.state !== 'failed';
  if (item.state === 'failed') {
    const retry = element('button', 'link-button', 'Retry');
    retry.type = 'button';
    retry.dataset.action = 'retry';
    const dismiss = element('button', 'link-button', 'Dismiss');
    dismiss.type = 'button';
    dismiss.dataset.action = 'dismiss';
    status.append(element('span', 'reason', item.pending.reason || 'Not sent'), retry, dismiss);
  }
}

/** The chat page's DOM. `actions` receives what the person does. */
export class ChatView {
  constructor(root, actions) {
    this.root = root;
    this.actions = actions;
    const byId = (id) => document.getElementById(id);
    this.banner = byId('connection-banner');
    this.bannerText = this.banner.querySelector('.connection-text');
    this.bannerRetry = this.banner.querySelector('.connection-retry');
    this.sidebar = byId('sidebar');
    this.sidebarToggle = byId('sidebar-toggle');
    this.toggleUnread = this.sidebarToggle.querySelector('.toggle-unread');
    this.rooms = byId('rooms');
    this.direct = byId('direct');
    this.directEmpty = byId('direct-empty');
    this.online = byId('online');
    this.onlineCount = byId('online-count');
    this.title = byId('conversation-title');
    this.notice = byId('notice');
    this.infoNotice = byId('info-notice');
    this.scroller = byId('message-scroller');
    this.loadOlder = byId('load-older');
    this.status = byId('message-status');
    this.messages = byId('messages');
    this.jumpLatest = byId('jump-latest');
    this.form = byId('composer-form');
    this.composer = byId('composer');
    this.send = byId('send');
    this.composerError = byId('composer-error');
    this.composerCount = byId('composer-count');
    this.pageTitle = document.title;
    this.renderedKey = null; // conversation currently drawn in #messages
    this.bindEvents();
  }

  bindEvents() {
    // One listener per list: entries come and go with every render.
    this.sidebar.addEventListener('click', (event) => {
      const entry = event.target.closest('li[data-key]');
      if (!entry || !this.sidebar.contains(entry)) return;
      this.closeSidebar();
      this.actions.open(entry.dataset.key);
    });
    this.sidebarToggle.addEventListener('click', () => {
      this.setSidebarOpen(!this.root.classList.contains('sidebar-open'));
    });
    document.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && this.root.classList.contains('sidebar-open')) {
        this.closeSidebar();
        this.sidebarToggle.focus();
      }
    });

    this.loadOlder.addEventListener('click', () => this.actions.loadOlder());
    this.scroller.addEventListener('scroll', () => {
      if (this.scroller.scrollTop < NEAR_TOP_PX && !this.loadOlder.hidden) this.actions.loadOlder();
      if (this.isAtBottom()) this.jumpLatest.hidden = true;
    }, { passive: true });
    this.jumpLatest.addEventListener('click', () => this.scrollToBottom());

    this.messages.addEventListener('click', (event) => {
      const button = event.target.closest('button[data-action]');
      const row = button?.closest('.message');
      if (!row) return;
      if (button.dataset.action === 'retry') this.actions.retry(row.dataset.clientId);
      if (button.dataset.action === 'dismiss') this.actions.dismiss(row.dataset.clientId);
    });

    for (const notice of [this.notice, this.infoNotice]) {
      notice.addEventListener('click', (event) => {
        if (!event.target.closest('button')) return;
        event.target.closest('.notice-item')?.remove();
        if (notice === this.notice) notice.hidden = notice.children.length === 0;
      });
    }

    this.bannerRetry.addEventListener('click', () => this.actions.reconnectNow());

    // Enter sends, Shift+Enter is a new line. Not while an input method is
    // composing (Japanese, Chinese…): there Enter confirms the composition.
    this.composer.addEventListener('keydown', (event) => {
      if (event.key !== 'Enter' || event.shiftKey || event.isComposing || event.keyCode === 229) return;
      event.preventDefault();
      this.form.requestSubmit();
    });
    this.composer.addEventListener('input', () => this.composerChanged());
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (this.actions.send(this.composer.value)) {
        this.composer.value = '';
        this.composerChanged();
      }
      this.composer.focus();
    });
  }

  // ---- sidebar -------------------------------------------------------------

  setSidebarOpen(open) {
    this.root.classList.toggle('sidebar-open', open);
    this.sidebarToggle.setAttribute('aria-expanded', String(open));
  }

  closeSidebar() {
    this.setSidebarOpen(false);
  }

  renderSidebar(store) {
    const unreadOf = (key) => store.conversations.get(key)?.unread ?? 0;
    const you = (user) => (user === store.me ? ' (you)' : '');

    reconcile(this.rooms, store.roomNames().map((name) => ({
      key: roomKey(name), name, label: name, unread: unreadOf(roomKey(name)), active: store.active === roomKey(name),
    })), (item) => {
      const li = createEntry();
      li.dataset.room = item.name;
      return li;
    }, updateEntry);

    const direct = store.directUsers();
    reconcile(this.direct, direct.map((user) => ({
      key: dmKey(user), user, label: user, note: you(user), unread: unreadOf(dmKey(user)),
      active: store.active === dmKey(user), online: store.online.has(user),
    })), (item) => {
      const li = createEntry();
      li.dataset.user = item.user;
      return li;
    }, updateEntry);
    this.directEmpty.hidden = direct.length > 0;

    // Online: me first, then everyone else alphabetically.
    // I am online whenever this page is connected, even if the list lags behind.
    const everyone = new Set(store.online);
    if (store.me) everyone.add(store.me);
    const online = [...everyone].sort((a, b) => (b === store.me) - (a === store.me) || a.localeCompare(b));
    reconcile(this.online, online.map((user) => ({
      key: dmKey(user), user, label: user, note: you(user), unread: 0, active: store.active === dmKey(user), online: true,
    })), (item) => {
      const li = createEntry();
      li.dataset.user = item.user;
      return li;
    }, updateEntry);
    setText(this.onlineCount, online.length ? String(online.length) : '');

    const total = store.totalUnread();
    this.toggleUnread.hidden = total === 0;
    setText(this.toggleUnread, String(total));
    document.title = total > 0 ? `(${total}) ${this.pageTitle}` : this.pageTitle;
  }

  // ---- conversation --------------------------------------------------------

  isAtBottom() {
    const { scrollHeight, scrollTop, clientHeight } = this.scroller;
    return scrollHeight - scrollTop - clientHeight <= AT_BOTTOM_SLACK_PX;
  }

  scrollToBottom() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.jumpLatest.hidden = true;
  }

  /** The first row at least partly visible, and where it sits, to keep it in place. */
  scrollAnchor() {
    const top = this.scroller.getBoundingClientRect().top;
    for (const row of this.messages.children) {
      const rect = row.getBoundingClientRect();
      if (rect.bottom > top) return { row, offset: rect.top - top };
    }
    return null;
  }

  /** Draws the open conversation; `toBottom` forces the view to the newest message. */
  renderConversation(store, { toBottom = false } = {}) {
    const conversation = store.active ? store.conversations.get(store.active) : null;
    this.send.disabled = !conversation;
    if (!conversation) {
      this.setTitle('No conversation');
      return;
    }

    const switched = this.renderedKey !== conversation.key;
    if (switched) {
      this.messages.replaceChildren();
      this.renderedKey = conversation.key;
      this.jumpLatest.hidden = true;
    }
    if (conversation.kind === 'room') this.setTitle('# ', conversation.name);
    else this.setTitle('', conversation.name, conversation.name === store.me ? ' (you): notes to self' : '');
    this.title.dataset.key = conversation.key;

    // Measure before changing anything: where the reader is decides where they stay.
    const wasAtBottom = switched || this.isAtBottom();
    const anchor = wasAtBottom ? null : this.scrollAnchor();
    const lastKeyBefore = this.messages.lastElementChild?.dataset.key;

    const items = conversation.inOrder().map((message) => ({
      key: `m:${message.id}`, state: 'stored', message, from: message.from, body: message.body, mine: message.from === store.me,
    }));
    for (const pending of store.pendingFor(conversation.key)) {
      items.push({ key: `p:${pending.clientId}`, state: pending.state, pending, from: store.me, body: pending.body, mine: true });
    }
    reconcile(this.messages, items, createMessage, updateMessage);

    this.renderStatus(conversation, items.length);
    this.loadOlder.hidden = !(conversation.loaded && conversation.hasOlder && conversation.oldestSeq !== null && conversation.oldestSeq > 1);
    const loadingOlder = conversation.request?.mode === 'before';
    this.loadOlder.disabled = loadingOlder;
    setText(this.loadOlder, loadingOlder ? 'Loading…' : 'Load older messages');

    // Follow new messages only when the reader was already at the bottom;
    // otherwise keep the row they were looking at where it was (older pages
    // and filled gaps insert above it) and offer a jump to the newest.
    if (toBottom || wasAtBottom) {
      this.scrollToBottom();
    } else if (anchor && anchor.row.isConnected) {
      const top = this.scroller.getBoundingClientRect().top;
      this.scroller.scrollTop += anchor.row.getBoundingClientRect().top - top - anchor.offset;
      const last = this.messages.lastElementChild;
      if (last && last.dataset.key !== lastKeyBefore) this.jumpLatest.hidden = false;
    }
  }

  /** Shows the title as text around one isolated name (a room or a user). */
  setTitle(before, name = '', after = '') {
    const parts = JSON.stringify([before, name, after]);
    if (this.title.dataset.parts === parts) return;
    this.title.dataset.parts = parts;
    this.title.replaceChildren(before, element('bdi', null, name), after);
  }

  renderStatus(conversation, count) {
    let text = '';
    if (conversation.loadError) text = conversation.loadError;
    else if (!conversation.loaded && count === 0) text = 'Loading messages…';
    else if (conversation.loaded && count === 0) text = 'No messages yet. Say hello!';
    this.status.hidden = text === '';
    setText(this.status, text);
  }

  // ---- connection banner, notices, composer ----------------------------------

  /** Shows the connection state; the banner is hidden only while the socket is open. */
  setConnection(state, text, { canRetry = false } = {}) {
    this.banner.dataset.state = state;
    this.banner.classList.toggle('reconnecting', state !== 'open');
    this.banner.hidden = state === 'open';
    setText(this.bannerText, text);
    this.bannerRetry.hidden = !canRetry;
  }

  /**
   * Adds a dismissable notice (the same text twice shows once): a problem, or with
   * `polite` news such as a move to another room, read out without interrupting.
   */
  notify(text, { polite = false } = {}) {
    const notice = polite ? this.infoNotice : this.notice;
    for (const item of notice.children) {
      if (item.firstElementChild.textContent === text) return;
    }
    const item = element('div', 'notice-item');
    const dismiss = element('button', 'link-button', 'Dismiss');
    dismiss.type = 'button';
    item.append(element('span', 'notice-text', text), dismiss);
    notice.append(item);
    while (notice.children.length > MAX_NOTICES) notice.firstElementChild.remove();
    // The polite region is never hidden: screen readers only announce changes to
    // a live region they have been watching since it appeared.
    if (notice === this.notice) notice.hidden = false;
  }

  /** Shows (or with '' clears) an error under the composer. */
  setComposerError(text) {
    this.composerError.hidden = !text;
    setText(this.composerError, text);
  }

  // Grows the textarea with its lines (rows, not inline styles: the CSP forbids
  // those), clears a stale error, and counts characters near the limit.
  composerChanged() {
    const value = this.composer.value;
    this.composer.rows = Math.min(COMPOSER_MAX_ROWS, Math.max(1, value.split('\n').length));
    this.setComposerError('');
    const length = [...value].length;
    this.composerCount.hidden = length < COUNTER_FROM_CHARS;
    this.composerCount.classList.toggle('over', length > MAX_BODY_CHARS);
    setText(this.composerCount, `${length} / ${MAX_BODY_CHARS}`);
  }

  focusComposer() {
    // On a phone, focusing pops the keyboard over the messages; only do it on wider screens.
    if (window.matchMedia('(min-width: 721px)').matches) this.composer.focus();
  }
}
