// sidebar.js: draws the sidebar's lists (rooms, direct conversations, who is
// online) with their unread badges, and the unread total in the toggle and the
// page title. Names are text in <bdi>, never markup.

import { element, reconcile, setText } from './dom.js';
import { displayName } from './format.js';
import { gettext, interpolate, locale, ngettext } from './i18n.js';
import { countText, titleWithCount } from './notices.js';
import { presenceNote } from './presence.js';
import { dmKey, roomKey } from './protocol.js';

/** Builds a sidebar entry: a button holding a status dot, a name and (when unread) a badge. */
function createEntry() {
  const li = element('li', 'entry');
  const entryButton = element('button', 'entry-button');
  entryButton.type = 'button';
  const name = element('span', 'entry-name');
  name.append(element('bdi', 'entry-label'), element('span', 'entry-note'));
  // The dot's colour says "online" to the eye only; this says it in words.
  // Away and "last seen …" are written out for everyone, on a line of their own.
  name.append(element('span', 'visually-hidden presence-text'), element('span', 'presence-note'));
  entryButton.append(element('span', 'presence-dot'), name);
  li.append(entryButton);
  return li;
}

/** Says how many messages wait unread: "3 unread", and "999+ unread" from 1,000 on, as the badge. */
export function unreadText(count) {
  return interpolate(ngettext('%(count)s unread', '%(count)s unread', count), { count: countText(count) }, true);
}

/** Fills a sidebar entry from {label, note, unread, mentions, active, online}. */
function updateEntry(li, item) {
  const entryButton = li.firstElementChild;
  setText(entryButton.querySelector('.entry-label'), item.label);
  setText(entryButton.querySelector('.entry-note'), item.note ?? '');
  li.classList.toggle('active', item.active);
  li.classList.toggle('online', item.online === true);
  // `presence`: {text, visible} (see presence.js); without it, online or nothing.
  const presence = item.presence ?? { text: item.online === true ? gettext('online') : '', visible: false };
  setText(entryButton.querySelector('.presence-text'), presence.visible ? '' : presence.text);
  setText(entryButton.querySelector('.presence-note'), presence.visible ? presence.text : '');
  li.classList.toggle('away', item.status === 'away');
  if (item.status) li.dataset.status = item.status;
  if (item.active) entryButton.setAttribute('aria-current', 'true');
  else entryButton.removeAttribute('aria-current');

  updateMentionBadge(entryButton, item.mentions ?? 0);
  // The badge exists only while there is something unread.
  let badge = entryButton.querySelector('.badge:not(.mention-badge)');
  if (item.unread > 0) {
    if (!badge) {
      badge = element('span', 'badge');
      entryButton.append(badge);
    }
    // A muted conversation (notification level `none`) says that something is
    // unread, not how much: a dot, with the word for screen readers.
    badge.classList.toggle('muted-dot', item.muted === true);
    if (item.muted === true) {
      if (!badge.firstElementChild) badge.replaceChildren(element('span', 'visually-hidden', gettext('unread')));
      badge.removeAttribute('aria-label');
    } else {
      setText(badge, countText(item.unread));
      badge.setAttribute('aria-label', unreadText(item.unread));
    }
  } else if (badge) {
    badge.remove();
  }
}

/** Shows "@N" for N unread messages that mention me, before the unread badge, or removes it. */
function updateMentionBadge(entryButton, mentions) {
  let badge = entryButton.querySelector('.mention-badge');
  if (mentions > 0) {
    if (!badge) {
      badge = element('span', 'badge mention-badge');
      entryButton.insertBefore(badge, entryButton.querySelector('.badge'));
    }
    setText(badge, `@${mentions}`);
    badge.setAttribute('aria-label', interpolate(ngettext('%(count)s mention', '%(count)s mentions', mentions), { count: mentions }, true));
  } else if (badge) {
    badge.remove();
  }
}

/** An entry builder that tags each entry with `data-<field>` (room or user) for the page's hooks. */
const entryWith = (field) => (item) => {
  const li = createEntry();
  li.dataset[field] = item[field];
  return li;
};

/**
 * Draws the sidebar from the store into `lists` ({rooms, direct, directEmpty,
 * online, onlineCount, toggleUnread, pageTitle}).
 */
export function renderSidebar(lists, store) {
  const you = (user) => (user === store.me ? ` ${gettext('(you)')}` : '');
  // I am online whenever this page is connected, even if the list lags behind.
  const statusOf = (user) => (user === store.me ? 'online' : store.statusOf(user));
  const now = Date.now();
  const words = { locale: locale() };
  const presenceOf = (user) => {
    const status = statusOf(user);
    return { status, presence: presenceNote(status, store.lastSeenOf(user), now, words) };
  };

  reconcile(lists.rooms, store.roomNames().map((room) => ({
    key: roomKey(room), room, label: room, unread: store.unreadOf(roomKey(room)), active: store.active === roomKey(room),
    // A muted room shows a dot only: no count, not even of mentions.
    mentions: store.isMuted(roomKey(room)) ? 0 : store.mentionsOf(roomKey(room)),
    muted: store.isMuted(roomKey(room)),
  })), entryWith('room'), updateEntry);

  const direct = store.directUsers();
  reconcile(lists.direct, direct.map((user) => ({
    key: dmKey(user), user, label: displayName(user), note: you(user), unread: store.unreadOf(dmKey(user)),
    active: store.active === dmKey(user), online: store.online.has(user),
    muted: store.isMuted(dmKey(user)), ...presenceOf(user),
  })), entryWith('user'), updateEntry);
  lists.directEmpty.hidden = direct.length > 0;

  // Online: me first, then everyone else alphabetically.
  // I am online whenever this page is connected, even if the list lags behind.
  const everyone = new Set(store.online);
  if (store.me) everyone.add(store.me);
  const online = [...everyone].sort((a, b) => (b === store.me) - (a === store.me) || a.localeCompare(b));
  reconcile(lists.online, online.map((user) => ({
    key: dmKey(user), user, label: displayName(user), note: you(user), unread: 0, active: store.active === dmKey(user), online: true,
    ...presenceOf(user),
  })), entryWith('user'), updateEntry);
  setText(lists.onlineCount, online.length ? String(online.length) : '');

  const total = store.totalUnread();
  lists.toggleUnread.hidden = total === 0;
  setText(lists.toggleUnread, countText(total));
  document.title = titleWithCount(lists.pageTitle, total);
}
