"""The reconnect storm: connected clients lose the server to a restart and come back as the
page does (backoff with jitter, then `sync` since the newest `rev` seen), while a few
senders keep sending; how long until everyone is back and caught up, and what was lost.

The clients live in load-generator processes (`_CrowdProxy`) or, for a test, in the
calling process (`Crowd`); both answer the same questions.
"""

import asyncio
import contextlib
import json
import multiprocessing
import random
import re
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

import uvloop

from bench import wsclient
from bench.health_probe import HealthProbe
from bench.targets import HOST

# static/chat/socket.js, reproduced exactly: BACKOFF_BASE_MS, BACKOFF_CAP_MS,
# STABLE_AFTER_MS, RESTART_DELAY_MS and TOO_MANY_DELAY_MS, and the delays of
# ChatSocket.handleClose() and ChatSocket.backoff() below.
BACKOFF_BASE = 0.5
BACKOFF_CAP = 15.0
STABLE_AFTER = 10.0
RESTART_DELAY = 1.0
TOO_MANY_DELAY = 60.0
SESSION_ENDED, TOO_SLOW, RECONNECT_AND_SYNC, TOO_MANY_SOCKETS = 4001, 4008, 4012, 4029
# What a browser reports for a socket that failed or dropped without a close frame.
ABNORMAL = 1006
# A handshake that takes longer than this is given up, as a stuck connection would be.
OPEN_TIMEOUT = 30.0
# A storm message's body: "s<n> <sent at>"; <n> numbers the senders' messages.
_BODY = re.compile(rb'"body": ?"s(\d+) ')
_ID = re.compile(rb'"id": ?(\d+)')
_REV = re.compile(rb'"rev": ?(\d+)')


def _hello_head(payload: bytes) -> dict:
    """A `hello` without its lists of names, which the site writes last
    (protocol.encode_hello): thousands of clients would each parse the whole online
    list, on the cores the server being measured needs. The whole frame if it is
    laid out otherwise (the head is not JSON, or lacks the `rev` the crowd needs)."""
    cut = payload.find(b',"online":')
    if cut > 0:
        with contextlib.suppress(ValueError):
            head = json.loads(payload[:cut] + b"}")
            if "rev" in head:
                return head
    return json.loads(payload)


def reconnect_delay(code: int, failures: int, rng: random.Random) -> tuple[float, int]:
    """The page's wait before reconnecting after close `code`; returns it and the new
    failure count (ChatSocket.handleClose and ChatSocket.backoff in socket.js)."""
    if code in (RECONNECT_AND_SYNC, TOO_SLOW):
        return rng.random() * RESTART_DELAY, failures
    if code == TOO_MANY_SOCKETS:
        return TOO_MANY_DELAY / 2 + rng.random() * (TOO_MANY_DELAY / 2), failures
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** min(failures, 20))
    return rng.random() * ceiling, failures + 1


