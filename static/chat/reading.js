// reading.js: decides when the page tells the server how far I have read: only
// while the newest message of the open conversation is on screen in a visible
// tab, never backwards, and at most one `read` per conversation a second.

/** The least time between two `read` frames for one conversation. */
export const READ_EVERY_MS = 1_000;

/** Marks the open conversation read as far as the reader can see, and coalesces the `read` frames. */
export class ReadMarker {
  /**
   * store: the Store; send(key, seq): sends a `read`, returns whether it went out;
   * isTabVisible(): whether the tab is visible; schedule(fn, ms) and now() are the clock.
   */
  constructor({ store, send, isTabVisible, schedule = (fn, ms) => setTimeout(fn, ms), now = () => Date.now() }) {
    this.store = store;
    this.send = send;
    this.isTabVisible = isTabVisible;
    this.schedule = schedule;
    this.now = now;
    this.visible = null; // {key, seq}: the newest message of `key` is on screen, it has `seq`
    this.unsent = new Map(); // conversation key -> seq to send
    this.lastSent = new Map(); // conversation key -> time of the last `read` sent
    this.timer = null;
  }

  /** Records what the view shows at the bottom: the seq of `key`'s newest message when on screen, else null. */
  newestShown(key, seq) {
    this.visible = seq === null ? null : { key, seq };
    this.check();
  }

  /** Whether the reader sees the newest message of the open conversation in a visible tab. */
  reading() {
    return this.visible !== null && this.visible.key === this.store.active && this.isTabVisible();
  }

  /** Marks the open conversation read if its newest message is on screen in a visible tab. */
  check() {
    if (!this.reading()) return;
    const { key, seq } = this.visible;
    if (this.store.markRead(key, seq)) this.queue(key, seq);
  }

  queue(key, seq) {
    this.unsent.set(key, Math.max(seq, this.unsent.get(key) ?? 0));
    if (this.timer === null) this.flush();
  }

  /**
   * Sends every position not yet sent (also after a reconnect: those the closed
   * socket did not take). `leaving`: the page is going away (reload, tab closed),
   * so positions held back by the once-a-second limit go now or never.
   */
  flush({ leaving = false } = {}) {
    this.timer = null;
    const now = this.now();
    for (const [key, seq] of this.unsent) {
      // One frame per conversation a second carries the newest position; readers
      // of a busy room would otherwise send one per message.
      const last = this.lastSent.get(key);
      if (!leaving && last !== undefined && now - last < READ_EVERY_MS) {
        this.timer ??= this.schedule(() => this.flush(), last + READ_EVERY_MS - now);
        continue;
      }
      if (!this.send(key, seq)) continue; // no socket: sent after the next hello
      this.unsent.delete(key);
      this.lastSent.set(key, now);
    }
  }
}
