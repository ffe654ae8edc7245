// notices.js: how the page gets a person's attention while they look elsewhere.
// Decides which new messages raise a browser notification (by each conversation's
// notification level), builds the notification's words, asks for permission only
// when the person presses the button, and draws the unread count into the favicon.
// Everything it touches (the Notification API, the window, the elements) is handed
// in, so the decisions can be tested without a browser.

import { gettext, interpolate } from './i18n.js';
import { messageKey, parseKey } from './protocol.js';

/** How much of a conversation notifies me, as the server names the levels. */
export const LEVELS = Object.freeze(['all', 'mentions', 'none']);
/** The level of a conversation nobody chose one for: direct messages and mentions of me. */
export const DEFAULT_LEVEL = 'mentions';

export const BODY_CHARS = 120;

/** Whether `level` is one the server knows. */
export const isLevel = (level) => LEVELS.includes(level);

/** Cuts `text` to at most `limit` characters (code points), with an ellipsis when cut. */
export function truncate(text, limit = BODY_CHARS) {
  const chars = [...String(text)];
  return chars.length <= limit ? chars.join('') : `${chars.slice(0, limit - 1).join('').trimEnd()}…`;
}

/**
 * Whether a new live message should raise a notification: not my own, not a
 * deleted one, only while the page is out of sight (`away`), and as the level of
 * its conversation says: `all` any message, `mentions` direct ones and those that
 * mention me, `none` never.
 */
export function shouldNotify(message, { me, level, away }) {
  if (!away || !message || message.from === me || message.deleted === true) return false;
  if (level === 'all') return true;
  if (level !== 'mentions') return false;
  const direct = typeof message.room !== 'string';
  return direct || (Array.isArray(message.mentions) && message.mentions.includes(me));
}

/** The notification of a message: {key, title, body, tag}; one tag per conversation, so they stack. */
export function notificationOf(message, me) {
  const key = messageKey(message, me);
  const { kind, name } = parseKey(key ?? ':');
  return {
    key,
    title: kind === 'room' ? interpolate(gettext('%(user)s in #%(room)s'), { user: message.from, room: name }, true) : String(message.from),
    body: notificationBody(message),
    tag: `chat:${key}`,
  };
}

/** What a notification says of a message: its text, or, for files sent without a word, their names. */
export function notificationBody(message) {
  const text = typeof message.body === 'string' ? message.body : '';
  const files = Array.isArray(message.attachments) ? message.attachments : [];
  if (text.trim() !== '' || files.length === 0) return truncate(text);
  const names = files.map((file) => (file && typeof file.name === 'string' && file.name !== '' ? file.name : gettext('file')));
  return truncate(`📎 ${names.join(', ')}`);
}

/**
 * An unread count as shown: the number, or "999+" from 1,000 on. The server stops
 * counting a conversation's unread messages at 1,000 (its `hello` says 1,000 for
 * any more), so a count that high means "at least", never an exact figure.
 */
export function countText(count) {
  return count > 999 ? '999+' : String(count);
}

/** The tab title with the unread count in front: "(3) Chat". */
export function titleWithCount(title, count) {
  return count > 0 ? `(${countText(count)}) ${title}` : title;
}

/** The favicon as SVG text: a speech bubble, with a red badge holding the count when there is one. */
export function faviconSvg(count) {
  const bubble = '<rect x="2" y="4" width="28" height="20" rx="6" fill="#2457c5"/><path d="M9 24l-3 6 9-6z" fill="#2457c5"/>';
  if (!(count > 0)) {
    const dots = [10, 16, 22].map((x) => `<circle cx="${x}" cy="14" r="2" fill="#fff"/>`).join('');
    return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">${bubble}${dots}</svg>`;
  }
  const label = count > 9 ? '9+' : String(count);
  const size = label.length > 1 ? 11 : 14;
  return '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    + `${bubble}<circle cx="23" cy="10" r="9" fill="#d93025" stroke="#fff" stroke-width="1.5"/>`
    + `<text x="23" y="10" dy="0.35em" text-anchor="middle" font-family="Arial,sans-serif" font-weight="700" font-size="${size}" fill="#fff">${label}</text></svg>`;
}

