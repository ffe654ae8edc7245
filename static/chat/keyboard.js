// keyboard.js: where the page's keyboard shortcuts lead. Alt+ArrowUp and
// Alt+ArrowDown walk the conversations in the order the sidebar lists them.
// Pure functions: the view listens for the keys, the page opens what these return.

import { dmKey, roomKey } from './protocol.js';

/** The conversation keys in sidebar order: the rooms, then the direct conversations. */
export function sidebarOrder(store) {
  return [...store.roomNames().map(roomKey), ...store.directUsers().map(dmKey)];
}

/**
 * The conversation `step` places after (1) or before (-1) `active` in `order`,
 * or null past either end. From a conversation not in the list, the first
 * (stepping down) or the last (stepping up).
 */
export function stepConversation(order, active, step) {
  if (order.length === 0) return null;
  const at = order.indexOf(active);
  if (at === -1) return step > 0 ? order[0] : order[order.length - 1];
  const next = at + step;
  return next >= 0 && next < order.length ? order[next] : null;
}
