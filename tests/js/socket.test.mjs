// The tab's socket (static/chat/socket.js) and the server's close codes: 4008
// (too slow) comes back soon like 4012, 4001 never comes back, anything else
// backs off. The browser's WebSocket, window and clock are stood in for here.

import assert from 'node:assert/strict';
import { afterEach, beforeEach, mock, test } from 'node:test';

import { ChatSocket } from '../../static/chat/socket.js';

/** The part of the browser's WebSocket the module uses; `opened` lists every socket made. */
class BrowserSocket {
  static OPEN = 1;
  static opened = [];

  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.listeners = {};
    BrowserSocket.opened.push(this);
  }

  addEventListener(type, listener) {
    this.listeners[type] = listener;
  }

  send() {}

  close() {}

  /** The server accepts the connection. */
  accept() {
    this.readyState = BrowserSocket.OPEN;
    this.listeners.open?.();
  }

  /** The connection closes with `code`. */
  closeWith(code) {
    this.readyState = 3;
    this.listeners.close?.({ code });
  }
}

const random = Math.random;

beforeEach(() => {
  BrowserSocket.opened = [];
  globalThis.WebSocket = BrowserSocket;
  globalThis.window = { addEventListener() {} };
  mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
  Math.random = () => 0.99; // the longest wait each rule allows
});

afterEach(() => {
  mock.timers.reset();
  Math.random = random;
  delete globalThis.WebSocket;
  delete globalThis.window;
});

/** A started socket; `states` records every (state, info) it reports. */
function started() {
  const states = [];
  const socket = new ChatSocket('ws://chat.test/ws/chat/', {
    onFrame() {},
    onState: (state, info) => states.push({ state, ...info }),
  });
  socket.start();
  return { socket, states };
}

/** Fails the handshake `times` times in a row, as a server that is down does. */
function failHandshakes(states, times) {
  for (let attempt = 0; attempt < times; attempt += 1) {
    BrowserSocket.opened.at(-1).closeWith(1006);
    mock.timers.tick(states.at(-1).retryInMs);
  }
}

test('4008 (too slow) reconnects within a second like 4012, however many failures came before', () => {
  const { states } = started();
  failHandshakes(states, 6);
  assert.ok(states.at(-2).retryInMs > 10_000, 'the sixth failure backs off for a long time');
  for (const code of [4008, 4012]) {
    const before = BrowserSocket.opened.length;
    BrowserSocket.opened.at(-1).accept();
    BrowserSocket.opened.at(-1).closeWith(code);
    const closed = states.at(-1);
    assert.deepEqual([closed.state, closed.code], ['closed', code]);
    assert.ok(closed.retryInMs < 1_000, `${code} waits ${closed.retryInMs} ms`);
    mock.timers.tick(1_000);
    assert.equal(BrowserSocket.opened.length, before + 1, `${code} opened a new socket`);
  }
});

test('4001 (session ended) ends the socket and never reconnects', () => {
  const { states } = started();
  BrowserSocket.opened[0].accept();
  BrowserSocket.opened[0].closeWith(4001);
  assert.equal(states.at(-1).state, 'ended');
  mock.timers.tick(120_000);
  assert.equal(BrowserSocket.opened.length, 1);
});

test('a lost connection backs off longer after each failure, up to 15 s', () => {
  const { states } = started();
  failHandshakes(states, 8);
  const waits = states.filter((state) => state.state === 'closed').map((state) => Math.round(state.retryInMs));
  assert.deepEqual(waits, [495, 990, 1980, 3960, 7920, 14850, 14850, 14850]);
});