class Client:
    """One page: a socket kept open with the page's reconnect schedule, the newest `rev`
    seen, the storm messages seen; a sender also sends and resends until acked."""

    def __init__(self, crowd: "Crowd", index: int, port: int, headers: dict) -> None:
        self.crowd = crowd
        self.index = index
        self.port = port
        # The site checks Origin against its own address, port included.
        self.headers = {**headers, "Origin": f"http://{HOST}:{port}"}
        self.socket: wsclient.Socket | None = None
        self.rev = 0
        self.sync_from: int | None = None  # the position of an unfinished sync
        self.synced = False
        self.failures = 0
        self.opened_at = 0.0
        self.connections = 0
        self.hellos = 0
        self.dropped_at: float | None = None  # the first drop after the crowd was armed
        self.back_at: float | None = None
        self.synced_at: float | None = None
        self.seen = bytearray()
        self.ended = False
        # A frame to send once connect() has handed the socket over: the hello and
        # more may come in the same read as the handshake's answer.
        self._unsent: list[str] = []
        # Sender only: client id -> frame, until acked.
        self.pending: dict[str, dict] = {}

    # --- Connecting ---------------------------------------------------------------

    async def run(self) -> None:
        """Connects, and reconnects after every close, until the crowd stops."""
        delay = 0.0
        while not self.crowd.stopping and not self.ended:
            if delay:
                await asyncio.sleep(delay)
            if self.crowd.stopping:
                return
            code = await self._connection()
            if code == SESSION_ENDED:
                self.ended = True
                return
            if self.crowd.stopping:
                return
            delay, self.failures = reconnect_delay(code, self.failures, self.crowd.rng)

    async def _connection(self) -> int:
        """One connection, from the handshake to its close; returns the close code."""
        crowd = self.crowd
        self.synced = False
        self._unsent = []
        self.connections += 1
        try:
            async with crowd.handshakes:
                socket = await wsclient.connect(
                    HOST,
                    self.port,
                    crowd.path,
                    headers=self.headers,
                    on_text=self._on_text,
                    open_timeout=OPEN_TIMEOUT,
                )
        except wsclient.HandshakeRefused as refused:
            crowd.count_refusal(f"HTTP {refused.status}")
            return ABNORMAL
        except (OSError, TimeoutError) as error:
            crowd.count_refusal(error.__class__.__name__)
            return ABNORMAL
        self.socket = socket
        self.opened_at = time.monotonic()
        if self.dropped_at is not None and self.back_at is None:
            self.back_at = self.opened_at
        for text in self._unsent:
            socket.send_text(text)
        self._unsent = []
        await socket.closed
        self.socket = None
        code = socket.close_code or ABNORMAL
        if crowd.armed and self.dropped_at is None:
            self.dropped_at = time.monotonic()
        crowd.count_close(code)
        # STABLE_AFTER_MS: open this long and the backoff starts over.
        if time.monotonic() - self.opened_at >= STABLE_AFTER:
            self.failures = 0
        return code

    # --- Frames -------------------------------------------------------------------

    def _on_text(self, payload: bytes) -> None:
        if payload.startswith(b'{"type":"message"'):
            self._message(payload)
            return
        if payload.startswith((b'{"type":"presence"', b'{"type":"users"', b'{"type":"typing"')):
            return
        if payload.startswith(b'{"type":"hello"'):
            self._hello(_hello_head(payload))
            return
        frame = json.loads(payload)
        kind = frame.get("type")
        if kind == "sync":
            self._sync_page(frame)
        elif kind == "ack":
            self._ack(frame)
        elif kind == "error":
            self._error(frame)

    def _message(self, payload: bytes) -> None:
        rev = _REV.search(payload)
        if rev is not None:
            self.rev = max(self.rev, int(rev[1]))
        body = _BODY.search(payload)
        if body is not None:
            self._saw(int(body[1]), int(_ID.search(payload)[1]))

    def _saw(self, n: int, ident: int) -> None:
        if n >= len(self.seen):
            self.seen.extend(bytes(n + 64 - len(self.seen)))
        self.seen[n] = 1
        self.crowd.ids.setdefault(n, set()).add(ident)

    def _send(self, frame: dict) -> None:
        if self.socket is None:
            self._unsent.append(json.dumps(frame))
        else:
            self.socket.send_text(json.dumps(frame))

    def _hello(self, frame: dict) -> None:
        self.hellos += 1
        if self.hellos == 1:
            # The first page load starts from the newest revision (it reads history).
            self.rev = frame.get("rev", 0)
            self._caught_up()
            return
        # A reconnect catches up from the newest revision seen (socket.js's owner,
        # catchup.js, keeps an unfinished sync's position).
        if self.sync_from is None:
            self.sync_from = self.rev
        self._ask_sync()

    def _ask_sync(self) -> None:
        self._send({"type": "sync", "since": self.sync_from})

    def _sync_page(self, frame: dict) -> None:
        for message in frame["messages"]:
            self.rev = max(self.rev, message.get("rev", 0))
            body = message.get("body", "")
            if body.startswith("s"):
                self._saw(int(body[1:].split(" ", 1)[0]), message["id"])
        self.sync_from = frame["last_rev"]
        self.rev = max(self.rev, frame["last_rev"])
        if frame["has_more"]:
            self._ask_sync()
            return
        self.sync_from = None
        self._caught_up()

    def _caught_up(self) -> None:
        self.synced = True
        if self.back_at is not None and self.synced_at is None:
            self.synced_at = time.monotonic()
        # app.js sendPending(): what is not acked goes again, with the same client_id.
        for frame in self.pending.values():
            self._send(frame)

    def _ack(self, frame: dict) -> None:
        sent = self.pending.pop(frame.get("client_id"), None)
        if sent is not None:
            self.crowd.acked[int(sent["body"][1:].split(" ", 1)[0])] = frame["id"]

    def _error(self, frame: dict) -> None:
        code = frame.get("code", "?")
        self.crowd.errors[code] += 1
        retry = float(frame.get("retry_after") or 1)
        if frame.get("client_id") in self.pending or self.sync_from is not None:
            # A refused send or sync (rate limited, unavailable) is asked again later.
            asyncio.get_running_loop().call_later(retry, self._retry)

    def _retry(self) -> None:
        if self.socket is None or not self.socket.is_open:
            return  # the reconnect will ask again
        if self.sync_from is not None:
            self._ask_sync()
        elif self.synced:
            for frame in self.pending.values():
                self.socket.send_text(json.dumps(frame))

    # --- Sending (senders only) ---------------------------------------------------

    def compose(self, n: int, room: str, tag: str) -> None:
        """Writes storm message `n`; sends it now if connected and caught up, else later."""
        frame = {
            "type": "send",
            "room": room,
            "body": f"s{n} {time.time():.6f}",
            "client_id": f"s{tag}-{n}",
        }
        self.pending[frame["client_id"]] = frame
        if self.synced and self.socket is not None and self.socket.is_open:
            self.socket.send_text(json.dumps(frame))


