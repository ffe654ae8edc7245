// A stand-in for what /jsi18n/ installs: `globalThis.django` with gettext,
// ngettext and pgettext over a catalogue, as Django's JavaScriptCatalog builds it.
// The Russian one is read from the project's djangojs.po, so tests see real texts.

import { readFileSync } from 'node:fs';

const PO_FILE = new URL('../../locale/ru/LC_MESSAGES/djangojs.po', import.meta.url);

/** Russian plural forms, as the .po header states them: 1, 2-4, 5-20 (21 is one again). */
export function russianPlural(n) {
  if (n % 10 === 1 && n % 100 !== 11) return 0;
  if (n % 10 >= 2 && n % 10 <= 4 && (n % 100 < 10 || n % 100 >= 20)) return 1;
  return 2;
}

// Reads a "..." string of a .po line (with the continuation lines already joined).
const unquote = (text) => JSON.parse(text);

/** Reads a .po file into {key: string or [forms]}, keyed like Django's catalogue ("context\x04msgid"). */
export function readPo(text) {
  const catalogue = {};
  for (const block of text.split(/\n\s*\n/)) {
    const fields = {};
    let field = null;
    for (const line of block.split('\n')) {
      const start = /^(msgctxt|msgid|msgid_plural|msgstr(?:\[\d\])?) (".*")$/.exec(line);
      if (start) {
        field = start[1];
        fields[field] = unquote(start[2]);
      } else if (field && line.startsWith('"')) {
        fields[field] += unquote(line);
      }
    }
    if (!fields.msgid) continue; // the header
    const key = fields.msgctxt === undefined ? fields.msgid : `${fields.msgctxt}\x04${fields.msgid}`;
    if (fields.msgid_plural !== undefined) {
      const forms = Object.keys(fields).filter((name) => name.startsWith('msgstr[')).sort().map((name) => fields[name]);
      if (forms.every((form) => form !== '')) catalogue[key] = forms;
    } else if (fields.msgstr) {
      catalogue[key] = fields.msgstr;
    }
  }
  return catalogue;
}

/** Installs `globalThis.django` over `catalogue` with `plural(n)` choosing a form; returns a function that removes it. */
export function installCatalogue(catalogue, plural) {
  const gettext = (msgid) => {
    const value = catalogue[msgid];
    if (value === undefined) return msgid;
    return typeof value === 'string' ? value : value[0];
  };
  globalThis.django = {
    catalog: catalogue,
    gettext,
    ngettext(singular, pluralText, count) {
      const value = catalogue[singular];
      if (value === undefined) return count === 1 ? singular : pluralText;
      return Array.isArray(value) ? value[plural(count)] : value;
    },
    pgettext(context, msgid) {
      const value = gettext(`${context}\x04${msgid}`);
      return value.includes('\x04') ? msgid : value;
    },
  };
  return () => {
    delete globalThis.django;
  };
}

/** Installs the project's Russian catalogue (djangojs.po); returns a function that removes it. */
export function installRussian() {
  return installCatalogue(readPo(readFileSync(PO_FILE, 'utf8')), russianPlural);
}
