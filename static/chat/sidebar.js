// sidebar.js: draws the sidebar's lists (rooms, direct conversations, who is
// online) with their unread badges, and the unread total in the toggle and the
// page title. Names are text in <bdi>, never markup.

import { element, reconcile, setText } from './dom.js';
import { dmKey, roomKey } from './protocol.js';

/** Builds a sidebar entry: a button holding a status dot, a name and (when unread) a badge. */
function createEntry() {
  const li = element('li', 'entry');
  const entryButton = element('button', 'entry-button');
  entryButton.type = 'button';
  const name = element('span', 'entry-name');
  name.append(element('bdi', 'entry-label'), element('span', 'entry-note'));
  entryButton.append(element('span', 'presence-dot'), name);
  li.append(entryButton);
  return li;
}

/** Fills a sidebar entry from {label, note, unread, active, online}. */
function updateEntry(li, item) {
  const entryButton = li.firstElementChild;
  setText(entryButton.querySelector('.entry-label'), item.label);
  setText(entryButton.querySelector('.entry-note'), item.note ?? '');
  li.classList.toggle('active', item.active);
  li.classList.toggle('online', item.online === true);
  if (item.active) entryButton.setAttribute('aria-current', 'true');
  else entryButton.removeAttribute('aria-current');

  // The badge exists only while there is something unread.
  let badge = entryButton.querySelector('.badge');
  if (item.unread > 0) {
    if (!badge) {
      badge = element('span', 'badge');
      entryButton.append(badge);
    }
    setText(badge, String(item.unread));
    badge.setAttribute('aria-label', `${item.unread} unread`);
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
  const you = (user) => (user === store.me ? ' (you)' : '');

  reconcile(lists.rooms, store.roomNames().map((room) => ({
    key: roomKey(room), room, label: room, unread: store.unreadOf(roomKey(room)), active: store.active === roomKey(room),
  })), entryWith('room'), updateEntry);

  const direct = store.directUsers();
  reconcile(lists.direct, direct.map((user) => ({
    key: dmKey(user), user, label: user, note: you(user), unread: store.unreadOf(dmKey(user)),
    active: store.active === dmKey(user), online: store.online.has(user),
  })), entryWith('user'), updateEntry);
  lists.directEmpty.hidden = direct.length > 0;

  // Online: me first, then everyone else alphabetically.
  // I am online whenever this page is connected, even if the list lags behind.
  const everyone = new Set(store.online);
  if (store.me) everyone.add(store.me);
  const online = [...everyone].sort((a, b) => (b === store.me) - (a === store.me) || a.localeCompare(b));
  reconcile(lists.online, online.map((user) => ({
    key: dmKey(user), user, label: user, note: you(user), unread: 0, active: store.active === dmKey(user), online: true,
  })), entryWith('user'), updateEntry);
  setText(lists.onlineCount, online.length ? String(online.length) : '');

  const total = store.totalUnread();
  lists.toggleUnread.hidden = total === 0;
  setText(lists.toggleUnread, String(total));
  document.title = total > 0 ? `(${total}) ${lists.pageTitle}` : lists.pageTitle;
}
