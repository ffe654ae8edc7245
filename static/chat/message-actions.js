// message-actions.js: what a person does to a message: the actions shown on
// hover, keyboard focus or a long press (react, edit, delete), the inline editor
// (Enter saves, Esc cancels), the delete confirmation and the reaction picker.

import { isReaction } from './protocol.js';

const LONG_PRESS_MS = 500;
const PRESS_SLOP_PX = 10; // a finger that moves this far is scrolling, not pressing

/** Which message is being edited, confirmed or reacted to, and the DOM events that change it. */
export class MessageActions {
  /**
   * `view` draws rows again (refreshRow, itemFor) and moves focus back to the
   * composer; `actions` does the work: edit(id, body) returns '' or why not,
   * remove(id), react(id, emoji, on), retry(clientId), dismiss(clientId).
   */
  constructor(view, actions) {
    this.view = view;
    this.list = view.messages;
    this.actions = actions;
    this.ui = { editing: null, confirming: null, picking: null };
    this.press = null; // {id, x, y, timer}: a finger held on a message
    this.bind();
  }

  bind() {
    this.list.addEventListener('click', (event) => this.clicked(event));
    this.list.addEventListener('keydown', (event) => this.keyPressed(event));
    this.list.addEventListener('submit', (event) => {
      event.preventDefault();
      const row = event.target.closest('.message[data-id]');
      if (row) this.saveEdit(Number(row.dataset.id));
    });
    // A long press on a touch screen shows the actions a mouse gets on hover.
    this.list.addEventListener('pointerdown', (event) => this.pressStarted(event));
    for (const type of ['pointerup', 'pointercancel']) this.list.addEventListener(type, () => this.pressEnded());
    this.list.addEventListener('pointermove', (event) => {
      if (this.press && Math.hypot(event.clientX - this.press.x, event.clientY - this.press.y) > PRESS_SLOP_PX) this.pressEnded();
    });
    this.list.addEventListener('contextmenu', (event) => {
      if (event.target.closest('.message.show-actions')) event.preventDefault();
    });
    // A click or tap elsewhere closes the picker and hides long-press actions.
    document.addEventListener('click', (event) => {
      if (this.ui.picking !== null && !event.target.closest(`.message[data-id="${this.ui.picking}"]`)) this.set({ picking: null });
      for (const row of this.list.querySelectorAll('.message.show-actions')) {
        if (!row.contains(event.target)) row.classList.remove('show-actions');
      }
    });
  }

  /** Changes which message is edited, confirmed or reacted to (one at a time) and redraws those rows. */
  set(change) {
    const before = Object.values(this.ui);
    this.ui = { editing: null, confirming: null, picking: null, ...change };
    for (const id of new Set([...before, ...Object.values(this.ui)])) if (id !== null) this.view.refreshRow(id);
  }

  /** Forgets every open editor, confirmation and picker (another conversation is shown). */
  reset() {
    this.ui = { editing: null, confirming: null, picking: null };
  }

  /** Closes the reaction picker, the delete confirmation and long-press actions; returns whether one was open. */
  closeMenus() {
    const shown = [...this.list.querySelectorAll('.message.show-actions')];
    for (const row of shown) row.classList.remove('show-actions');
    const open = this.ui.picking ?? this.ui.confirming;
    if (open !== null) this.cancel(open);
    return open !== null || shown.length > 0;
  }

  /** Opens the editor on message `id` and puts the cursor at the end of its text. */
  startEdit(id) {
    this.set({ editing: id });
    const input = this.part(id, '.edit-input');
    if (!input) return;
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
    input.closest('.message').scrollIntoView({ block: 'nearest' });
  }

  saveEdit(id) {
    const input = this.part(id, '.edit-input');
    if (!input) return;
    const problem = this.actions.edit(id, input.value);
    if (problem) {
      const error = this.part(id, '.edit-error');
      error.textContent = problem;
      error.hidden = false;
      return;
    }
    this.set({});
    this.view.focusComposer();
  }