class Crowd:
    """Clients in this process: opened, armed for the storm, asked how far they are."""

    def __init__(
        self, ports: Sequence[int], path: str, headers: Sequence[dict], concurrency: int, seed: int
    ) -> None:
        self.path = path
        self.rng = random.Random(seed)
        self.handshakes = asyncio.Semaphore(concurrency)
        self.clients = [
            Client(self, index, ports[index % len(ports)], headers[index])
            for index in range(len(headers))
        ]
        self.tasks: list[asyncio.Task] = []
        self.stopping = False
        self.armed = False
        self.refused: Counter = Counter()
        self.closes: Counter = Counter()
        self.errors: Counter = Counter()
        self.ids: dict[int, set[int]] = {}  # storm message number -> the ids it came with
        self.acked: dict[int, int] = {}  # senders: message number -> id

    def count_refusal(self, why: str) -> None:
        """Counts a handshake that failed (only once the storm is on)."""
        if self.armed:
            self.refused[why] += 1

    def count_close(self, code: int) -> None:
        """Counts a close code (only once the storm is on)."""
        if self.armed:
            self.closes[str(code)] += 1

    async def open(self, within: float) -> dict:
        """Starts every client; waits until each is connected and caught up, or `within` s."""
        self.tasks = [asyncio.create_task(client.run()) for client in self.clients]
        deadline = time.monotonic() + within
        # Polled: a client's state changes in frame callbacks, with no event to wait on.
        while time.monotonic() < deadline and not all(c.synced for c in self.clients):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        return {"opened": sum(c.synced for c in self.clients)}

    def arm(self) -> dict:
        """From now on a close is the storm's drop; handshakes are no longer queued here
        (browsers do not wait for each other)."""
        self.armed = True
        self.handshakes = asyncio.Semaphore(1_000_000)
        return {}

    def status(self) -> dict:
        """How many are back (reconnected after their drop) and caught up."""
        return {
            "dropped": sum(c.dropped_at is not None for c in self.clients),
            "back": sum(c.back_at is not None for c in self.clients),
            "synced": sum(c.synced_at is not None for c in self.clients),
        }

    def missing(self, acked: dict[int, int]) -> dict:
        """Acked storm messages each caught-up client lacks: (client, message) pairs, and
        the messages some client lacks."""
        pairs, messages, samples = 0, set(), []
        for client in self.clients:
            if client.dropped_at is not None and client.synced_at is None:
                continue  # not back: counted as such, not as losing messages
            seen = client.seen
            for n in acked:
                if n >= len(seen) or not seen[n]:
                    pairs += 1
                    messages.add(n)
                    if len(samples) < 5:
                        # What tells a lost live frame from a sync that began too late.
                        samples.append(
                            {
                                "message": n,
                                "id": acked[n],
                                "client": client.index,
                                "port": client.port,
                                "dropped": client.dropped_at is not None,
                                "connections": client.connections,
                                "rev": client.rev,
                            }
                        )
        return {"pairs": pairs, "messages": sorted(messages), "samples": samples}

    def report(self) -> dict:
        """Each client's drop, back and caught-up times, the counters, the ids seen."""
        return {
            "times": [(c.dropped_at, c.back_at, c.synced_at) for c in self.clients],
            "refused": dict(self.refused),
            "closes": dict(self.closes),
            "errors": dict(self.errors),
            "ids": {n: sorted(ids) for n, ids in self.ids.items()},
        }

    async def stop(self) -> dict:
        """Stops reconnecting and closes every socket."""
        self.stopping = True
        for client in self.clients:
            if client.socket is not None:
                client.socket.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        return {}


