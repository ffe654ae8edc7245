// search-panel.js: the search box and its results on the page. Opens on Ctrl+K
// (Cmd+K) or "/", searches as the person types, shows each result with its
// conversation, sender, date and the matching words marked, and hands a chosen
// result to the page to jump to. Text from the wire goes in as text nodes only.

import { attachmentSummary } from './attachments.js';
import { element, setText } from './dom.js';
import { gettext, interpolate, ngettext } from './i18n.js';
import {
  SEARCH_DELAY_MS, Scope, SearchRequests, highlightParts, highlightRanges, isSearchable, resultLabel, searchRequest,
  snippet,
} from './search.js';

const notConnected = () => gettext('Not connected: the search runs once the connection is back.');

/** Says how many messages a search found: "No messages found", "3 messages found, more below". */
export function foundText(count, more) {
  if (count === 0) return gettext('No messages found');
  const text = more
    ? ngettext('%(count)s message found, more below', '%(count)s messages found, more below', count)
    : ngettext('%(count)s message found', '%(count)s messages found', count);
  return interpolate(text, { count }, true);
}

/** Whether `node` takes typed text, where "/" must stay a character. */
function isTextField(node) {
  if (!(node instanceof HTMLElement)) return false;
  return node.isContentEditable || node.matches('input, textarea, select');
}

/** Builds the nodes of a result's text: plain text with each match in a <mark>. */
function markedText(body, q) {
  const { text, ranges } = snippet(body, highlightRanges(body, q));
  return highlightParts(text, ranges).map((part) => (part.mark ? element('mark', null, part.text) : document.createTextNode(part.text)));
}

/**
 * The search box and its results panel. `actions`: send(frame) returns whether
 * the frame went out; jump(message) opens a result's conversation at it;
 * activeKey() and me() tell the open conversation and who I am.
 */
export class SearchPanel {
  constructor(actions) {
    this.actions = actions;
    const byId = (id) => document.getElementById(id);
    this.area = byId('search-area');
    this.form = byId('search-form');
    this.input = byId('search');
    this.scope = byId('search-scope');
    this.panel = byId('search-panel');
    this.status = byId('search-status');
    this.list = byId('search-results');
    this.more = byId('search-more');
    this.requests = new SearchRequests();
    this.results = []; // the message frames shown, newest first
    this.hasMore = false;
    this.shownQ = ''; // the query the results were found for (what is marked)
    this.timer = null;
    this.returnTo = null; // where focus goes back to on Esc
    this.unsent = false; // the latest search found no socket: run it on the next one
    this.bindEvents();
  }