  clicked(event) {
    const control = event.target.closest('button[data-action]');
    const row = control?.closest('.message');
    if (!row || !this.list.contains(row)) return;
    const id = Number(row.dataset.id);
    const action = control.dataset.action;
    if (action === 'retry') this.actions.retry(row.dataset.clientId);
    else if (action === 'dismiss') this.actions.dismiss(row.dataset.clientId);
    else if (action === 'edit') this.startEdit(id);
    else if (action === 'save-edit') this.saveEdit(id);
    else if (action === 'cancel-edit') this.cancel(id);
    else if (action === 'delete') this.openAndFocus({ confirming: id }, id, '[data-action=confirm-delete]');
    else if (action === 'confirm-delete') this.confirmDelete(id);
    else if (action === 'cancel-delete') this.cancel(id);
    else if (action === 'react') this.openAndFocus({ picking: this.ui.picking === id ? null : id }, id, '.pick');
    else if (action === 'close-picker') this.cancel(id);
    else if (action === 'pick') this.react(id, control.dataset.emoji);
    else if (action === 'pick-typed') this.reactTyped(id);
    else if (action === 'toggle-reaction') this.actions.react(id, control.dataset.emoji, control.getAttribute('aria-pressed') !== 'true');
  }

  keyPressed(event) {
    const row = event.target.closest('.message[data-id]');
    if (!row) return;
    const id = Number(row.dataset.id);
    const typing = event.isComposing || event.keyCode === 229; // an input method is composing
    if (event.key === 'Escape' && (this.ui.editing === id || this.ui.confirming === id || this.ui.picking === id)) {
      event.preventDefault();
      this.cancel(id);
    } else if (event.key === 'Enter' && !event.shiftKey && !typing && event.target.matches('.edit-input')) {
      event.preventDefault();
      this.saveEdit(id);
    } else if (event.key === 'Enter' && !typing && event.target.matches('.pick-input')) {
      event.preventDefault();
      this.reactTyped(id);
    }
  }

  // Closing an editor, a confirmation or the picker hands focus back where
  // the person came from: the action button, or the composer when it is gone.
  cancel(id) {
    const reacting = this.ui.picking === id;
    this.set({});
    const back = reacting ? this.part(id, '[data-action=react]') : null;
    if (back) back.focus();
    else this.view.focusComposer();
  }

  openAndFocus(change, id, selector) {
    this.set(change);
    this.part(id, selector)?.focus();
  }

  confirmDelete(id) {
    this.set({});
    this.actions.remove(id);
    this.view.focusComposer();
  }

  /** Toggles my `emoji` on message `id`: on when I have not reacted with it yet. */
  react(id, emoji) {
    const mine = [...this.list.querySelectorAll(`.message[data-id="${id}"] .reaction.mine`)]
      .some((chip) => chip.dataset.emoji === emoji);
    this.actions.react(id, emoji, !mine);
    this.cancel(id);
  }

  reactTyped(id) {
    const input = this.part(id, '.pick-input');
    if (!input) return;
    const emoji = input.value.trim();
    const valid = isReaction(emoji);
    this.part(id, '.pick-error').hidden = valid;
    input.setAttribute('aria-invalid', String(!valid));
    if (valid) this.react(id, emoji);
  }

  /** The element matching `selector` inside the row of message `id`, or null. */
  part(id, selector) {
    return this.list.querySelector(`.message[data-id="${id}"] ${selector}`);
  }

  pressStarted(event) {
    const row = event.target.closest('.message[data-id]');
    if (event.pointerType !== 'touch' || !row || event.target.closest('button, textarea, input')) return;
    this.pressEnded();
    const timer = setTimeout(() => {
      for (const other of this.list.querySelectorAll('.message.show-actions')) other.classList.remove('show-actions');
      row.classList.add('show-actions');
      this.press = null;
    }, LONG_PRESS_MS);
    this.press = { x: event.clientX, y: event.clientY, timer };
  }

  pressEnded() {
    if (this.press) clearTimeout(this.press.timer);
    this.press = null;
  }
}
