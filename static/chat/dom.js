// dom.js: the few DOM helpers every part of the view shares. Text from the wire
// only ever goes in as textContent, never as markup.

/** Creates an element with an optional class name and text. */
export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Creates a button (type "button") with a class, a visible text and an accessible name. */
export function button(className, text, label) {
  const node = element('button', className, text);
  node.type = 'button';
  if (label) {
    node.setAttribute('aria-label', label);
    node.title = label;
  }
  return node;
}

/** Sets text only when it changed, so unchanged rows cost no layout. */
export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/**
 * Makes `list`'s children match `items` (each with a unique `key`) in order,
 * reusing existing elements so focus, selection and scroll survive a render.
 */
export function reconcile(list, items, create, update) {
  const existing = new Map();
  for (const child of [...list.children]) existing.set(child.dataset.key, child);
  const wanted = new Set(items.map((item) => item.key));
  for (const [key, child] of existing) if (!wanted.has(key)) child.remove();

  let cursor = list.firstElementChild;
  for (const item of items) {
    let node = existing.get(item.key);
    if (!node) {
      node = create(item);
      node.dataset.key = item.key;
    }
    update(node, item);
    if (node === cursor) cursor = cursor.nextElementSibling;
    else list.insertBefore(node, cursor);
  }
}