  bindEvents() {
    document.addEventListener('keydown', (event) => this.shortcut(event));
    this.input.addEventListener('input', () => this.schedule());
    this.input.addEventListener('focus', () => this.showIfUseful());
    this.scope.addEventListener('change', () => this.run());
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.run();
    });
    this.area.addEventListener('keydown', (event) => this.keyPressed(event));
    // Focus that leaves the search (a click elsewhere, Tab away) folds the panel.
    this.area.addEventListener('focusout', (event) => {
      if (!this.area.contains(event.relatedTarget)) this.panel.hidden = true;
    });
    this.list.addEventListener('click', (event) => {
      const button = event.target.closest('button[data-id]');
      if (button) this.choose(Number(button.dataset.id));
    });
    this.more.addEventListener('click', () => this.run({ more: true }));
  }

  // Ctrl+K or Cmd+K anywhere, or "/" outside a text field, opens the search.
  shortcut(event) {
    const commandK = (event.ctrlKey || event.metaKey) && !event.altKey && (event.code === 'KeyK' || event.key.toLowerCase() === 'k');
    const slash = event.key === '/' && !event.ctrlKey && !event.metaKey && !event.altKey && !isTextField(event.target);
    if (!commandK && !slash) return;
    event.preventDefault();
    this.open();
  }

  keyPressed(event) {
    if (event.key === 'Escape') {
      event.preventDefault();
      event.stopPropagation();
      this.close();
      return;
    }
    if (event.key !== 'ArrowDown' && event.key !== 'ArrowUp') return;
    // Arrows walk from the box through the results and back.
    const buttons = [...this.list.querySelectorAll('button[data-id]')];
    if (buttons.length === 0 || this.panel.hidden) return;
    const at = buttons.indexOf(document.activeElement);
    if (at === -1 && event.target !== this.input) return;
    event.preventDefault();
    const next = event.key === 'ArrowDown' ? at + 1 : at - 1;
    if (next < 0) this.input.focus();
    else buttons[Math.min(next, buttons.length - 1)].focus();
  }

  /** Focuses the search box (remembering where focus was) and shows what it found. */
  open() {
    const from = document.activeElement;
    if (!this.area.contains(from)) this.returnTo = from instanceof HTMLElement && from !== document.body ? from : null;
    this.input.focus();
    this.input.select();
    this.showIfUseful();
  }

  /** Folds the results and puts focus back where it was before the search opened. */
  close() {
    clearTimeout(this.timer);
    this.panel.hidden = true;
    const back = this.returnTo;
    this.returnTo = null;
    if (back && back.isConnected) back.focus();
    else this.input.blur();
  }

  showIfUseful() {
    this.panel.hidden = !isSearchable(this.input.value.trim()) && this.results.length === 0;
  }

  // Searching as one types waits for a pause, so each keystroke is not a request.
  schedule() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.run(), SEARCH_DELAY_MS);
  }

  /** Sends the search for what is typed now (`more`: the next page of the same search). */
  run({ more = false } = {}) {
    clearTimeout(this.timer);
    const before = more && this.results.length > 0 ? this.results.at(-1).id : null;
    const frame = searchRequest({
      q: this.input.value,
      scope: this.scope.value === Scope.HERE ? Scope.HERE : Scope.ALL,
      activeKey: this.actions.activeKey(),
      before,
    });
    if (frame === null) {
      // Nothing to search for: whatever was on its way is stale now.
      this.requests.cancel();
      this.showResults([], false, '');
      this.say('');
      this.panel.hidden = true;
      return;
    }
    const same = JSON.stringify(frame) === JSON.stringify(this.requests.asked);
    if (same && this.requests.waiting && !this.unsent) return; // the same search is on its way
    this.requests.ask(frame);
    this.unsent = !this.actions.send(frame);
    this.panel.hidden = false;
    if (this.unsent) {
      this.say(notConnected());
      return;
    }
    if (more) {
      this.more.disabled = true;
      setText(this.more, gettext('Loading…'));
    } else {
      this.say(gettext('Searching…'));
    }
  }

  /** After a hello: a search that could not go out, or whose answer went with the old socket, goes again. */
  connected() {
    if (!this.unsent && !this.requests.waiting) return;
    const more = Number.isInteger(this.requests.asked?.before);
    this.requests.cancel();
    this.run({ more });
  }

  /** Takes a `search` answer: shows it if it answers the latest search, else ignores it. */
  answered(frame) {
    const taken = this.requests.accept(frame);
    if (taken === null) return;
    const messages = frame.messages.filter((message) => Number.isInteger(message?.id) && typeof message.body === 'string');
    const results = taken.append ? [...this.results, ...messages.filter((m) => !this.results.some((r) => r.id === m.id))] : messages;
    this.showResults(results, frame.has_more === true, frame.q);
    const count = results.length;
    this.say(foundText(count, frame.has_more === true));
  }

  /** Shows why the search in flight may not be answered (an error the server sent), if one is in flight. */
  refused(text) {
    if (this.requests.waiting) this.say(interpolate(gettext('Search failed: %(reason)s'), { reason: text }, true));
  }

  say(text) {
    this.status.hidden = text === '';
    setText(this.status, text);
  }

  showResults(results, hasMore, q) {
    this.results = results;
    this.hasMore = hasMore;
    this.shownQ = q;
    const me = this.actions.me();
    const items = [];
    for (const message of results) {
      const label = resultLabel(message, me);
      if (label) items.push(this.resultItem(message, label, q));
    }
    this.list.replaceChildren(...items);
    this.more.hidden = !hasMore;
    this.more.disabled = false;
    setText(this.more, gettext('Load more'));
  }

  // One result: a button with the conversation, the sender, the date and the text.
  resultItem(message, label, q) {
    const button = element('button', 'search-result');
    button.type = 'button';
    button.dataset.id = String(message.id);
    const meta = element('span', 'search-result-meta');
    const when = element('time', 'search-result-when', label.when);
    when.dateTime = message.sent_at;
    meta.append(element('bdi', 'search-result-where', label.where), ' · ', element('bdi', 'search-result-from', label.from), ' · ', when);
    const body = element('span', 'search-result-body');
    body.dir = 'auto';
    // A message of files only stands for itself by their names.
    body.append(...markedText(message.body || attachmentSummary(message.attachments), q));
    button.append(meta, body);
    const item = element('li');
    item.append(button);
    return item;
  }

  // A chosen result: the panel folds and the page opens the message in its conversation.
  choose(id) {
    const message = this.results.find((result) => result.id === id);
    if (!message) return;
    this.panel.hidden = true;
    this.returnTo = null;
    this.actions.jump(message);
  }
}
