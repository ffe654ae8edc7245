// message-row.js: draws one row of the message list from a plain item (a stored
// message, a pending or failed one, the "new messages" line or a day's heading)
// and the state of the message actions (which row is being edited, confirmed,
// reacted to). A row that continues its sender's group keeps the name and time
// for screen readers and shows the time only on hover or focus.

import { attachmentNodes, attachmentsKey, attachmentsOf } from './attachments.js';
import { button, element, reconcile, setText } from './dom.js';
import { bodyNodes, isLong } from './format.js';
import { gettext, interpolate } from './i18n.js';
import { clockTime, fullTime } from './timeline.js';

/** Emoji offered first when reacting; any other can be typed. */
export const COMMON_REACTIONS = ['👍', '❤️', '😂', '🎉', '😮', '😢'];

const parts = new WeakMap(); // row -> its parts, found once
let bodyIds = 0; // gives each body an id for its "Show more" button to name

/** Builds an empty row for `item`: a message skeleton, the "new messages" line, or a day's heading. */
export function createRow(item) {
  if (item.state === 'day') {
    // A heading, so a screen reader can jump from day to day.
    const li = element('li', 'day-divider');
    li.append(element('h2', 'day-divider-text'));
    return li;
  }
  if (item.state === 'divider') {
    // A plain list item: a list may hold only items, so no role="separator" here.
    const li = element('li', 'unread-divider');
    li.append(element('span', 'unread-divider-text', gettext('New messages')));
    return li;
  }
  const li = element('li', 'message');
  const meta = element('div', 'meta');
  const from = element('bdi', 'from');
  const time = element('time', 'time');
  const edited = element('span', 'edited', gettext('edited'));
  edited.hidden = true;
  meta.append(from, time, edited);
  const body = element('div', 'body');
  body.dir = 'auto'; // a Hebrew or Arabic message reads right to left, its own way
  bodyIds += 1;
  body.id = `message-body-${bodyIds}`;
  const reactions = element('div', 'reactions');
  reactions.setAttribute('role', 'group');
  reactions.setAttribute('aria-label', gettext('Reactions'));
  reactions.hidden = true;
  const seen = element('p', 'seen', gettext('Seen'));
  seen.hidden = true;
  const status = element('div', 'status');
  const fold = button('link-button fold-toggle', gettext('Show more'));
  fold.setAttribute('aria-controls', body.id);
  fold.hidden = true;
  const files = element('div', 'attachments');
  files.hidden = true;
  li.append(meta, body, fold, files, reactions, seen, status);
  const part = {
    from, time, edited, body, fold, files, reactions, seen, status, actions: null, editor: null, picker: null, confirm: null,
    shown: null, // what the body was last drawn from
    filesShown: '', // the ids of the attachments drawn
    long: false, // the body is long enough to fold
    expanded: false, // a long body unfolded by the reader
  };
  fold.addEventListener('click', () => {
    part.expanded = !part.expanded;
    showFold(part);
  });
  parts.set(li, part);
  return li;
}

/** Fills a row from its item; `ui` says which message is being edited, confirmed or reacted to. */
export function updateRow(li, item, ui) {
  if (item.state === 'divider') return;
  if (item.state === 'day') {
    setText(li.firstElementChild, item.label);
    return;
  }
  const part = parts.get(li);
  li.classList.toggle('mine', item.mine);
  li.classList.toggle('pending', item.state === 'pending');
  li.classList.toggle('failed', item.state === 'failed');
  li.classList.toggle('continued', item.continued === true);
  setText(part.from, item.from);
  if (item.state === 'stored') updateStored(li, part, item, ui);
  else updatePending(li, part, item);
}