def _crowd_process(pipe, ports, path, headers, concurrency, seed) -> None:
    """A load-generator process holding a share of the crowd; answers the pipe's commands."""
    from bench.scenarios import raise_open_files_limit

    raise_open_files_limit()
    # uvloop, as the site's server: the crowd shares the machine's cores with the
    # server it measures, and reads thousands of sockets for less CPU this way.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve_crowd(pipe, ports, path, headers, concurrency, seed))


async def _serve_crowd(pipe, ports, path, headers, concurrency, seed) -> None:
    crowd = Crowd(ports, path, headers, concurrency, seed)
    loop = asyncio.get_running_loop()
    while True:
        command, argument = await loop.run_in_executor(None, pipe.recv)
        if command == "open":
            pipe.send(await crowd.open(argument))
        elif command == "arm":
            pipe.send(crowd.arm())
        elif command == "status":
            pipe.send(crowd.status())
        elif command == "missing":
            pipe.send(crowd.missing(argument))
        elif command == "report":
            pipe.send(crowd.report())
        else:
            pipe.send(await crowd.stop())
            return


class CrowdProxy:
    """A share of the crowd in a load-generator process of its own."""

    def __init__(self, ports, path, headers, concurrency, seed) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipe, theirs = context.Pipe()
        self.process = context.Process(
            target=_crowd_process,
            args=(theirs, list(ports), path, list(headers), concurrency, seed),
            daemon=True,
        )
        self.process.start()

    async def _ask(self, command: str, argument=None, wait: float = 60):
        self.pipe.send((command, argument))

        def answer():
            if not self.pipe.poll(wait):
                raise TimeoutError(f"a crowd process did not answer {command}")
            return self.pipe.recv()

        return await asyncio.get_running_loop().run_in_executor(None, answer)

    async def open(self, within: float) -> dict:
        """See Crowd.open."""
        return await self._ask("open", within, wait=within + 30)

    async def arm(self) -> dict:
        """See Crowd.arm."""
        return await self._ask("arm")

    async def status(self) -> dict:
        """See Crowd.status."""
        return await self._ask("status")

    async def missing(self, acked: dict[int, int]) -> dict:
        """See Crowd.missing."""
        return await self._ask("missing", acked)

    async def report(self) -> dict:
        """See Crowd.report."""
        return await self._ask("report")

    async def stop(self) -> dict:
        """See Crowd.stop; ends the process."""
        with contextlib.suppress(TimeoutError, OSError, EOFError):
            await self._ask("stop", wait=20)
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join()
        return {}


