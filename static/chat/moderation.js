// moderation.js: the staff menu of the page: on a person of the online list or
// on a message's sender, mute for a while, unmute, or deactivate (after a
// confirm step inside the menu). Shown only when `hello` said I am staff. The
// frames and the words are pure functions; StaffMenu draws and binds the menu.

import { button, element } from './dom.js';
import { gettext, interpolate, locale } from './i18n.js';

/** The mutes the menu offers: a label (read when drawn, in the page's language) and a length in minutes. */
export const MUTE_CHOICES = [
  { get label() { return gettext('Mute 10 min'); }, minutes: 10 },
  { get label() { return gettext('Mute 1 h'); }, minutes: 60 },
  { get label() { return gettext('Mute 1 day'); }, minutes: 24 * 60 },
];

/**
 * The entries of the staff menu for `user` (a person, or a message's sender):
 * none unless I am staff, and none about myself.
 */
export function staffMenuItems({ staff, me, user }) {
  if (!staff || !user || user === me) return [];
  return [
    ...MUTE_CHOICES.map(({ label, minutes }) => ({ action: 'mute', label, minutes })),
    { action: 'unmute', label: gettext('Unmute'), minutes: 0 },
    { action: 'deactivate', label: gettext('Deactivate…'), confirm: true },
  ];
}

/** The `mute` frame: `user` kept from writing for `minutes` (0 lifts it), in `room` or everywhere. */
export function muteFrame(user, minutes, room = null) {
  const frame = { type: 'mute', user, minutes };
  if (room) frame.room = room;
  return frame;
}

/** The `deactivate` frame (staff; an extension): `user`'s account ends and their tabs close. */
export function deactivateFrame(user) {
  return { type: 'deactivate', user };
}

/**
 * What choosing a menu entry does: `{confirm: true}` for a step that asks
 * first, `{frame}` to send, or `{}` (cancel). `room`: the room a mute is limited
 * to, or null for everywhere.
 */
export function menuChoice({ action, user, minutes = 0, room = null }) {
  if (action === 'deactivate') return { confirm: true };
  if (action === 'confirm-deactivate') return { frame: deactivateFrame(user) };
  if (action === 'mute' || action === 'unmute') return { frame: muteFrame(user, action === 'unmute' ? 0 : minutes, room) };
  return {};
}

/** A time as hours and minutes in the reader's own clock, or null for no valid time. */
function clockTime(iso, language = locale()) {
  const moment = new Date(iso);
  if (typeof iso !== 'string' || Number.isNaN(moment.getTime())) return null;
  return moment.toLocaleString(language, { dateStyle: 'short', timeStyle: 'short' });
}

/** Says what a `muted` error means to the muted person: until when they cannot write. */
export function mutedText(frame, language = locale()) {
  const until = clockTime(frame.until, language);
  return until ? interpolate(gettext('You are muted until %(time)s'), { time: until }, true) : gettext('You are muted for now');
}

/** Says what a staff `mute` or `deactivate` answer did, for a notice to the staff member. */
export function moderationNotice(frame, language = locale()) {
  const values = { user: frame.user, room: frame.room, time: clockTime(frame.until, language) };
  let text;
  if (frame.type === 'deactivate') text = gettext("%(user)s's account is deactivated.");
  else if (frame.until === null || frame.until === undefined) {
    text = frame.room ? gettext('%(user)s is no longer muted in %(room)s.') : gettext('%(user)s is no longer muted.');
  } else if (values.time) {
    text = frame.room ? gettext('%(user)s is muted in %(room)s until %(time)s.') : gettext('%(user)s is muted until %(time)s.');
  } else {
    text = frame.room ? gettext('%(user)s is muted in %(room)s.') : gettext('%(user)s is muted.');
  }
  return interpolate(text, values, true);
}

/** Builds a "Moderate <user>" button that opens the staff menu. */
function createTrigger(user) {
  const trigger = button('staff-menu-button', '⋯', interpolate(gettext('Moderate %(user)s'), { user }, true));
  trigger.setAttribute('aria-haspopup', 'menu');
  trigger.setAttribute('aria-expanded', 'false');
  trigger.dataset.user = user;
  return trigger;
}

/**
 * The staff menu, opened by the "Moderate" button of an online-list entry or of
 * a message (beside its own actions). `send(frame)` sends a client frame;
 * `isStaff()`, `me()`, `room()` (the open room, or null) and `senderOf(id)`
 * (a held message's sender and whether it is deleted) read the store.
 */