function updateStored(li, part, item, ui) {
  const { message } = item;
  const id = message.id;
  li.dataset.id = String(id);
  li.dataset.seq = String(message.seq);
  li.classList.toggle('deleted', item.deleted);
  li.classList.toggle('changing', item.changing);
  if (item.changing) li.setAttribute('aria-busy', 'true');
  else li.removeAttribute('aria-busy');

  setText(part.time, clockTime(message.sent_at));
  part.time.dateTime = message.sent_at;
  part.time.title = fullTime(message.sent_at);
  part.edited.hidden = !item.editedAt || item.deleted;
  if (item.editedAt) part.edited.title = interpolate(gettext('edited %(time)s'), { time: fullTime(item.editedAt) }, true);

  showBody(part, item.deleted ? null : item.body, item.mentions ?? [], item.me ?? null);
  part.body.classList.toggle('tombstone', item.deleted);
  showAttachments(part, item.deleted ? [] : attachmentsOf(message.attachments));

  const chips = item.reactions.map((reaction) => ({ key: reaction.emoji, ...reaction, enabled: item.can.react }));
  part.reactions.hidden = chips.length === 0;
  reconcile(part.reactions, chips, createChip, updateChip);

  part.actions = toggle(li, part.actions, item.can.react || item.can.edit || item.can.delete, () => createActions(), part.body);
  if (part.actions) {
    part.actions.querySelector('[data-action=react]').hidden = !item.can.react;
    part.actions.querySelector('[data-action=edit]').hidden = !item.can.edit;
    part.actions.querySelector('[data-action=delete]').hidden = !item.can.delete;
  }
  part.editor = toggle(li, part.editor, ui.editing === id && item.can.edit, () => createEditor(item.body), part.body);
  part.body.hidden = part.editor !== null;
  showFold(part);
  li.classList.toggle('editing', part.editor !== null);
  part.picker = toggle(li, part.picker, ui.picking === id && item.can.react, createPicker, part.reactions);
  part.confirm = toggle(li, part.confirm, ui.confirming === id && item.can.delete, createConfirm, part.reactions);
  part.seen.hidden = !item.seen;
  part.status.hidden = true;
}

/** Adds (after `after`) or removes an optional part so that it exists exactly when `wanted`; returns it or null. */
function toggle(li, node, wanted, create, after) {
  if (wanted && !node) {
    const created = create();
    after.after(created);
    return created;
  }
  if (!wanted && node) node.remove();
  return wanted ? node : null;
}

/**
 * Draws a body as formatted text (or `null`: the tombstone of a deleted message)
 * when it changed, and folds a long one behind "Show more".
 */
function showBody(part, body, mentions, me) {
  const shown = JSON.stringify([body, mentions, me]);
  if (part.shown === shown) return;
  part.shown = shown;
  if (body === null) part.body.replaceChildren(gettext('message deleted'));
  else part.body.replaceChildren(...bodyNodes(body, { mentions, me }));
  part.long = body !== null && isLong(body);
  showFold(part);
}

/** Draws a message's files when their ids changed: an edit or a reaction does not load its images again. */
function showAttachments(part, attachments) {
  const key = attachmentsKey(attachments);
  if (part.filesShown === key) return;
  part.filesShown = key;
  part.files.replaceChildren(...attachmentNodes(attachments));
  part.files.hidden = attachments.length === 0;
}

function showFold(part) {
  part.fold.hidden = !part.long || part.body.hidden;
  const folded = part.long && !part.expanded;
  part.body.classList.toggle('folded', folded);
  setText(part.fold, folded ? gettext('Show more') : gettext('Show less'));
  part.fold.setAttribute('aria-expanded', String(!folded));
}

function updatePending(li, part, item) {
  showBody(part, item.body, [], null);
  showAttachments(part, attachmentsOf(item.pending.attachments));
  li.dataset.clientId = item.pending.clientId;
  setText(part.time, item.state === 'pending' ? gettext('sending…') : gettext('not sent'));
  // The status line only changes with the state, so rebuild it only then.
  const { status } = part;
  if (status.dataset.state === item.state && status.dataset.reason === (item.pending.reason ?? '')) return;
  status.dataset.state = item.state;
  status.dataset.reason = item.pending.reason ?? '';
  status.replaceChildren();
  status.hidden = item.state !== 'failed';
  if (item.state === 'failed') {
    const retry = button('link-button', gettext('Retry'));
    retry.dataset.action = 'retry';
    const dismiss = button('link-button', gettext('Dismiss'));
    dismiss.dataset.action = 'dismiss';
    status.append(element('span', 'reason', item.pending.reason || gettext('Not sent')), retry, dismiss);
  }
}