class _LocalCrowd:
    """A Crowd in this process, behind the same awaitable questions as CrowdProxy."""

    def __init__(self, crowd: Crowd) -> None:
        self.crowd = crowd

    async def open(self, within: float) -> dict:
        return await self.crowd.open(within)

    async def arm(self) -> dict:
        return self.crowd.arm()

    async def status(self) -> dict:
        return self.crowd.status()

    async def missing(self, acked: dict[int, int]) -> dict:
        return self.crowd.missing(acked)

    async def report(self) -> dict:
        return self.crowd.report()

    async def stop(self) -> dict:
        return await self.crowd.stop()


def _percentile(values: list[float], share: float) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 2)


async def storm(
    *,
    ports: Sequence[int],
    path: str,
    room: str,
    receivers: Sequence[dict],
    senders: Sequence[dict],
    restart: Callable[[], Awaitable[float]],
    health_ports: Sequence[int] = (),
    processes: int = 0,
    concurrency: int = 32,
    send_rate: float = 2.0,
    open_timeout: float = 120,
    back_within: float = 60,
    tail_seconds: float = 2.0,
    drain_seconds: float = 15.0,
    log: Callable[[str], None] = print,
) -> dict:
    """Runs one reconnect storm; returns its figures.

    `receivers` and `senders` are handshake headers (one logged-in page each), spread
    over `ports`; `restart` restarts the server(s) and returns how long they were
    down. `health_ports` are the servers' health listeners, probed beside /healthz on
    `ports`. With `processes` 0 the receivers live in this process, else in that many
    load-generator processes. The senders compose `send_rate` messages a second
    from before the restart until `tail_seconds` after every receiver is caught up.
    """
    tag = uuid.uuid4().hex[:6]
    if processes:
        crowds = [
            CrowdProxy(ports, path, receivers[share::processes], concurrency, seed=share)
            for share in range(processes)
        ]
    else:
        crowds = [_LocalCrowd(Crowd(ports, path, receivers, concurrency, seed=0))]
    sending = Crowd(ports, path, senders, concurrency, seed=99)
    composer: asyncio.Task | None = None
    composed = 0
    # /healthz asked twice a second while the clients connect, and again from the
    # restart until everyone is back: a health check must not fail a busy server.
    # The health listeners, on ports of their own, are asked the same way.
    probes = {"connecting": HealthProbe(ports), "storm": HealthProbe(ports)}
    if health_ports:
        probes["own_connecting"] = HealthProbe(health_ports)
        probes["own_storm"] = HealthProbe(health_ports)
    health = dict.fromkeys(("own_connecting", "own_storm"))

    def start_probes(stage: str) -> None:
        for phase, probe in probes.items():
            if phase.endswith(stage):  # "storm" and "own_storm", say
                probe.start()

    async def stop_probes(stage: str) -> None:
        for phase, probe in probes.items():
            if phase.endswith(stage):
                health[phase] = await probe.stop()

    try:
        began = time.monotonic()
        start_probes("connecting")
        answers = await asyncio.gather(*(c.open(open_timeout) for c in crowds))
        opened = sum(answer["opened"] for answer in answers)
        await sending.open(open_timeout)
        open_seconds = time.monotonic() - began
        await stop_probes("connecting")
        if opened < len(receivers) or not all(c.synced for c in sending.clients):
            raise RuntimeError(f"only {opened} of {len(receivers)} storm clients connected")
        log(
            f"storm: {opened:,} clients and {len(senders)} senders connected "
            f"in {open_seconds:.1f} s"
        )
        for crowd in (*crowds, _LocalCrowd(sending)):
            await crowd.arm()
        state = {"compose": True}

        async def compose() -> None:
            nonlocal composed
            pace = 1 / send_rate
            while state["compose"]:
                sender = sending.clients[composed % len(sending.clients)]
                sender.compose(composed, room, tag)
                composed += 1
                await asyncio.sleep(pace)

        composer = asyncio.create_task(compose())
        await asyncio.sleep(min(1.0, 2 * pace_of(send_rate)))
        log("storm: restarting the server")
        restarted = time.monotonic()
        down = await restart()
        log(f"storm: server back after {down:.1f} s; waiting for the clients")
        start_probes("storm")
        deadline = time.monotonic() + back_within
        status = {"back": 0, "synced": 0}
        while time.monotonic() < deadline:
            answers = [await c.status() for c in crowds] + [sending.status()]
            status = {k: sum(a[k] for a in answers) for k in ("dropped", "back", "synced")}
            # Everyone dropped is back and caught up (with one process of two
            # restarted, the other's clients are never dropped).
            if status["dropped"] and status["synced"] >= status["dropped"]:
                break
            await asyncio.sleep(0.5)
        await stop_probes("storm")
        await asyncio.sleep(tail_seconds)
        state["compose"] = False
        await composer
        composer = None
        # Every composed message acked (after retries), then delivered everywhere.
        settle = time.monotonic() + drain_seconds
        while time.monotonic() < settle and any(c.pending for c in sending.clients):  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        acked = dict(sending.acked)
        missing = {"pairs": 0, "messages": [], "samples": []}
        while time.monotonic() < settle:
            answers = [await c.missing(acked) for c in crowds] + [sending.missing(acked)]
            missing = {
                "pairs": sum(a["pairs"] for a in answers),
                "messages": sorted({n for a in answers for n in a["messages"]}),
                "samples": [sample for a in answers for sample in a["samples"]][:5],
            }
            if not missing["pairs"]:
                break
            await asyncio.sleep(0.5)
        reports = [await c.report() for c in crowds] + [sending.report()]
    finally:
        for probe in probes.values():
            await probe.stop()  # a no-op for one stopped already
        if composer is not None:
            composer.cancel()
        for crowd in crowds:
            await crowd.stop()
        await sending.stop()
    return _figures(
        reports,
        restarted,
        down,
        composed,
        acked,
        missing,
        len(receivers),
        len(senders),
        open_seconds,
        health,
    )


