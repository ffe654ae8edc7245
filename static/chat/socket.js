// socket.js: the one WebSocket of this tab. Opens it, keeps it alive with
// ping/pong, reconnects with backoff and jitter, and interprets the server's close
// codes. It knows no chat frames beyond ping and pong; the rest goes to onFrame.

export const CloseCode = Object.freeze({
  FRAME_TOO_BIG: 1009,
  SESSION_ENDED: 4001,
  TOO_SLOW: 4008, // this tab did not read its frames fast enough: reconnect and sync
  RECONNECT_AND_SYNC: 4012,
  TOO_MANY_SOCKETS: 4029,
  NO_PONG: 4000, // ours: the client gave up on a silent socket
});

const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 15_000;
const STABLE_AFTER_MS = 10_000; // open this long and the backoff starts over
const RESTART_DELAY_MS = 1_000; // 4012 and 4008: come back soon, but not all tabs at once
const TOO_MANY_DELAY_MS = 60_000; // 4029: another tab has to close first
const PING_EVERY_MS = 25_000;
const PONG_WITHIN_MS = 10_000;

/**
 * Keeps one WebSocket to `url` open for as long as the page lives.
 *
 * handlers.onFrame(frame)       every parsed frame except pong
 * handlers.onState(state, info) "connecting" | "open" | "closed" (info: {code, retryInMs, opened, failures})
 *                               | "ended" (4001: will not reconnect)
 */
export class ChatSocket {
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers;
    this.ws = null;
    this.generation = 0; // bumps per connection, so callers can tell sockets apart
    this.failures = 0; // consecutive unhealthy connections, drives the backoff
    this.ended = false;
    this.timers = { retry: null, stable: null, ping: null, pong: null };
  }

  /** Opens the first connection and reconnects early when the network returns. */
  start() {
    window.addEventListener('online', () => this.reconnectNow());
    this.connect();
  }

  /** Sends one frame; returns false (and sends nothing) unless the socket is open. */
  send(frame) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Skips the rest of the backoff wait (the "Try now" button, the `online` event). */
  reconnectNow() {
    if (this.timers.retry !== null) this.connect();
  }

  connect() {
    this.clearTimer('retry');
    if (this.ended) return;
    this.generation += 1;
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.handleClose(null);
      return;
    }
    this.ws = ws;
    this.opened = false;
    this.handlers.onState('connecting', {});

    // Every listener checks `ws === this.ws`: events from a socket we already
    // gave up on (a dead one we dropped) must not touch the current one.
    ws.addEventListener('open', () => {
      if (ws !== this.ws) return;
      this.opened = true;
      this.timers.stable = setTimeout(() => { this.failures = 0; }, STABLE_AFTER_MS);
      this.timers.ping = setInterval(() => this.ping(), PING_EVERY_MS);
      this.handlers.onState('open', {});
    });
    ws.addEventListener('message', (event) => {
      if (ws !== this.ws) return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return; // not JSON: nothing in the protocol sends that, so ignore it
      }
      if (frame === null || typeof frame !== 'object' || Array.isArray(frame)) return;
      if (frame.type === 'pong') {
        this.clearTimer('pong');
        return;
      }
      this.handlers.onFrame(frame);
    });
    ws.addEventListener('close', (event) => {
      if (ws !== this.ws) return;
      this.handleClose(event.code);
    });
  }

  // The browser answers the server's protocol-level pings by itself; this is
  // our own check that frames still flow, since a half-open TCP connection can
  // look open for minutes.
  ping() {
    if (!this.send({ type: 'ping' })) return;
    this.clearTimer('pong');
    this.timers.pong = setTimeout(() => this.drop(), PONG_WITHIN_MS);
  }

  // A dead socket may take minutes to report `close` (the closing handshake
  // waits for the peer), so forget it now and reconnect straight away.
  drop() {
    const ws = this.ws;
    this.ws = null;
    try {
      ws?.close(CloseCode.NO_PONG, 'no pong');
    } catch {
      // already closing; nothing to do
    }
    this.handleClose(CloseCode.NO_PONG);
  }

  handleClose(code) {
    this.ws = null;
    for (const name of ['stable', 'ping', 'pong']) this.clearTimer(name);

    if (code === CloseCode.SESSION_ENDED) {
      this.ended = true;
      this.handlers.onState('ended', { code });
      return;
    }

    let delay;
    if (code === CloseCode.RECONNECT_AND_SYNC || code === CloseCode.TOO_SLOW) {
      // A planned restart (or a queue that overflowed): many tabs come back at once, so spread them out.
      delay = Math.random() * RESTART_DELAY_MS;
    } else if (code === CloseCode.TOO_MANY_SOCKETS) {
      delay = TOO_MANY_DELAY_MS / 2 + Math.random() * (TOO_MANY_DELAY_MS / 2);
    } else {
      delay = this.backoff();
    }
    this.handlers.onState('closed', { code, retryInMs: delay, opened: this.opened, failures: this.failures });
    this.timers.retry = setTimeout(() => this.connect(), delay);
  }

  // Exponential backoff with full jitter: a random wait between 0 and a ceiling
  // that doubles per failure up to the cap, so a crowd of clients spreads out.
  backoff() {
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(this.failures, 20));
    this.failures += 1;
    return Math.random() * ceiling;
  }

  clearTimer(name) {
    clearTimeout(this.timers[name]); // also clears intervals
    this.timers[name] = null;
  }
}