// ---- reactions ----------------------------------------------------------------

function createChip() {
  const chip = button('reaction');
  chip.dataset.action = 'toggle-reaction';
  chip.append(element('span', 'reaction-emoji'), element('span', 'reaction-count'));
  return chip;
}

/** Fills a chip from {emoji, users, mine, enabled}: the emoji and its count, mine pressed, who in its title. */
function updateChip(chip, reaction) {
  const [emoji, count] = chip.children;
  chip.dataset.emoji = reaction.emoji;
  setText(emoji, reaction.emoji);
  setText(count, String(reaction.users.length));
  chip.classList.toggle('mine', reaction.mine);
  chip.setAttribute('aria-pressed', String(reaction.mine));
  chip.disabled = !reaction.enabled;
  const who = reaction.users.join(', ');
  chip.title = who;
  chip.setAttribute('aria-label', `${reaction.emoji} ${reaction.users.length}: ${who}`);
}

// ---- actions, editor, picker, confirmation ---------------------------------------

function createActions() {
  const bar = element('div', 'message-actions');
  bar.setAttribute('role', 'toolbar');
  bar.setAttribute('aria-label', gettext('Message actions'));
  const actions = [['react', '☺', gettext('Add a reaction')], ['edit', '✎', gettext('Edit message')], ['delete', '🗑', gettext('Delete message')]];
  for (const [action, symbol, label] of actions) {
    const node = button('action-button', symbol, label);
    node.dataset.action = action;
    bar.append(node);
  }
  return bar;
}

function createEditor(body) {
  const form = element('form', 'edit-form');
  form.noValidate = true;
  const input = element('textarea', 'edit-input');
  input.value = body;
  input.rows = Math.min(8, Math.max(1, body.split('\n').length));
  input.setAttribute('aria-label', gettext('Edit message'));
  input.title = gettext('Enter saves, Shift+Enter adds a new line, Esc cancels');
  const save = button('link-button', gettext('Save'));
  save.dataset.action = 'save-edit';
  const cancel = button('link-button', gettext('Cancel'));
  cancel.dataset.action = 'cancel-edit';
  const hint = element('span', 'edit-hint', gettext('Enter saves · Esc cancels'));
  const row = element('div', 'edit-buttons');
  row.append(hint, save, cancel);
  const error = element('p', 'edit-error');
  error.setAttribute('role', 'alert');
  error.hidden = true;
  form.append(input, row, error);
  return form;
}

function createPicker() {
  const picker = element('div', 'reaction-picker');
  picker.setAttribute('role', 'group');
  picker.setAttribute('aria-label', gettext('Pick a reaction'));
  for (const emoji of COMMON_REACTIONS) {
    const node = button('pick', emoji, interpolate(gettext('React with %(emoji)s'), { emoji }, true));
    node.dataset.action = 'pick';
    node.dataset.emoji = emoji;
    picker.append(node);
  }
  const input = element('input', 'pick-input');
  input.type = 'text';
  input.autocomplete = 'off';
  input.placeholder = gettext('Any emoji');
  input.setAttribute('aria-label', gettext('Any emoji'));
  input.title = gettext('Type or paste any emoji, then Enter');
  const add = button('link-button', gettext('Add'));
  add.dataset.action = 'pick-typed';
  const close = button('link-button', gettext('Close'));
  close.dataset.action = 'close-picker';
  const error = element('p', 'pick-error', gettext('That is not an emoji.'));
  error.setAttribute('role', 'alert');
  error.hidden = true;
  picker.append(input, add, close, error);
  return picker;
}

function createConfirm() {
  const box = element('div', 'confirm-delete');
  box.setAttribute('role', 'group');
  box.setAttribute('aria-label', gettext('Confirm deletion'));
  const yes = button('button subtle danger', gettext('Delete'));
  yes.dataset.action = 'confirm-delete';
  const no = button('button subtle', gettext('Cancel'));
  no.dataset.action = 'cancel-delete';
  box.append(element('span', 'confirm-text', gettext('Delete this message for everyone?')), yes, no);
  return box;
}
