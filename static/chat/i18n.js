// i18n.js: the page's words in the reader's language. Texts go through the
// catalogue that /jsi18n/ installs as `globalThis.django`; without it (node tests,
// a catalogue that failed to load) they stay English, with English plurals.

/** The catalogue of /jsi18n/, or null when the page has none. */
function catalogue() {
  const django = globalThis.django;
  return django && typeof django.gettext === 'function' ? django : null;
}

/** Returns the translation of `msgid`, or `msgid` itself. */
export function gettext(msgid) {
  const django = catalogue();
  return django ? django.gettext(msgid) : msgid;
}

/** Returns the form of `singular`/`plural` that `count` calls for in the page's language. */
export function ngettext(singular, plural, count) {
  const django = catalogue();
  if (django && typeof django.ngettext === 'function') return django.ngettext(singular, plural, count);
  return count === 1 ? singular : plural;
}

/** Returns the translation of `msgid` in `context` (a word that means several things in English). */
export function pgettext(context, msgid) {
  const django = catalogue();
  if (django && typeof django.pgettext === 'function') return django.pgettext(context, msgid);
  return msgid;
}

const NAMED = /%\((\w+)\)s/g;

/**
 * Fills `fmt`: with `named`, each %(name)s from `values[name]`; else each %s from
 * the array `values` in turn. As Django's `interpolate`, so both read alike.
 */
export function interpolate(fmt, values, named = false) {
  if (named) return fmt.replace(NAMED, (whole, name) => String(values[name]));
  let index = 0;
  return fmt.replace(/%s/g, () => String(values[index++]));
}

/**
 * Fills `fmt`'s %(name)s like `interpolate`, but returns the pieces: strings and
 * the values themselves, so a caller can wrap a name in its own element (<bdi>).
 * Empty strings are left out.
 */
export function interpolateParts(fmt, values) {
  const pieces = fmt.split(/%\((\w+)\)s/);
  // split with a group alternates text and names: even indexes are text.
  return pieces.map((piece, index) => (index % 2 === 0 ? piece : values[piece])).filter((piece) => piece !== '');
}

/** The page's language (`<html lang>`) for Intl dates and times; "en" without a page. */
export function locale() {
  const lang = globalThis.document?.documentElement?.lang;
  if (typeof lang !== 'string' || lang === '') return 'en';
  try {
    // A tag Intl cannot read would throw at every date: fall back once here.
    return Intl.getCanonicalLocales(lang)[0];
  } catch {
    return 'en';
  }
}
