// view.js: everything the page draws (sidebar lists, message list, "is typing"
// line, connection banner, notices, composer) and the DOM events it turns into
// `actions` calls. Text from the wire is only ever inserted with textContent, never
// as markup, so a body like <img src=x onerror=alert(1)> shows up literally. Each
// body and each username is its own bidi island (dir="auto", <bdi>): a right-to-left
// name or an override character (U+202E) in a body cannot reorder the text around it.

import { element, reconcile, setText } from './dom.js';
import { displayName } from './format.js';
import { gettext, interpolateParts } from './i18n.js';
import { MentionPicker } from './mention-picker.js';
import { MessageActions } from './message-actions.js';
import { createRow, updateRow } from './message-row.js';
import { MAX_BODY_CHARS } from './protocol.js';
import { renderSidebar } from './sidebar.js';
import { arrange } from './timeline.js';
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
    reactions.push({ emoji: reaction.emoji, users: users.map((user) => (user === me ? gettext('you') : user)), mine: users.includes(me) });
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
    from: displayName(message.from),
    body: change && typeof change.body === 'string' ? change.body : message.body,
    mine: message.from === store.me,
    me: store.me,
    at: message.sent_at,
    mentions: Array.isArray(message.mentions) ? message.mentions.filter((name) => typeof name === 'string') : [],
    deleted,
    editedAt: typeof message.edited_at === 'string' ? message.edited_at : null,
    reactions: reactionsOf(message, store.me),
    can: { edit: store.canEdit(message), delete: store.canDelete(message), react: store.canReact(message) },
    changing: change !== null,
    seen: message.id === seenId,
  };
}

