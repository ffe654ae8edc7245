// attachments.js: draws the files of a message: an image as a thumbnail that opens
// the image viewer, any other file as a card (type, name, size) that downloads it.
// The decisions (which entries show how, type labels, thumbnail sizes) are pure
// functions, apart from the DOM, so the unit tests can hold them.

import { element } from './dom.js';
import { formatBytes } from './format.js';
import { gettext, interpolate } from './i18n.js';

/** The box a thumbnail is fitted into, in CSS pixels; it is never drawn larger than its image. */
export const THUMB_BOX = { width: 320, height: 240 };

/** What a card says for a file whose type and name tell nothing. */
export const UNKNOWN_LABEL = gettext('FILE');

// Types whose extension would read worse than a word people know.
const TYPE_LABELS = {
  'application/pdf': 'PDF',
  'application/zip': 'ZIP',
  'application/x-zip-compressed': 'ZIP',
  'application/gzip': 'GZ',
  'application/x-tar': 'TAR',
  'application/x-7z-compressed': '7Z',
  'application/vnd.rar': 'RAR',
  'application/x-rar-compressed': 'RAR',
  'application/json': 'JSON',
  'application/msword': 'DOC',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document': 'DOCX',
  'application/vnd.ms-excel': 'XLS',
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet': 'XLSX',
  'application/vnd.ms-powerpoint': 'PPT',
  'application/vnd.openxmlformats-officedocument.presentationml.presentation': 'PPTX',
  'application/vnd.oasis.opendocument.text': 'ODT',
  'application/vnd.oasis.opendocument.spreadsheet': 'ODS',
  'text/plain': 'TXT',
  'text/csv': 'CSV',
  'text/markdown': 'MD',
  'text/html': 'HTML',
  'image/svg+xml': 'SVG',
  'audio/mpeg': 'MP3',
  'video/quicktime': 'MOV',
};
const EXTENSION = /\.([A-Za-z0-9]{1,5})$/;
const SUBTYPE = /^[a-z]+\/(?:x-)?([a-z0-9]{1,5})$/;

/** Returns `url` when it is a path on this site ("/uploads/…"), else null: nothing else may become a link or an image. */
export function localUrl(url) {
  if (typeof url !== 'string' || !url.startsWith('/') || url.startsWith('//') || url.startsWith('/\\')) return null;
  return url;
}

/** A short upper-case label for a file's type: "PDF", "ZIP", "TXT", from its media type or else its name. */
export function typeLabel(type, name) {
  const media = typeof type === 'string' ? type.toLowerCase().split(';')[0].trim() : '';
  if (Object.hasOwn(TYPE_LABELS, media)) return TYPE_LABELS[media];
  const extension = EXTENSION.exec(typeof name === 'string' ? name : '');
  if (extension) return extension[1].toUpperCase();
  const subtype = SUBTYPE.exec(media);
  return subtype ? subtype[1].toUpperCase() : UNKNOWN_LABEL;
}

/**
 * The size a thumbnail of a `width`×`height` image is drawn at: fitted into
 * `box`, its proportions kept, never enlarged; the whole box when the size is unknown.
 */
export function thumbSize(width, height, box = THUMB_BOX) {
  if (!(Number.isFinite(width) && width > 0 && Number.isFinite(height) && height > 0)) return { ...box };
  const scale = Math.min(1, box.width / width, box.height / height);
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/**
 * The attachments of a message as the page shows them, in order: entries with
 * an id and a link on this site; an entry with a thumbnail is an image, any other a file.
 */
export function attachmentsOf(value) {
  if (!Array.isArray(value)) return [];
  const shown = [];
  for (const entry of value) {
    const url = localUrl(entry?.url);
    if (url === null || typeof entry.id !== 'string' || entry.id === '') continue;
    const thumb = localUrl(entry.thumb_url);
    const name = typeof entry.name === 'string' && entry.name !== '' ? entry.name : gettext('file');
    const attachment = {
      id: entry.id, name, url, size: Number(entry.size) || 0, type: typeof entry.type === 'string' ? entry.type : '',
    };
    if (thumb === null) shown.push({ ...attachment, kind: 'file', label: typeLabel(attachment.type, name) });
    else shown.push({ ...attachment, kind: 'image', thumb, width: Number(entry.width) || 0, height: Number(entry.height) || 0 });
  }
  return shown;
}

/** What a list of attachments is known by: their ids, so a row redrawn for an edit or a reaction keeps its images. */
export function attachmentsKey(attachments) {
  return attachments.map((attachment) => attachment.id).join(' ');
}

/** One line that stands for a message's files where only text fits (a search result): "📎 report.pdf, photo.jpg". */
export function attachmentSummary(value) {
  const attachments = attachmentsOf(value);
  return attachments.length === 0 ? '' : `📎 ${attachments.map((attachment) => attachment.name).join(', ')}`;
}

/** Builds the DOM of shown attachments (from `attachmentsOf`): thumbnails first in a row, then the cards. */
export function attachmentNodes(attachments) {
  return attachments.map((attachment) => (attachment.kind === 'image' ? thumbnail(attachment) : card(attachment)));
}

// A button around the image: the viewer opens from it, by mouse or keyboard. Its
// width and height attributes hold the space before the image arrives.
function thumbnail(attachment) {
  const open = element('button', 'attachment-thumb');
  open.type = 'button';
  open.title = attachment.name;
  open.setAttribute('aria-label', interpolate(gettext('Open image %(name)s'), { name: attachment.name }, true));
  open.dataset.url = attachment.url;
  open.dataset.name = attachment.name;
  if (attachment.width > 0 && attachment.height > 0) {
    open.dataset.width = String(attachment.width);
    open.dataset.height = String(attachment.height);
  }
  const size = thumbSize(attachment.width, attachment.height);
  const image = element('img', 'attachment-image');
  image.alt = attachment.name;
  image.width = size.width;
  image.height = size.height;
  image.loading = 'lazy';
  image.decoding = 'async';
  image.src = attachment.thumb;
  open.append(image);
  return open;
}

// A download link that reads "PDF report.pdf 1.2 MB".
function card(attachment) {
  const link = element('a', 'attachment-file');
  link.href = attachment.url;
  link.download = attachment.name;
  const size = formatBytes(attachment.size);
  link.title = interpolate(gettext('Download %(name)s (%(size)s)'), { name: attachment.name, size }, true);
  const text = element('span', 'attachment-text');
  text.append(element('bdi', 'attachment-name', attachment.name), element('span', 'attachment-size', size));
  link.append(element('span', 'attachment-type', attachment.label), text);
  return link;
}