export class StaffMenu {
  constructor({ onlineList, messageList }, { send, isStaff, me, room, senderOf }) {
    this.list = onlineList;
    this.messages = messageList;
    this.send = send;
    this.isStaff = isStaff;
    this.me = me;
    this.room = room;
    this.senderOf = senderOf;
    this.open = null; // {user, confirming, menu, trigger}
    for (const list of [onlineList, messageList]) list.addEventListener('click', (event) => this.clicked(event), { capture: true });
    document.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && this.open) this.close({ focusTrigger: true });
    });
    document.addEventListener('click', (event) => {
      if (this.open && !this.open.menu.contains(event.target) && event.target !== this.open.trigger) this.close();
    });
  }

  /** Adds (or removes) the "Moderate" buttons of online-list entries and messages; called after every render. */
  decorate() {
    const staff = this.isStaff();
    const wanted = (user) => staffMenuItems({ staff, me: this.me(), user }).length > 0;
    for (const entry of this.list.querySelectorAll('li[data-user]')) {
      this.place(entry, entry.querySelector(':scope > .staff-menu-button'), wanted(entry.dataset.user) ? entry.dataset.user : null);
    }
    // A message's button sits in its actions bar (there for staff on every message not deleted).
    for (const bar of this.messages.querySelectorAll('.message[data-id] > .message-actions')) {
      const sender = this.senderOf(Number(bar.parentElement.dataset.id));
      const user = sender && !sender.deleted && wanted(sender.from) ? sender.from : null;
      this.place(bar, bar.querySelector(':scope > .staff-menu-button'), user);
    }
    // The place of an open menu may have left the page (its person went offline).
    if (this.open && !this.open.trigger.isConnected) this.close();
  }

  place(parent, trigger, user) {
    if (user && !trigger) parent.append(createTrigger(user));
    else if (!user && trigger) trigger.remove();
  }

  clicked(event) {
    const trigger = event.target.closest('.staff-menu-button');
    const item = event.target.closest('.staff-menu [data-moderate]');
    if (!trigger && !item) {
      // A click inside the menu (its room box) is not a click on the entry either.
      if (event.target.closest('.staff-menu')) event.stopPropagation();
      return;
    }
    // Not a click on the entry: the entry's own click opens a conversation.
    event.stopPropagation();
    if (trigger) {
      const { user } = trigger.dataset;
      if (this.open?.user === user) this.close({ focusTrigger: true });
      else this.show(user, trigger);
      return;
    }
    this.choose(item);
  }

  /** Opens the menu for `user` under its trigger, its first entry focused. */
  show(user, trigger, { confirming = false } = {}) {
    this.close();
    const menu = element('div', 'staff-menu');
    menu.setAttribute('role', 'menu');
    menu.setAttribute('aria-label', interpolate(gettext('Moderate %(user)s'), { user }, true));
    if (confirming) {
      const question = interpolate(gettext('Deactivate %(user)s? They are logged out everywhere.'), { user }, true);
      menu.append(element('p', 'staff-menu-question', question));
      menu.append(this.item('confirm-deactivate', gettext('Deactivate'), { danger: true }), this.item('cancel', gettext('Cancel')));
    } else {
      const room = this.room();
      if (room) {
        // Everywhere unless ticked: a mute of the open room only.
        const scope = element('label', 'staff-menu-scope');
        const box = element('input', 'staff-menu-room');
        box.type = 'checkbox';
        scope.append(box, ` ${interpolate(gettext('Only in %(room)s'), { room }, true)}`);
        scope.dataset.room = room;
        menu.append(scope);
      }
      for (const entry of staffMenuItems({ staff: this.isStaff(), me: this.me(), user })) {
        menu.append(this.item(entry.action, entry.label, { minutes: entry.minutes }));
      }
    }
    // In a message, the menu hangs under the row, not in its bar that shows on hover.
    const bar = trigger.closest('.message-actions');
    if (bar) bar.parentElement.append(menu);
    else trigger.after(menu);
    trigger.setAttribute('aria-expanded', 'true');
    this.open = { user, confirming, menu, trigger };
    menu.querySelector('button')?.focus();
  }

  item(action, label, { minutes, danger = false } = {}) {
    const node = button(`staff-menu-item${danger ? ' danger' : ''}`, label);
    node.setAttribute('role', 'menuitem');
    node.dataset.moderate = action;
    if (minutes !== undefined) node.dataset.minutes = String(minutes);
    return node;
  }

  choose(item) {
    const { user, trigger, menu } = this.open;
    const scope = menu.querySelector('.staff-menu-scope');
    const room = scope?.querySelector('input').checked ? scope.dataset.room : null;
    const { confirm, frame } = menuChoice({ action: item.dataset.moderate, user, minutes: Number(item.dataset.minutes), room });
    if (confirm) {
      this.show(user, trigger, { confirming: true });
      return;
    }
    if (frame) this.send(frame);
    this.close({ focusTrigger: true });
  }

  close({ focusTrigger = false } = {}) {
    if (!this.open) return;
    const { menu, trigger } = this.open;
    this.open = null;
    menu.remove();
    trigger.setAttribute('aria-expanded', 'false');
    if (focusTrigger && trigger.isConnected) trigger.focus();
  }
}
