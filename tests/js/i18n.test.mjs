// The page's words in the reader's language (static/chat/i18n.js): English when
// no catalogue is loaded, the catalogue's words and plural forms when one is, and
// the texts built from counts (unread, found, new messages) going through ngettext.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { installCatalogue, installRussian, russianPlural } from './catalogue.mjs';
import { announcement } from '../../static/chat/announce.js';
import { formatBytes } from '../../static/chat/format.js';
import { gettext, interpolate, interpolateParts, locale, ngettext, pgettext } from '../../static/chat/i18n.js';
import { errorText } from '../../static/chat/protocol.js';
import { foundText } from '../../static/chat/search-panel.js';
import { unreadText } from '../../static/chat/sidebar.js';
import { dayLabel } from '../../static/chat/timeline.js';
import { typingParts } from '../../static/chat/typing.js';

/** Runs `body` with the Russian catalogue installed, and removes it afterwards. */
function inRussian(body) {
  const remove = installRussian();
  try {
    body();
  } finally {
    remove();
  }
}

/** Runs `body` on a page whose <html lang> is `lang`. */
function onPage(lang, body) {
  globalThis.document = { documentElement: { lang } };
  try {
    body();
  } finally {
    delete globalThis.document;
  }
}

test('without a catalogue the texts stay English, with English plurals', () => {
  assert.equal(globalThis.django, undefined);
  assert.equal(gettext('Show more'), 'Show more');
  assert.equal(pgettext('file size', '%(size)s KB'), '%(size)s KB');
  assert.equal(ngettext('%(count)s mention', '%(count)s mentions', 1), '%(count)s mention');
  for (const count of [0, 2, 5, 21]) assert.equal(ngettext('%(count)s mention', '%(count)s mentions', count), '%(count)s mentions');
  assert.equal(unreadText(1), '1 unread');
  assert.equal(unreadText(1042), '999+ unread');
  assert.equal(foundText(0, false), 'No messages found');
  assert.equal(foundText(1, false), '1 message found');
  assert.equal(foundText(3, true), '3 messages found, more below');
});

test('interpolate fills named and positional placeholders as Django does', () => {
  assert.equal(interpolate('%(user)s in #%(room)s', { room: 'general', user: 'ann' }, true), 'ann in #general');
  assert.equal(interpolate('%s of %s', [1, 3]), '1 of 3');
  // A name is inserted as it is, never read as a format.
  assert.equal(interpolate('%(a)s and %(b)s', { a: '%(b)s', b: 'x' }, true), '%(b)s and x');
});

test('interpolateParts keeps the values whole, so a name can get its own element', () => {
  const user = { user: 'ann' };
  assert.deepEqual(interpolateParts('%(user)s is typing…', { user }), [user, ' is typing…']);
  assert.deepEqual(interpolateParts('Здесь начинается ваша беседа с %(user)s.', { user }), ['Здесь начинается ваша беседа с ', user, '.']);
});

test('the catalogue translates, and a text it lacks stays English', () => {
  inRussian(() => {
    assert.equal(gettext('Show more'), 'Показать полностью');
    assert.equal(gettext('Today'), 'Сегодня');
    assert.equal(pgettext('file size', '%(size)s KB'), '%(size)s КБ');
    assert.equal(gettext('A text nobody translated'), 'A text nobody translated');
    assert.equal(ngettext('%(count)s apple', '%(count)s apples', 2), '%(count)s apples');
  });
  assert.equal(gettext('Show more'), 'Show more'); // removed again
});

test('Russian counts take the right one of three forms', () => {
  inRussian(() => {
    const forms = { 1: 0, 2: 1, 4: 1, 5: 2, 11: 2, 12: 2, 14: 2, 20: 2, 21: 0, 22: 1, 25: 2, 101: 0, 111: 2, 112: 2 };
    for (const [count, form] of Object.entries(forms)) assert.equal(russianPlural(Number(count)), form, count);
    assert.equal(unreadText(1), '1 непрочитанное');
    assert.equal(unreadText(3), '3 непрочитанных');
    assert.equal(unreadText(1000), '999+ непрочитанных'); // "at least", as the badge says
    assert.equal(foundText(1, false), 'Найдено 1 сообщение');
    assert.equal(foundText(3, false), 'Найдено 3 сообщения');
    assert.equal(foundText(5, true), 'Найдено 5 сообщений, ниже есть ещё');
    assert.equal(foundText(21, false), 'Найдено 21 сообщение');
    assert.equal(errorText({ type: 'error', code: 'rate_limited', retry_after: 2 }), 'Вы отправляете слишком часто; попробуйте снова через 2 секунды');
  });
});

test('a summed-up announcement counts new messages in Russian', () => {
  const notice = { key: 'room:general', from: 'bob', body: '', here: false };
  inRussian(() => {
    assert.equal(announcement([notice, notice]), '2 новых сообщения в #general');
    assert.equal(announcement(Array(5).fill(notice)), '5 новых сообщений в #general');
  });
  assert.equal(announcement([notice, notice]), '2 new messages in #general');
});

test('a plural form comes from the catalogue’s own rule, not from English', () => {
  // A catalogue whose rule puts 1 with the others: ngettext must ask the catalogue.
  const remove = installCatalogue({ '%(count)s unread': ['%(count)s X', '%(count)s Y'] }, (n) => (n < 3 ? 0 : 1));
  try {
    assert.equal(unreadText(1), '1 X');
    assert.equal(unreadText(2), '2 X');
    assert.equal(unreadText(3), '3 Y');
  } finally {
    remove();
  }
});

test('typing and day headings are worded in Russian', () => {
  inRussian(() => {
    assert.deepEqual(typingParts(['anna']), [{ user: 'anna' }, ' печатает…']);
    assert.deepEqual(typingParts(['anna', 'bob']), [{ user: 'anna' }, ' и ', { user: 'bob' }, ' печатают…']);
    const now = new Date(2026, 11, 2, 12);
    assert.equal(dayLabel(new Date(2026, 11, 2, 9), now), 'Сегодня');
    assert.equal(dayLabel(new Date(2026, 11, 1, 9), now), 'Вчера');
  });
});

test('locale() is the page’s language, English without a page or with a tag Intl cannot read', () => {
  assert.equal(locale(), 'en');
  onPage('ru', () => assert.equal(locale(), 'ru'));
  onPage('', () => assert.equal(locale(), 'en'));
  onPage('not a language!', () => assert.equal(locale(), 'en'));
});

test('file sizes follow the page’s language: its decimal sign and units', () => {
  assert.equal(formatBytes(1.4 * 1024 * 1024), '1.4 MB');
  assert.equal(formatBytes(1023), '1023 B');
  onPage('ru', () => inRussian(() => {
    assert.equal(formatBytes(1.4 * 1024 * 1024), '1,4 МБ');
    assert.equal(formatBytes(812), '812 Б');
  }));
});