def pace_of(rate: float) -> float:
    """Seconds between two sends at `rate` a second."""
    return 1 / rate


def _figures(
    reports, restarted, down, composed, acked, missing, receivers, senders, opening, health
):
    times = [t for report in reports for t in report["times"]]
    back = [b - restarted for _, b, _ in times if b is not None]
    synced = [s - restarted for _, _, s in times if s is not None]
    dropped = sum(d is not None for d, _, _ in times)
    ids: dict[int, set] = {}
    for report in reports:
        for n, seen in report["ids"].items():
            ids.setdefault(int(n), set()).update(seen)
    refused: Counter = Counter()
    closes: Counter = Counter()
    errors: Counter = Counter()
    for report in reports:
        refused.update(report["refused"])
        closes.update(report["closes"])
        errors.update(report["errors"])
    unacked = composed - len(acked)
    return {
        "clients": receivers,
        "senders": senders,
        "open_seconds": round(opening, 1),
        "server_down_s": round(down, 2),
        "dropped": dropped,
        "back": len(back),
        "synced": len(synced),
        "all_back_s": round(max(back), 2) if back and len(back) == dropped else None,
        "all_synced_s": round(max(synced), 2) if synced and len(synced) == dropped else None,
        "reconnect_p50_s": _percentile(back, 0.5),
        "reconnect_p90_s": _percentile(back, 0.9),
        "synced_p90_s": _percentile(synced, 0.9),
        "handshakes_refused": sum(refused.values()),
        "refusals": dict(refused),
        "close_codes": dict(closes),
        "error_frames": dict(errors),
        "messages_sent": composed,
        "messages_acked": len(acked),
        "unacked": unacked,
        "missing_copies": missing["pairs"],
        "lost": unacked + len(missing["messages"]),
        "lost_messages": missing["messages"][:20],
        "missing_samples": missing["samples"],
        "doubled": sum(len(seen) > 1 for seen in ids.values()),
        "health_connecting": health["connecting"],
        "health_storm": health["storm"],
        # None without health listeners.
        "health_own_connecting": health["own_connecting"],
        "health_own_storm": health["own_storm"],
    }