/** The favicon's address for `count` unread messages: a data: URL (the page's policy allows data: images). */
export function faviconUrl(count) {
  return `data:image/svg+xml,${encodeURIComponent(faviconSvg(count))}`;
}

/** Where browser notifications stand: 'unsupported', or the API's 'default', 'granted' or 'denied'. */
export function permissionOf(api) {
  if (typeof api !== 'function') return 'unsupported';
  return ['default', 'granted', 'denied'].includes(api.permission) ? api.permission : 'unsupported';
}

/**
 * The page's notifications. `env` holds what it acts on:
 * - `Notification`: the browser's constructor (undefined where there is none);
 * - `away()`: whether the person looks elsewhere (tab hidden or window unfocused);
 * - `focusWindow()`, `open(key)`: bring the page forward and open a conversation;
 * - `setFavicon(href)`: point the page's icon somewhere (the original icon for 0);
 * - `permissionButton`, `blockedLine`: the "Turn on notifications" button and the
 *   muted line that says they are blocked (any objects with `hidden` and, for the
 *   button, `addEventListener`), both optional;
 * - `levelControl`, `levelSelect`, `chooseLevel(level)`: the "Notify me" control of
 *   the open conversation (its wrapper and its <select>) and what a choice does.
 */
export class Notices {
  constructor(env) {
    this.env = env;
    this.shownCount = null; // the count the favicon shows now
    this.asking = false;
    env.permissionButton?.addEventListener('click', () => this.askPermission());
    env.levelSelect?.addEventListener('change', () => env.chooseLevel(env.levelSelect.value));
    this.showPermission();
  }

  /** Shows `level` in the "Notify me" control, or hides it (no conversation, or a server that keeps no levels). */
  showLevel(level) {
    const { levelControl, levelSelect } = this.env;
    if (!levelControl || !levelSelect) return;
    levelControl.hidden = !isLevel(level);
    if (isLevel(level) && levelSelect.value !== level) levelSelect.value = level;
  }

  /** Where permission stands now. */
  permission() {
    return permissionOf(this.env.Notification);
  }

  /** Shows the button while the browser has not been asked, the muted line once it refused. */
  showPermission() {
    const state = this.permission();
    const { permissionButton, blockedLine } = this.env;
    if (permissionButton) permissionButton.hidden = state !== 'default' || this.asking;
    if (blockedLine) blockedLine.hidden = state !== 'denied';
  }

  /** Asks the browser for permission: only ever from the person's press on the button. */
  async askPermission() {
    if (this.permission() !== 'default' || this.asking) return;
    this.asking = true;
    this.showPermission();
    try {
      // Older browsers answer through a callback instead of a promise.
      await new Promise((resolve) => {
        const answer = this.env.Notification.requestPermission(resolve);
        if (answer && typeof answer.then === 'function') answer.then(resolve, resolve);
      });
    } finally {
      this.asking = false;
      this.showPermission();
    }
  }

  /**
   * Takes a new live message (never one from history, sync or an edit) with the
   * level of its conversation; raises a notification if it should. Returns it, or null.
   */
  messageArrived(message, { me, level }) {
    const Api = this.env.Notification;
    if (this.permission() !== 'granted' || !shouldNotify(message, { me, level, away: this.env.away() })) return null;
    const { key, title, body, tag } = notificationOf(message, me);
    if (key === null) return null;
    let notification;
    try {
      notification = new Api(title, { body, tag, ...(this.env.icon ? { icon: this.env.icon } : {}) });
    } catch {
      return null; // some mobile browsers allow notifications only from a service worker
    }
    notification.onclick = () => {
      this.env.focusWindow();
      this.env.open(key);
      notification.close();
    };
    return notification;
  }

  /** Draws `count` (unread messages of conversations that are not muted) into the favicon. */
  showUnread(count) {
    const shown = count > 0 ? count : 0;
    if (shown === this.shownCount) return;
    this.shownCount = shown;
    this.env.setFavicon(shown > 0 ? faviconUrl(shown) : null);
  }
}
