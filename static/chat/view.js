// view.js: everything the page draws (sidebar lists, message list, "is typing"
// line, connection banner, notices, composer) and the DOM events it turns into
// `actions` calls. Text from the wire is only ever inserted with textContent, never
// as markup, so a body like <img src=x onerror=alert(1)> shows up literally. Each
// body and each username is its own bidi island (dir="auto", <bdi>): a right-to-left
// name or an override character (U+202E) in a body cannot reorder the text around it.

import { element, reconcile, setText } from './dom.js';
import { MessageActions } from './message-actions.js';
import { createRow, updateRow } from './message-row.js';
import { MAX_BODY_CHARS } from './protocol.js';
import { renderSidebar } from './sidebar.js';
import { typingParts } from './typing.js';

const AT_BOTTOM_SLACK_PX = 40; // "at the bottom" despite sub-pixel rounding
const NEAR_TOP_PX = 80; // scrolled this close to the top loads older messages
const MAX_NOTICES = 4;
const COMPOSER_MAX_ROWS = 8;
const COUNTER_FROM_CHARS = 3500;
const SEEN_SHARE = 0.5; // the newest message counts as seen once half of it (or half the list's height) shows

/** The reactions of a message as the view shows them: valid entries, mine marked, "you" for me. */
function reactionsOf(message, me) {
  if (message.deleted === true || !Array.isArray(message.reactions)) return [];
  const reactions = [];
  for (const reaction of message.reactions) {
    if (!reaction || typeof reaction.emoji !== 'string' || !Array.isArray(reaction.users)) continue;
    const users = reaction.users.filter((user) => typeof user === 'string');
    if (users.length === 0 || reactions.some((seen) => seen.emoji === reaction.emoji)) continue;
    reactions.push({ emoji: reaction.emoji, users: users.map((user) => (user === me ? 'you' : user)), mine: users.includes(me) });
  }
  return reactions;
}

