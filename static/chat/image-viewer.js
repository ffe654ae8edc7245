// image-viewer.js: the full-size image of a thumbnail in a modal <dialog>, with its
// name and a download link. Esc (the dialog's own behaviour), the close button and
// a click beside the image close it; focus goes back to the thumbnail.

import { button, element, setText } from './dom.js';
import { gettext, interpolate } from './i18n.js';

/** The modal that shows one image at a time, opened from the thumbnails in a list. */
export class ImageViewer {
  constructor() {
    this.dialog = null; // built on first use: most visits open no image
    this.opener = null; // the thumbnail focus returns to
  }

  /** Opens the viewer when a thumbnail inside `list` is clicked (or pressed with Enter or Space). */
  watch(list) {
    list.addEventListener('click', (event) => {
      const thumb = event.target.closest('.attachment-thumb[data-url]');
      if (thumb && list.contains(thumb)) this.open(thumb);
    });
  }

  /** Shows the image a thumbnail stands for. */
  open(thumb) {
    const parts = this.build();
    const { url, name } = thumb.dataset;
    this.opener = thumb;
    setText(parts.name, name);
    parts.download.href = url;
    parts.download.download = name;
    parts.download.setAttribute('aria-label', interpolate(gettext('Download %(name)s'), { name }, true));
    // Drop the previous image first, so it never shows under this one's name.
    parts.image.removeAttribute('src');
    parts.image.alt = name;
    const width = Number(thumb.dataset.width);
    const height = Number(thumb.dataset.height);
    if (width > 0 && height > 0) {
      parts.image.width = width;
      parts.image.height = height;
    } else {
      parts.image.removeAttribute('width');
      parts.image.removeAttribute('height');
    }
    parts.image.src = url;
    if (!parts.dialog.open) parts.dialog.showModal();
    parts.close.focus();
  }

  /** Closes the viewer if it is open. */
  close() {
    if (this.dialog?.dialog.open) this.dialog.dialog.close();
  }

  build() {
    if (this.dialog) return this.dialog;
    const dialog = element('dialog', 'image-viewer');
    dialog.id = 'image-viewer';
    dialog.setAttribute('aria-labelledby', 'image-viewer-name');
    const frame = element('div', 'image-viewer-frame');
    const bar = element('div', 'image-viewer-bar');
    const name = element('h2', 'image-viewer-name');
    name.id = 'image-viewer-name';
    name.dir = 'auto';
    const download = element('a', 'button subtle image-viewer-download', gettext('Download'));
    const close = button('button subtle image-viewer-close', '✕', gettext('Close'));
    bar.append(name, download, close);
    const image = element('img', 'image-viewer-image');
    image.decoding = 'async';
    frame.append(bar, image);
    dialog.append(frame);
    document.body.append(dialog);

    close.addEventListener('click', () => dialog.close());
    // A click on the dialog itself, not on what it holds, landed on the backdrop.
    dialog.addEventListener('click', (event) => {
      if (event.target === dialog) dialog.close();
    });
    dialog.addEventListener('close', () => {
      image.removeAttribute('src'); // a closed viewer holds no full-size image
      const back = this.opener;
      this.opener = null;
      if (back?.isConnected) back.focus();
    });
    this.dialog = { dialog, name, download, close, image };
    return this.dialog;
  }
}
