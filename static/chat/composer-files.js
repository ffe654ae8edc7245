// composer-files.js: the tray under the composer, one chip per file of the upload
// queue (name, size, thumbnail, progress, Cancel/Remove, Retry and why it failed),
// and what a drag or a paste carries. The queue itself is uploads.js.

import { button, element, reconcile, setText } from './dom.js';
import { formatBytes } from './format.js';
import { gettext, interpolate } from './i18n.js';

/** Whether a drag carries files (and not only text or a link). */
export function carriesFiles(dataTransfer) {
  return Boolean(dataTransfer) && [...(dataTransfer.types ?? [])].includes('Files');
}

/** The files a drop or a paste brings, as an array (empty when none). */
export function filesOf(dataTransfer) {
  return dataTransfer?.files ? [...dataTransfer.files] : [];
}

// Functions, so the words are looked up in the page's language when shown.
const STATUS = {
  queued: () => gettext('Waiting…'),
  uploading: () => gettext('Uploading…'),
  done: () => gettext('Ready to send'),
};

/**
 * What the chip of one queue entry shows: {name, size, status, progress (null when
 * no bar), thumb (a URL or null), retry (whether Retry is offered), dismiss (the
 * Cancel or Remove button's text), and the accessible names of the bar and buttons}.
 */
export function chipOf(entry) {
  const uploading = entry.state === 'uploading' || entry.state === 'queued';
  const image = entry.state === 'done' && Number.isInteger(entry.answer?.width);
  const named = { name: entry.name };
  return {
    name: entry.name,
    size: formatBytes(entry.size),
    status: entry.state === 'failed' ? entry.reason || gettext('Not uploaded') : STATUS[entry.state]?.(),
    progress: uploading ? entry.progress : null,
    progressLabel: interpolate(gettext('Uploading %(name)s'), named, true),
    thumb: image ? `/uploads/${encodeURIComponent(entry.answer.id)}/thumb/` : null,
    retry: entry.state === 'failed',
    retryLabel: interpolate(gettext('Retry uploading %(name)s'), named, true),
    dismiss: uploading ? gettext('Cancel') : gettext('Remove'),
    dismissLabel: interpolate(uploading ? gettext('Cancel uploading %(name)s') : gettext('Remove %(name)s'), named, true),
  };
}

/** What a screen reader is told when a file's upload ends (`state` done or failed), else null. */
export function outcomeOf(entry) {
  if (entry.state === 'done') return interpolate(gettext('%(name)s uploaded'), { name: entry.name }, true);
  if (entry.state === 'failed') {
    const reason = entry.reason || gettext('Not uploaded');
    return interpolate(gettext('%(name)s not uploaded: %(reason)s'), { name: entry.name, reason }, true);
  }
  return null;
}

/** Draws the queue in the tray (a labelled <ul>) and turns its buttons into queue calls. */
export class ComposerFiles {
  /**
   * `list`: the tray; `queue`: an UploadQueue; `removed()`: called after a chip is
   * removed (focus goes back); `announce(text)`: reads out how an upload ended.
   */
  constructor(list, queue, { removed = () => {}, announce = () => {} } = {}) {
    this.list = list;
    this.queue = queue;
    this.announce = announce;
    this.states = new Map(); // key -> the state last drawn, to tell when an upload ends
    // One listener for every chip: chips come and go with the queue.
    list.addEventListener('click', (event) => {
      const pressed = event.target.closest('button[data-action]');
      const chip = pressed?.closest('li[data-key]');
      if (!chip) return;
      if (pressed.dataset.action === 'retry') queue.retry(chip.dataset.key);
      else if (queue.remove(chip.dataset.key)) removed();
    });
  }

  /** Makes the chips match the queue. */
  render() {
    const items = this.queue.items;
    this.list.hidden = items.length === 0;
    // The bar speaks for itself while uploading; its end is said once.
    const states = new Map();
    for (const entry of items) {
      states.set(entry.key, entry.state);
      const outcome = this.states.get(entry.key) === entry.state ? null : outcomeOf(entry);
      if (outcome !== null) this.announce(outcome);
    }
    this.states = states;
    reconcile(this.list, items, () => this.createChip(), (chip, entry) => this.updateChip(chip, chipOf(entry), entry.state));
  }

  createChip() {
    const chip = element('li', 'composer-file');
    const thumb = element('img', 'composer-file-thumb');
    thumb.alt = ''; // the name beside it says what it is
    thumb.hidden = true;
    const text = element('span', 'composer-file-text');
    text.append(element('bdi', 'composer-file-name'), element('span', 'composer-file-size'));
    const bar = element('progress', 'composer-file-progress');
    bar.max = 1;
    const status = element('span', 'composer-file-status');
    const retry = button('composer-file-retry link-button', gettext('Retry'));
    retry.dataset.action = 'retry';
    const dismiss = button('composer-file-dismiss link-button', gettext('Remove'));
    dismiss.dataset.action = 'remove';
    chip.append(thumb, text, bar, status, retry, dismiss);
    return chip;
  }

  updateChip(chip, shown, state) {
    const [thumb, text, bar, status, retry, dismiss] = chip.children;
    chip.dataset.state = state;
    if (shown.thumb !== null && thumb.getAttribute('src') !== shown.thumb) thumb.src = shown.thumb;
    thumb.hidden = shown.thumb === null;
    setText(text.firstElementChild, shown.name);
    setText(text.lastElementChild, shown.size);
    bar.hidden = shown.progress === null;
    bar.setAttribute('aria-label', shown.progressLabel);
    // A queued file has no progress yet: an indeterminate bar (no value) says so.
    if (shown.progress === null || state === 'queued') bar.removeAttribute('value');
    else bar.value = shown.progress;
    setText(status, shown.status);
    status.classList.toggle('failed', state === 'failed');
    retry.hidden = !shown.retry;
    retry.setAttribute('aria-label', shown.retryLabel);
    setText(dismiss, shown.dismiss);
    dismiss.setAttribute('aria-label', shown.dismissLabel);
  }
}