/** What an empty conversation says: text, with {user} for an isolated name. */
function emptyConversation(conversation, me) {
  if (conversation.kind === 'room') return [gettext('No messages yet. Say hello!')];
  if (conversation.name === me) return [gettext('Your notes to self go here. Nobody else sees them.')];
  return interpolateParts(gettext('This is the start of your conversation with %(user)s.'), { user: { user: conversation.name } });
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
    this.announcer = byId('announcer');
    this.scroller = byId('message-scroller');
    this.loadOlder = byId('load-older');
    this.status = byId('message-status');
    this.messages = byId('messages');
    this.jumpLatest = byId('jump-latest');
    this.loadNewer = byId('load-newer');
    this.windowed = false; // the list shows a window of older history, not the newest messages
    this.shownWindow = null; // that window's seqs ({fromSeq, toSeq}), or null for every message held
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
    this.mentionPicker = new MentionPicker(this.composer, () => this.actions.mentionCandidates());
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
      // Esc closes an open reaction picker, delete confirmation or long-press
      // actions, unless a closer listener (inside the row) already handled it.
      if (event.key === 'Escape' && !event.defaultPrevented && this.messageActions.closeMenus()) event.preventDefault();
      // Alt+ArrowUp / Alt+ArrowDown: the previous / next conversation in the sidebar.
      const step = { ArrowUp: -1, ArrowDown: 1 }[event.key];
      if (step && event.altKey && !event.ctrlKey && !event.metaKey && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.actions.step(step);
      }
    });

    this.loadOlder.addEventListener('click', () => this.actions.loadOlder());
    this.scroller.addEventListener('scroll', () => {
      if (this.scroller.scrollTop < NEAR_TOP_PX && !this.loadOlder.hidden) this.actions.loadOlder();
      if (this.isAtBottom() && !this.windowed) this.jumpLatest.hidden = true;
    }, { passive: true });
    // Within a window of older history the newest messages are not drawn: going
    // to them is a change of what is shown, not only a scroll.
    this.jumpLatest.addEventListener('click', () => (this.windowed ? this.actions.showLatest() : this.scrollToBottom()));
    this.loadNewer.addEventListener('click', () => this.actions.loadNewer());

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
      // While the list of people to mention is open, its keys are its own.
      if (this.mentionPicker.keydown(event)) return;
      if (event.key === 'ArrowUp' && !event.altKey && this.composer.value === '') {
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

  /** The first message row at least partly visible, and where it sits, to keep it in place. */
  scrollAnchor() {
    const top = this.scroller.getBoundingClientRect().top;
    // Not a day's heading or the "new messages" line: those move when older messages arrive.
    for (const row of this.messages.querySelectorAll('.message')) {
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
      this.setTitle(gettext('No conversation'));
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
    else this.setTitle('', conversation.name, conversation.name === store.me ? ` ${gettext('(you): notes to self')}` : '');
    this.title.dataset.key = conversation.key;

    // Measure before changing anything: where the reader is decides where they stay.
    const wasAtBottom = switched || this.isAtBottom();
    const anchor = wasAtBottom ? null : this.scrollAnchor();
    const lastKeyBefore = this.messages.lastElementChild?.dataset.key;

    this.shownWindow = paging.window ?? null;
    const items = this.conversationItems(store, conversation, now);
    reconcile(this.messages, items, createRow, (row, item) => updateRow(row, item, this.messageActions.ui));

    this.renderStatus(paging, items.filter((item) => item.state !== 'day' && item.state !== 'divider').length, conversation, store.me);
    this.loadOlder.hidden = !paging.canLoadOlder;
    this.loadOlder.disabled = paging.loadingOlder;
    setText(this.loadOlder, paging.loadingOlder ? gettext('Loading…') : gettext('Load older messages'));
    this.loadNewer.hidden = !paging.canLoadNewer;
    this.loadNewer.disabled = paging.loadingNewer === true;
    setText(this.loadNewer, paging.loadingNewer ? gettext('Loading…') : gettext('Load newer messages'));
    this.renderTyping(store.typists(conversation.key, now));

    // A window of older history (a jump to a message) is read where it is: it
    // does not follow to the bottom, and the way to the newest stays offered.
    const wasWindowed = this.windowed && !switched;
    this.windowed = this.shownWindow !== null;
    setText(this.jumpLatest, this.windowed ? gettext('Jump to latest ↓') : gettext('New messages ↓'));
    if (this.windowed) this.jumpLatest.hidden = false;

    // Follow new messages only when the reader was already at the bottom;
    // otherwise keep the row they were looking at where it was (older pages
    // and filled gaps insert above it) and offer a jump to the newest.
    if (toBottom || (wasAtBottom && !this.windowed && !wasWindowed)) {
      this.scrollToBottom();
    } else if (anchor && anchor.row.isConnected) {
      const top = this.scroller.getBoundingClientRect().top;
      this.scroller.scrollTop += anchor.row.getBoundingClientRect().top - top - anchor.offset;
      const last = this.messages.lastElementChild;
      if (last && last.dataset.key !== lastKeyBefore) this.jumpLatest.hidden = false;
    }
    this.watchNewest(conversation.key);
  }

  /**
   * The rows of a conversation: its messages in seq order with the "new messages"
   * line, then my pending ones; a heading before each day, and quick messages of
   * one sender grouped (see timeline.js). `now` names the days.
   */
  conversationItems(store, conversation, now = Date.now()) {
    const seenId = store.seenMessage(conversation.key)?.id ?? null;
    const items = [];
    let divider = conversation.dividerSeq; // placed before the first message after it
    this.items.clear();
    const span = this.shownWindow;
    for (const message of conversation.inOrder()) {
      if (span && (message.seq < span.fromSeq || message.seq > span.toSeq)) continue;
      if (divider !== null && message.seq > divider) {
        items.push({ key: 'divider', state: 'divider', breaks: true });
        divider = null;
      }
      const item = messageItem(store, message, seenId);
      this.items.set(message.id, item);
      items.push(item);
    }
    for (const pending of store.pendingFor(conversation.key)) {
      items.push({
        key: `p:${pending.clientId}`, state: pending.state, pending, from: store.me, body: pending.body, mine: true, at: pending.createdAt,
      });
    }
    return arrange(items, { now: new Date(now) }).map((laid) => (
      laid.kind === 'day' ? { key: laid.key, state: 'day', label: laid.label } : Object.assign(laid.entry, { continued: laid.continued })
    ));
  }

  /**
   * Scrolls the row of message `id` to the middle of the list, highlights it for a
   * moment and gives it focus (so a screen reader lands there). Returns false
   * when the row is not drawn (yet).
   */
  revealMessage(id) {
    const row = this.messages.querySelector(`.message[data-id="${id}"]`);
    if (!row) return false;
    row.scrollIntoView({ block: 'center' });
    row.tabIndex = -1;
    // Restart the highlight's animation when the same message is chosen again.
    row.classList.remove('jumped');
    void row.offsetWidth;
    row.classList.add('jumped');
    row.addEventListener('animationend', () => row.classList.remove('jumped'), { once: true });
    row.focus({ preventScroll: true });
    return true;
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

  /** Says why the list is empty (loading, an error, nothing written yet), or hides. */
  renderStatus(paging, count, conversation, me) {
    let parts = [];
    if (paging.loadError) parts = [paging.loadError];
    else if (!paging.loaded && count === 0) parts = [gettext('Loading messages…')];
    else if (paging.loaded && count === 0) parts = emptyConversation(conversation, me);
    this.status.hidden = parts.length === 0;
    const signature = JSON.stringify(parts);
    if (this.status.dataset.parts === signature) return;
    this.status.dataset.parts = signature;
    this.status.replaceChildren(...parts.map((part) => (typeof part === 'string' ? part : element('bdi', null, part.user))));
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
    const dismiss = element('button', 'link-button', gettext('Dismiss'));
    dismiss.type = 'button';
    item.append(element('span', 'notice-text', text), dismiss);
    notice.append(item);
    while (notice.children.length > MAX_NOTICES) notice.firstElementChild.remove();
    // The polite region is never hidden: screen readers only announce changes to
    // a live region they have been watching since it appeared.
    if (notice === this.notice) notice.hidden = false;
  }

  /** Reads `text` out to screen readers (the page shows nothing): a line added to the polite live region. */
  announce(text) {
    this.announcer.append(element('p', null, text));
    // Only additions are read (aria-atomic is false); keep the last few for context.
    while (this.announcer.children.length > MAX_NOTICES) this.announcer.firstElementChild.remove();
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