/** The item a stored message row is drawn from. */
function messageItem(store, message, seenId) {
  const change = store.changeOf(message.id);
  const deleted = message.deleted === true;
  return {
    key: `m:${message.id}`,
    state: 'stored',
    message,
    from: message.from,
    body: change && typeof change.body === 'string' ? change.body : message.body,
    mine: message.from === store.me,
    deleted,
    editedAt: typeof message.edited_at === 'string' ? message.edited_at : null,
    reactions: reactionsOf(message, store.me),
    can: { edit: store.canEdit(message), delete: store.canDelete(message), react: store.canReact(message) },
    changing: change !== null,
    seen: message.id === seenId,
  };
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
    this.sidebarLists = {
      rooms: byId('rooms'),
      direct: byId('direct'),
      directEmpty: byId('direct-empty'),
      online: byId('online'),
      onlineCount: byId('online-count'),
      toggleUnread: this.sidebarToggle.querySelector('.toggle-unread'),
      pageTitle: document.title,
    };
    this.title = byId('conversation-title');
    this.notice = byId('notice');
    this.infoNotice = byId('info-notice');
    this.scroller = byId('message-scroller');
    this.loadOlder = byId('load-older');
    this.status = byId('message-status');
    this.messages = byId('messages');
    this.jumpLatest = byId('jump-latest');
    this.typing = byId('typing');
    this.form = byId('composer-form');
    this.composer = byId('composer');
    this.send = byId('send');
    this.composerError = byId('composer-error');
    this.composerCount = byId('composer-count');
    this.renderedKey = null; // conversation currently drawn in #messages
    this.items = new Map(); // message id -> the item its row was last drawn from
    this.newest = null; // the row of the newest stored message, watched by `this.observer`
    this.newestKey = null; // the conversation that row belongs to
    this.messageActions = new MessageActions(this, actions);
    this.observer = new IntersectionObserver((entries) => this.newestMoved(entries), {
      root: this.scroller,
      threshold: [0, 0.1, 0.25, 0.5, 0.75, 1],
    });
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
    // Up in an empty composer edits my last message.
    this.composer.addEventListener('keydown', (event) => {
      if (event.isComposing || event.keyCode === 229) return;
      if (event.key === 'ArrowUp' && this.composer.value === '') {
        const id = this.actions.lastEditable();
        if (id === null) return;
        event.preventDefault();
        this.messageActions.startEdit(id);
        return;
      }
      if (event.key !== 'Enter' || event.shiftKey) return;
      event.preventDefault();
      this.form.requestSubmit();
    });
    this.composer.addEventListener('input', () => {
      this.composerChanged();
      if (document.activeElement === this.composer && this.composer.value.trim() !== '') this.actions.typing();
    });
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

  /** Draws the three lists of the sidebar, the unread total and the page title. */
  renderSidebar(store) {
    renderSidebar(this.sidebarLists, store);
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

  /**
   * Draws the open conversation: `paging` is how far it is fetched ({loaded,
   * canLoadOlder, loadingOlder, loadError}), `now` the clock for "is typing", and
   * `toBottom` forces the view to the newest message.
   */
  renderConversation(store, paging, { now, toBottom = false }) {
    const conversation = store.active ? store.conversations.get(store.active) : null;
    this.send.disabled = !conversation;
    if (!conversation) {
      this.setTitle('No conversation');
      return;
    }

    const switched = this.renderedKey !== conversation.key;
    if (switched) {
      this.messages.replaceChildren();
      this.messageActions.reset();
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

    const items = this.conversationItems(store, conversation);
    reconcile(this.messages, items, createRow, (row, item) => updateRow(row, item, this.messageActions.ui));

    this.renderStatus(paging, items.length);
    this.loadOlder.hidden = !paging.canLoadOlder;
    this.loadOlder.disabled = paging.loadingOlder;
    setText(this.loadOlder, paging.loadingOlder ? 'Loading…' : 'Load older messages');
    this.renderTyping(store.typists(conversation.key, now));

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
    this.watchNewest(conversation.key);
  }

  /** The rows of a conversation: its messages in seq order with the "new messages" line, then my pending ones. */
  conversationItems(store, conversation) {
    const seenId = store.seenMessage(conversation.key)?.id ?? null;
    const items = [];
    let divider = conversation.dividerSeq; // placed before the first message after it
    this.items.clear();
    for (const message of conversation.inOrder()) {
      if (divider !== null && message.seq > divider) {
        items.push({ key: 'divider', state: 'divider' });
        divider = null;
      }
      const item = messageItem(store, message, seenId);
      this.items.set(message.id, item);
      items.push(item);
    }
    for (const pending of store.pendingFor(conversation.key)) {
      items.push({ key: `p:${pending.clientId}`, state: pending.state, pending, from: store.me, body: pending.body, mine: true });
    }
    return items;
  }

  /** Draws the row of message `id` again from its last item (the actions' state changed). */
  refreshRow(id) {
    const item = this.items.get(id);
    const row = this.messages.querySelector(`.message[data-id="${id}"]`);
    if (item && row) updateRow(row, item, this.messageActions.ui);
  }

  // The read position moves only while the newest message is on screen: watch
  // its row, and tell `actions.newestShown` whenever that changes.
  watchNewest(key) {
    const rows = this.messages.querySelectorAll('.message[data-id]');
    const newest = rows.length > 0 ? rows[rows.length - 1] : null;
    if (newest === this.newest) return;
    if (this.newest) this.observer.unobserve(this.newest);
    this.newest = newest;
    this.newestKey = key;
    if (newest) this.observer.observe(newest);
    else this.actions.newestShown(key, null);
  }

  newestMoved(entries) {
    for (const entry of entries) {
      if (entry.target !== this.newest) continue;
      const shown = entry.isIntersecting && (
        entry.intersectionRatio >= SEEN_SHARE || entry.intersectionRect.height >= this.scroller.clientHeight * SEEN_SHARE
      );
      this.actions.newestShown(this.newestKey, shown ? Number(entry.target.dataset.seq) : null);
    }
  }

  /** Shows the title as text around one isolated name (a room or a user). */
  setTitle(before, name = '', after = '') {
    const parts = JSON.stringify([before, name, after]);
    if (this.title.dataset.parts === parts) return;
    this.title.dataset.parts = parts;
    this.title.replaceChildren(before, element('bdi', null, name), after);
  }

  renderStatus(paging, count) {
    let text = '';
    if (paging.loadError) text = paging.loadError;
    else if (!paging.loaded && count === 0) text = 'Loading messages…';
    else if (paging.loaded && count === 0) text = 'No messages yet. Say hello!';
    this.status.hidden = text === '';
    setText(this.status, text);
  }

  /** Shows who is typing in the open conversation, each name isolated. */
  renderTyping(users) {
    const parts = typingParts(users);
    const signature = JSON.stringify(parts);
    if (this.typing.dataset.parts === signature) return;
    this.typing.dataset.parts = signature;
    this.typing.replaceChildren(...parts.map((part) => (typeof part === 'string' ? part : element('bdi', 'typist', part.user))));
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
