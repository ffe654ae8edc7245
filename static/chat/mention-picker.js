// mention-picker.js: the list of people under an `@fragment` in the composer.
// Typing `@` and letters at a word start opens it; ArrowUp/ArrowDown move, Enter
// or Tab put the chosen `@name ` in, Esc closes it, a click chooses. Names are
// text in <bdi>, never markup. What to offer and how to insert is mentions.js.

import { element, reconcile, setText } from './dom.js';
import { gettext } from './i18n.js';
import { applyChoice, fragmentAt, rankCandidates } from './mentions.js';

const LIST_ID = 'mention-list';

/** The autocomplete list of one composer: a listbox the textarea controls (ARIA combobox pattern). */
export class MentionPicker {
  /** `composer`: the textarea; `candidates()`: the people of the open conversation, likeliest first. */
  constructor(composer, candidates) {
    this.composer = composer;
    this.candidates = candidates;
    this.list = element('ul', 'mention-list');
    this.list.id = LIST_ID;
    this.list.setAttribute('role', 'listbox');
    this.list.setAttribute('aria-label', gettext('People to mention'));
    this.list.hidden = true;
    composer.after(this.list);
    // A textbox may not say it is expanded; an editable combobox may, and is one here.
    composer.setAttribute('role', 'combobox');
    composer.setAttribute('aria-autocomplete', 'list');
    composer.setAttribute('aria-controls', LIST_ID);
    composer.setAttribute('aria-expanded', 'false');

    this.names = []; // the names offered, best first
    this.selected = 0; // index into `names`
    this.dismissedAt = null; // index of the `@` whose list Esc closed: it stays closed
    this.bindEvents();
  }

  bindEvents() {
    // The list follows the caret: what is typed, and where a click or arrow key puts it.
    this.composer.addEventListener('input', (event) => {
      if (event.isComposing) this.close();
      else this.update();
    });
    this.composer.addEventListener('compositionend', () => this.update());
    this.composer.addEventListener('click', () => this.update());
    this.composer.addEventListener('keyup', (event) => {
      if (['ArrowLeft', 'ArrowRight', 'Home', 'End'].includes(event.key)) this.update();
    });
    this.composer.addEventListener('blur', () => this.close());
    this.composer.form?.addEventListener('submit', () => this.close());
    // Pressing an option must not take the focus from the composer (its blur would close the list).
    this.list.addEventListener('mousedown', (event) => event.preventDefault());
    this.list.addEventListener('click', (event) => {
      const option = event.target.closest('[role="option"]');
      if (option && this.list.contains(option)) this.choose(Number(option.dataset.index));
    });
  }

  /** Whether the list is showing. */
  isOpen() {
    return !this.list.hidden;
  }

  /**
   * Handles a key pressed in the composer while the list is open; returns whether
   * it did (then the composer must not act on it: Enter does not send).
   */
  keydown(event) {
    if (!this.isOpen() || event.isComposing || event.keyCode === 229) return false;
    if (event.altKey || event.ctrlKey || event.metaKey) return false;
    const step = { ArrowDown: 1, ArrowUp: -1 }[event.key];
    if (step) {
      this.select((this.selected + step + this.names.length) % this.names.length);
    } else if ((event.key === 'Enter' || event.key === 'Tab') && !event.shiftKey) {
      this.choose(this.selected);
    } else if (event.key === 'Escape') {
      this.dismissedAt = fragmentAt(this.composer.value, this.composer.selectionStart)?.start ?? null;
      this.close();
      // Esc here only closes the list: not the sidebar, not an edit.
      event.stopPropagation();
    } else {
      return false;
    }
    event.preventDefault();
    return true;
  }

  /** Opens, refreshes or closes the list for the `@fragment` at the caret. */
  update() {
    const { value, selectionStart, selectionEnd } = this.composer;
    const fragment = selectionStart === selectionEnd ? fragmentAt(value, selectionStart) : null;
    if (fragment === null || fragment.start !== this.dismissedAt) this.dismissedAt = null;
    if (fragment === null || this.dismissedAt !== null) {
      this.close();
      return;
    }
    const names = rankCandidates(this.candidates(), fragment.query);
    if (names.length === 0) {
      this.close();
      return;
    }
    // Keep the selected person selected while typing narrows the list.
    const keep = this.isOpen() ? names.indexOf(this.names[this.selected]) : -1;
    this.names = names;
    this.render();
    this.list.hidden = false;
    this.composer.setAttribute('aria-expanded', 'true');
    this.select(Math.max(keep, 0));
  }

  /** Closes the list. */
  close() {
    if (!this.isOpen()) return;
    this.list.hidden = true;
    this.composer.setAttribute('aria-expanded', 'false');
    this.composer.removeAttribute('aria-activedescendant');
  }

  render() {
    const items = this.names.map((name, index) => ({ key: `u:${name}`, name, index }));
    reconcile(this.list, items, () => {
      const option = element('li', 'mention-option');
      option.setAttribute('role', 'option');
      option.append(element('bdi'));
      return option;
    }, (option, item) => {
      option.id = `mention-option-${item.index}`;
      option.dataset.index = String(item.index);
      option.dataset.user = item.name;
      setText(option.firstElementChild, `@${item.name}`);
    });
  }

  select(index) {
    this.selected = index;
    for (const option of this.list.children) {
      const selected = Number(option.dataset.index) === index;
      option.setAttribute('aria-selected', String(selected));
      option.classList.toggle('selected', selected);
      if (selected) {
        this.composer.setAttribute('aria-activedescendant', option.id);
        option.scrollIntoView({ block: 'nearest' });
      }
    }
  }

  /** Puts `@name ` of option `index` in place of the fragment at the caret. */
  choose(index) {
    const name = this.names[index];
    const fragment = fragmentAt(this.composer.value, this.composer.selectionStart);
    if (name === undefined || fragment === null) {
      this.close();
      return;
    }
    const { text, caret } = applyChoice(this.composer.value, fragment, name);
    this.composer.value = text;
    this.composer.setSelectionRange(caret, caret);
    this.composer.focus();
    this.close();
    // The composer grows, counts and says "typing" on input: tell it the text changed.
    this.composer.dispatchEvent(new Event('input', { bubbles: true }));
  }
}
