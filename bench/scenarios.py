"""The load: each scenario drives one running target over real websockets and returns figures.

Every loop is bounded (a fixed number of messages or sockets, a fixed duration, a
deadline). Latency is measured end to end: the sender writes `time.time()` into the
message body and the receiver subtracts it on arrival (all processes share the
machine's clock). CPU time of the server, its Redis and every load-generator
process is sampled around each step, so a saturated load generator is reported
instead of being mistaken for a slow server. The room run is made twice: as it is,
and with stalled readers in the room (clients that asked for megabytes and never
read), whose figures must match the first.
"""

import asyncio
import contextlib
import itertools
import json
import multiprocessing
import os
import random
import re
import resource
import time
import uuid
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psutil

from bench import storm as storm_module
from bench import wsclient
from bench.targets import HOST, STALLED_READER_LIMITS, Target

# A target that passes a room step delivers everything with p99 at most this.
ROOM_P99_LIMIT_MS = 100
# The site's goal for direct messages.
DIRECT_P99_LIMIT_MS = 50
# A process above this share of one core is saturated (a load-generator process
# then is the bottleneck itself).
LOADGEN_SATURATED = 0.9
# Below this share of the offered send rate, the generator could not keep up.
SEND_RATE_SHORTFALL = 0.95
# A step that failed while other processes used (or the hypervisor took) this much of
# a core is repeated once.
NOISY_OTHERS = 0.5
# Messages in the room of long messages (targets.LONG_ROOM): the largest history page.
LONG_MESSAGES = 100
# How often the stalled readers are checked for having been dropped by the server.
STALLED_CHECK_SECONDS = 0.5
# The mixed run: after every CHANGE_EVERY messages, the sender of the last one edits
# one of its own messages of the step and adds or takes back a reaction on one of
# the RECENT_MESSAGES latest.
CHANGE_EVERY = 5
RECENT_MESSAGES = 20
REACTIONS = ("👍", "🎉", "❤️", "😂")

# A room message's body: "r<step> <n> <sent at>"; in the mixed run, an edited one's is
# "e<step> <n> <edited at>".
_ROOM_BODY = re.compile(rb'"body": ?"([re])(\d+) (\d+) (\d+\.\d+)')
_MESSAGE_ID = re.compile(rb'"id": ?(\d+)')
_REV = re.compile(rb'"rev": ?(\d+)')
_DIRECT_BODY = re.compile(rb'"body": ?"d(\d+) (\d+) (\d+\.\d+) (\d+)')


@dataclass(frozen=True)
class Sizes:
    """How much load each scenario drives; FULL for `make bench`, SMOKE for the test."""

    room_receivers: int
    room_senders: int
    room_rates: tuple[int, ...]
    room_step_seconds: float
    drain_seconds: float
    direct_users: int
    direct_rates: tuple[int, ...]
    direct_step_seconds: float
    connections: int
    connection_users: int
    connect_concurrency: int
    connect_seconds: float
    presence_users: int
    presence_spread_seconds: float
    presence_timeout: float
    history_messages: int
    history_clients: int
    history_requests: int
    # Sockets that never read, in the room for the whole slow-reader run, each
    # asking for this many pages of LONG_MESSAGES long messages.
    stalled_readers: int
    stalled_pages: int
    receiver_processes: int = 1
    settle_seconds: float = 1.5
    # Searchable messages of varied words (0: no search scenario data), and searches.
    search_messages: int = 1_000_000
    search_requests: int = 300
    # The reconnect storm: clients (logged in as storm_users users, in turn), the
    # senders among them, the messages a second they compose, the load-generator
    # processes holding the clients, and how long to wait for everyone to be back.
    storm_clients: int = 10_000
    storm_users: int = 10_000
    storm_senders: int = 2
    storm_send_rate: float = 1.0
    storm_processes: int = 4
    storm_timeout: float = 45
    # The two-process site's room steps: it starts where one process is well within
    # its capacity, so the steps below tell nothing new and only cost time.
    room_rates_2p: tuple[int, ...] = (50, 100, 200, 300, 400, 500, 600, 800, 1000, 1500, 2000)


FULL = Sizes(
    room_receivers=100,
    room_senders=10,
    # 20 and 30 msg/s left out to make room for the storm and site-2p in 10 minutes:
    # every target held them in every run so far (docs/performance.md).
    room_rates=(10, 50, 75, 100, 150, 200, 300, 400, 500, 600, 800, 1000, 1500),
    room_step_seconds=3,
    drain_seconds=3,
    direct_users=100,
    direct_rates=(500, 1000, 2000),
    direct_step_seconds=4,
    connections=10_000,
    connection_users=10,
    connect_concurrency=8,
    connect_seconds=130,
    presence_users=500,
    presence_spread_seconds=2,
    presence_timeout=10,
    history_messages=1_000_000,
    history_clients=4,
    history_requests=400,
    stalled_readers=3,
    stalled_pages=8,
)

SMOKE = Sizes(
    room_receivers=10,
    room_senders=2,
    room_rates=(10, 20),
    room_step_seconds=1,
    drain_seconds=2,
    direct_users=6,
    direct_rates=(20, 50),
    direct_step_seconds=1,
    connections=60,
    connection_users=2,
    connect_concurrency=8,
    connect_seconds=20,
    presence_users=12,
    presence_spread_seconds=0.5,
    presence_timeout=5,
    history_messages=1_000,
    history_clients=2,
    history_requests=20,
    stalled_readers=1,
    stalled_pages=8,
    settle_seconds=0.5,
    search_messages=1_000,
    search_requests=24,
    storm_clients=20,
    storm_users=20,
    storm_senders=2,
    storm_send_rate=5.0,
    storm_processes=1,
    storm_timeout=60,
    room_rates_2p=(10, 20),
)


def accounts_needed(sizes: Sizes) -> dict[str, int]:
    """The site users each scenario logs in with (the presence observer included)."""
    return {
        "room": sizes.room_receivers + sizes.room_senders,
        "dm": sizes.direct_users,
        "presence": sizes.presence_users + 1,
        "conn": sizes.connection_users,
        "hist": sizes.history_clients,
        "stall": sizes.stalled_readers,
        "storm": sizes.storm_users,
        "stormsend": sizes.storm_senders,
    }


@dataclass
class Run:
    """What every scenario needs besides its target: sizes, progress output, the deadline."""

    sizes: Sizes
    log: Callable[[str], None]
    deadline: float  # time.monotonic() after which no new step starts

    def out_of_time(self) -> bool:
        """Tells whether the run's time budget is spent."""
        return time.monotonic() >= self.deadline


def raise_open_files_limit() -> int:
    """Raises this process's open-files limit to its hard limit; returns it.

    Child processes (the servers under test) inherit it.
    """
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# --- Measuring ----------------------------------------------------------------------


def latency_summary(seconds: Sequence[float]) -> dict[str, float | None]:
    """p50, p99 and max of latencies given in seconds, in milliseconds."""
    ordered = sorted(seconds)
    if not ordered:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}

    def at(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000, 2)

    return {"p50_ms": at(0.50), "p99_ms": at(0.99), "max_ms": round(ordered[-1] * 1000, 2)}


class CpuMeter:
    """CPU seconds per wall second of named processes over a window (1.0 = one full core).

    `others` is what the rest of the machine used meanwhile (other people's tests,
    browsers), and `stolen` what the hypervisor gave to other virtual machines while
    this one wanted to run (Linux's steal time): on a shared machine either explains
    a noisy step. Steal is kept apart because it is no process here: on a virtual
    machine whose cores are shared it can take half of every core.
    """

    def __init__(self, processes: dict[str, psutil.Process | Callable[[], psutil.Process]]) -> None:
        # A callable gives the process as it is now: a restarted server is a new one.
        self.processes = processes
        self._start: dict[str, tuple[int, float]] = {}
        self._busy = (0.0, 0.0)
        self._wall = 0.0

    @staticmethod
    def _cpu(process: psutil.Process) -> float:
        try:
            times = process.cpu_times()
        except psutil.Error:
            return 0.0
        return times.user + times.system

    @staticmethod
    def _machine_busy() -> tuple[float, float]:
        """CPU seconds the machine was busy (steal included), and of them stolen."""
        times = psutil.cpu_times()
        return sum(times) - times.idle - getattr(times, "iowait", 0.0), getattr(times, "steal", 0.0)

    def _now(self) -> dict[str, tuple[int, float]]:
        found = {}
        for name, process in self.processes.items():
            process = process() if callable(process) else process
            found[name] = (process.pid, self._cpu(process))
        return found

    def start(self) -> None:
        """Opens the window."""
        self._wall = time.monotonic()
        self._busy = self._machine_busy()
        self._start = self._now()

    def stop(self) -> dict[str, float]:
        """Closes the window; returns each process's share of one core, and the others'.

        A process restarted meanwhile counts from its new start (what the old one used
        after the window opened is not known any more)."""
        wall = max(time.monotonic() - self._wall, 1e-6)
        shares = {}
        for name, (pid, used) in self._now().items():
            began_pid, began = self._start.get(name, (pid, 0.0))
            shares[name] = round((used - (began if pid == began_pid else 0.0)) / wall, 3)
        busy_now, steal_now = self._machine_busy()
        busy, stolen = busy_now - self._busy[0], max((steal_now - self._busy[1]) / wall, 0.0)
        shares["others"] = round(max(busy / wall - stolen - sum(shares.values()), 0.0), 3)
        shares["stolen"] = round(stolen, 3)
        return shares


def _meter(target: Target, loadgen: dict[str, int]) -> CpuMeter:
    processes: dict = {"server": lambda: target.servers[0].ps}
    # A second server process (site-2p) is "server2".
    for number, server in enumerate(target.servers[1:], start=2):
        processes[f"server{number}"] = lambda server=server: server.ps
    if target.redis is not None:
        processes["redis"] = target.redis.ps
    for name, pid in loadgen.items():
        processes[name] = psutil.Process(pid)
    return CpuMeter(processes)


def whole_scenario_meter(target: Target) -> CpuMeter:
    """A meter of the server, its Redis and this process, for a whole scenario."""
    return _meter(target, {"loadgen-main": os.getpid()})


def machine_load(seconds: float = 1.0) -> dict[str, float]:
    """What other processes use now (`others`) and the hypervisor takes (`stolen`), in
    cores, measured over `seconds`."""
    meter = CpuMeter({"loadgen-main": psutil.Process()})
    meter.start()
    time.sleep(seconds)
    shares = meter.stop()
    return {"others": shares["others"], "stolen": shares["stolen"]}


def _judge_load(cpu: dict[str, float], offered: float, achieved: float) -> dict:
    """Says whether the load generator, rather than the server, limited this step."""
    busy = [
        name
        for name, share in cpu.items()
        if name.startswith("loadgen") and share >= LOADGEN_SATURATED
    ]
    short = achieved < SEND_RATE_SHORTFALL * offered
    return {
        "loadgen_bound": bool(busy) or short,
        "loadgen_busy": busy,
        "send_rate_short": short,
        # The server's event loop holds the GIL: one core is all it can use.
        "server_saturated": cpu.get("server", 0.0) >= LOADGEN_SATURATED,
        # Every core busy: server and load generator took turns on the CPUs.
        "machine_saturated": sum(cpu.values()) >= LOADGEN_SATURATED * (os.cpu_count() or 1),
    }


async def quiesce(target: Target, *, limit: float = 20) -> float:
    """Waits until the server is nearly idle (its backlog worked off); returns the wait."""
    began = time.monotonic()
    meter = CpuMeter({str(n): (lambda s=server: s.ps) for n, server in enumerate(target.servers)})
    while time.monotonic() - began < limit:
        meter.start()
        await asyncio.sleep(0.5)
        shares = meter.stop()
        if all(shares[str(n)] < 0.2 for n in range(len(target.servers))):
            break
    return round(time.monotonic() - began, 1)


# --- Opening sockets ----------------------------------------------------------------


def _headers(target: Target, group: str, count: int) -> list[dict[str, str]]:
    """Handshake headers for `count` sockets; the site's cycle through the group's users."""
    users = target.accounts.get(group)
    if not users:
        return [target.headers() for _ in range(count)]
    return [target.headers(users[i % len(users)][1]) for i in range(count)]


def _describe(error: BaseException) -> str:
    if isinstance(error, wsclient.HandshakeRefused):
        return f"HTTP {error.status}"
    if isinstance(error, TimeoutError):
        return "timeout"
    return error.__class__.__name__


async def open_many(
    port: int | Sequence[int],
    path: str,
    headers: list[dict[str, str]],
    *,
    concurrency: int,
    on_text: Callable[[int], Callable[[bytes], None]] | None = None,
    until: float | None = None,
    give_up_after: int = 20,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[wsclient.Socket | None], list[float], Counter]:
    """Opens one socket per header set, `concurrency` handshakes at a time; with several
    ports, socket i goes to port i modulo their number (the processes of site-2p).

    Stops early at `until` (monotonic) or after `give_up_after` failures in a row.
    Returns the sockets (None where opening failed), handshake times and errors.
    """
    sockets: list[wsclient.Socket | None] = [None] * len(headers)
    handshakes: list[float] = []
    errors: Counter = Counter()
    state = {"next": 0, "failures_in_a_row": 0}
    ports = [port] if isinstance(port, int) else list(port)

    async def opener() -> None:
        while state["next"] < len(headers) and state["failures_in_a_row"] < give_up_after:
            if until is not None and time.monotonic() >= until:
                return
            index = state["next"]
            state["next"] += 1
            began = time.perf_counter()
            try:
                socket = await wsclient.connect(
                    HOST,
                    ports[index % len(ports)],
                    path,
                    headers=for_port(headers[index], ports[index % len(ports)]),
                    on_text=on_text(index) if on_text else _ignore,
                )
            except (OSError, TimeoutError, wsclient.HandshakeRefused) as error:
                errors[_describe(error)] += 1
                state["failures_in_a_row"] += 1
                continue
            handshakes.append(time.perf_counter() - began)
            state["failures_in_a_row"] = 0
            sockets[index] = socket
            if progress is not None:
                progress(len(handshakes))

    await asyncio.gather(*(opener() for _ in range(concurrency)))
    return sockets, handshakes, errors


def for_port(headers: dict[str, str], port: int) -> dict[str, str]:
    """The headers for a socket to `port`: the site checks Origin against its own address."""
    if "Origin" not in headers:
        return headers
    return {**headers, "Origin": f"http://{HOST}:{port}"}


def _ignore(payload: bytes) -> None:
    pass


async def close_all(sockets: Sequence[wsclient.Socket | None], *, wait: float = 2) -> None:
    """Closes every socket and waits briefly for the connections to go."""
    open_sockets = [s for s in sockets if s is not None and s.is_open]
    for socket in open_sockets:
        socket.close()
    if open_sockets:
        await asyncio.wait([s.closed for s in open_sockets], timeout=wait)


# --- Connections --------------------------------------------------------------------


async def connections(target: Target, run: Run) -> dict:
    """Opens idle sockets up to the limit; server memory per socket and handshake times."""
    sizes = run.sizes
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    wanted = min(sizes.connections, limit - 200)
    headers = _headers(target, "conn", wanted)
    # One socket first, so lazily loaded code is in memory before the baseline.
    warm = await wsclient.connect(HOST, target.port, target.page_path, headers=headers[0])
    await asyncio.sleep(0.5)
    rss_before = target.server.rss()

    def progress(opened: int) -> None:
        if opened % 2000 == 0:
            run.log(f"{target.name}: connections: {opened:,} open")

    # The server's CPU per handshake holds where the rate does not: on a machine whose
    # cores are shared (steal), the rate follows the hypervisor; the CPU spent does not.
    meter = whole_scenario_meter(target)
    meter.start()
    began = time.monotonic()
    sockets, handshakes, errors = await open_many(
        target.port,
        target.page_path,
        headers[1:],
        concurrency=sizes.connect_concurrency,
        until=min(began + sizes.connect_seconds, run.deadline),
        progress=progress,
    )
    opening = time.monotonic() - began
    opening_cpu = meter.stop()
    await asyncio.sleep(1.0)  # idle: let the server finish greeting them
    opened = [s for s in sockets if s is not None]
    alive = sum(s.is_open for s in [warm, *opened])
    rss_after = target.server.rss()
    await close_all([warm, *opened], wait=5)
    result = {
        "wanted": wanted,
        "opened": len(opened) + 1,
        "alive_after_1s": alive,
        "errors": dict(errors),
        "open_seconds": round(opening, 1),
        "opens_per_s": round(len(opened) / max(opening, 1e-6), 1),
        "handshake": latency_summary(handshakes),
        "opening_cpu": opening_cpu,
        "server_cpu_ms_per_handshake": round(
            sum(v for k, v in opening_cpu.items() if k.startswith("server"))
            * opening
            * 1000
            / max(len(opened), 1),
            2,
        ),
        "server_rss_before_mib": round(rss_before / 2**20, 1),
        "server_rss_after_mib": round(rss_after / 2**20, 1),
        "kib_per_connection": round((rss_after - rss_before) / max(len(opened), 1) / 1024, 1),
        "open_files_limit": limit,
    }
    run.log(
        f"{target.name}: connections: {result['opened']:,} of {wanted:,} open "
        f"({result['opens_per_s']}/s, server CPU {result['server_cpu_ms_per_handshake']} ms "
        f"each), {result['kib_per_connection']} KiB each, "
        f"handshake p99 {result['handshake']['p99_ms']} ms, errors {dict(errors) or 'none'}"
    )
    return result


# --- Room fan-out -------------------------------------------------------------------


def _receiver_process(
    pipe, port: int, path: str, headers: list[dict], concurrency: int, keep_copies: bool
) -> None:
    """A load-generator process holding room receivers; answers commands from the pipe."""
    raise_open_files_limit()
    asyncio.run(_receive(pipe, port, path, headers, concurrency, keep_copies))


class _Copies:
    """What each receiving socket of the mixed run holds: per message id, the frame with
    the highest `rev`, as a client keeps it. Lives in a receiver process."""

    def __init__(self) -> None:
        # step -> socket index -> message id -> (rev, body, frame)
        self.held: defaultdict[int, defaultdict[int, dict]] = defaultdict(lambda: defaultdict(dict))

    def keep(self, index: int, step: int, body: bytes, payload: bytes) -> bool:
        """Keeps a `message` frame if it is newer; tells whether it shows something new:
        the message itself, or an edit (a body) this socket had not seen."""
        ident = int(_MESSAGE_ID.search(payload)[1])
        rev = int(_REV.search(payload)[1])
        mine = self.held[step][index]
        before = mine.get(ident)
        if before is not None and rev <= before[0]:
            return False
        mine[ident] = (rev, body, payload)
        return before is None or body != before[1]

    def check(self, step: int, final: dict[int, dict], sockets: list[int]) -> dict[str, int]:
        """Compares every socket's copies of a step with the server's final state; forgets them.

        A copy is missing, stale (an older rev), wrong (the final rev with other
        content) or unexpected (a message the server does not list).
        """
        held = self.held.pop(step, {})
        decoded: dict[bytes, dict] = {}  # every socket got the same bytes: decode once
        found = Counter(missing=0, stale=0, wrong=0, unexpected=0)
        for index in sockets:
            mine = held.get(index, {})
            for ident, message in final.items():
                copy = mine.get(ident)
                if copy is None:
                    found["missing"] += 1
                elif copy[0] < message["rev"]:
                    found["stale"] += 1
                else:
                    payload = copy[2]
                    if payload not in decoded:
                        decoded[payload] = json.loads(payload)
                    found["wrong"] += decoded[payload] != message
            found["unexpected"] += len(mine.keys() - final.keys())
        return {"checked": len(sockets) * len(final), **found}


async def _receive(
    pipe, port: int, path: str, headers: list[dict], concurrency: int, keep_copies: bool
) -> None:
    counts: Counter = Counter()
    # Per (step, b"r") for new messages and (step, b"e") for edits.
    latencies: defaultdict[tuple[int, bytes], array] = defaultdict(lambda: array("d"))
    last_arrival: dict[int, float] = {}
    copies = _Copies() if keep_copies else None

    def on_text(index: int) -> Callable[[bytes], None]:
        def receive(payload: bytes) -> None:
            match = _ROOM_BODY.search(payload)
            if match is None:
                return  # hello, presence, users
            now = time.time()
            step = int(match[2])
            counts[step] += 1
            last_arrival[step] = now
            # Latency is that of new messages and of edits: a reaction carries no time.
            if copies is None or copies.keep(index, step, match[0], payload):
                latencies[step, match[1]].append(now - float(match[4]))

        return receive

    sockets, _, errors = await open_many(
        port, path, headers, concurrency=concurrency, on_text=on_text
    )
    pipe.send({"opened": sum(s is not None for s in sockets), "errors": dict(errors)})
    loop = asyncio.get_running_loop()
    while True:
        command, step, final = await loop.run_in_executor(None, pipe.recv)
        if command == "count":
            pipe.send({"count": counts[step]})
        elif command == "collect":
            pipe.send(
                {
                    "count": counts[step],
                    "latencies": latencies.pop((step, b"r"), array("d")).tobytes(),
                    "edit_latencies": latencies.pop((step, b"e"), array("d")).tobytes(),
                    "last_arrival": last_arrival.get(step),
                    "open": sum(s is not None and s.is_open for s in sockets),
                }
            )
        elif command == "check":
            opened = [i for i, s in enumerate(sockets) if s is not None]
            pipe.send(copies.check(step, final, opened))
        else:
            await close_all(sockets)
            pipe.send({})
            return


class _Receivers:
    """The receiving sockets of the room, spread over load-generator processes.

    With `keep_copies` (the mixed run) each socket also keeps the messages it holds.
    """

    def __init__(
        self,
        target: Target,
        headers: list[dict],
        processes: int,
        concurrency: int,
        keep_copies: bool = False,
    ):
        context = multiprocessing.get_context("spawn")
        self.workers = []
        for share in range(processes):
            ours, theirs = context.Pipe()
            process = context.Process(
                target=_receiver_process,
                args=(
                    theirs,
                    target.ports,
                    target.path,
                    headers[share::processes],
                    concurrency,
                    keep_copies,
                ),
                daemon=True,
            )
            process.start()
            self.workers.append((process, ours))

    @property
    def pids(self) -> dict[str, int]:
        """Load-generator name and pid of each receiving process."""
        return {f"loadgen-recv{n}": process.pid for n, (process, _) in enumerate(self.workers)}

    async def _ask(
        self, pipe, command: str, step: int, wait: float = 60, final: dict | None = None
    ) -> dict:
        loop = asyncio.get_running_loop()
        if command:
            pipe.send((command, step, final))

        def answer():
            if not pipe.poll(wait):
                raise TimeoutError(f"a receiver process did not answer {command or 'ready'}")
            return pipe.recv()

        return await loop.run_in_executor(None, answer)

    async def ready(self) -> tuple[int, Counter]:
        """Waits until every process has opened its sockets; returns how many opened."""
        answers = [await self._ask(pipe, "", 0, wait=120) for _, pipe in self.workers]
        errors = sum((Counter(a["errors"]) for a in answers), Counter())
        return sum(a["opened"] for a in answers), errors

    async def count(self, step: int) -> int:
        """Deliveries of a step so far."""
        return sum([(await self._ask(pipe, "count", step))["count"] for _, pipe in self.workers])

    async def collect(self, step: int) -> tuple[int, array, array, float | None]:
        """Deliveries, latencies of new messages and of edits, and last arrival of a step
        (forgotten by the receivers)."""
        delivered, latencies, edit_latencies, last = 0, array("d"), array("d"), None
        for _, pipe in self.workers:
            answer = await self._ask(pipe, "collect", step)
            delivered += answer["count"]
            latencies.frombytes(answer["latencies"])
            edit_latencies.frombytes(answer["edit_latencies"])
            if answer["last_arrival"] is not None:
                last = max(last or 0.0, answer["last_arrival"])
        return delivered, latencies, edit_latencies, last

    async def check(self, step: int, final: dict[int, dict]) -> dict[str, int]:
        """Compares every socket's copies of a step's messages with their final state."""
        found: Counter = Counter()
        for _, pipe in self.workers:
            found.update(await self._ask(pipe, "check", step, final=final))
        return dict(found)

    async def stop(self) -> None:
        """Closes the sockets and ends the processes."""
        for process, pipe in self.workers:
            with contextlib.suppress(TimeoutError, OSError, EOFError):
                await self._ask(pipe, "stop", 0, wait=15)
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join()


async def _pace(rate: float, count: int, send: Callable[[int], None]) -> float:
    """Calls send(n) for n = 0 … count-1, `rate` per second by the clock; returns the seconds."""
    began = time.monotonic()
    sent = 0
    while sent < count:
        due = min(count, int((time.monotonic() - began) * rate) + 1)
        while sent < due:
            send(sent)
            sent += 1
        # A late loop catches up in one burst instead of lowering the offered rate.
        await asyncio.sleep(max(0.0, began + sent / rate - time.monotonic()))
    return time.monotonic() - began


class _StalledReaders:
    """Sockets in the room that asked for megabytes and never read, kept there for a run.

    Each asks for `stalled_pages` pages of the long messages and then reads nothing,
    so the server's writes to it stall: the kernel's send buffer takes a megabyte or
    two, the rest waits in the server. The site target lets them stay for the whole
    run (targets.STALLED_READER_LIMITS); should the server give one up all the same
    (4008, the connection dropped), another takes its place, as a client would that
    reconnects after 4008 and stalls again.
    """

    def __init__(self, target: Target, run: Run) -> None:
        sizes = run.sizes
        self.target = target
        self.users = target.accounts["stall"][: sizes.stalled_readers]
        page = {"type": "history", "room": target.long_history["room"], "limit": LONG_MESSAGES}
        self.requests = [json.dumps(page)] * sizes.stalled_pages
        self.asked_chars = sizes.stalled_pages * LONG_MESSAGES * target.long_history["body_chars"]
        self.readers: list[wsclient.StalledReader | None] = [None] * len(self.users)
        self.opened_at = [0.0] * len(self.users)
        self.given_up: list[float] = []  # when the server dropped one (time.monotonic())
        self.lifetimes: list[float] = []  # seconds each dropped one was connected
        self.errors: Counter = Counter()
        self._keeper: asyncio.Task | None = None

    @property
    def present(self) -> int:
        """How many are connected, as last checked."""
        return sum(reader is not None for reader in self.readers)

    async def _open(self, index: int) -> None:
        try:
            self.readers[index] = await wsclient.StalledReader.open(
                HOST,
                self.target.port,
                self.target.path,
                headers=self.target.headers(self.users[index][1]),
                requests=self.requests,
            )
        except (OSError, TimeoutError, wsclient.HandshakeRefused) as error:
            self.errors[_describe(error)] += 1
            return
        self.opened_at[index] = time.monotonic()

    async def start(self) -> None:
        """Opens every stalled reader, then keeps them in place until `stop()`."""
        await asyncio.gather(*(self._open(i) for i in range(len(self.users))))
        if self.present < len(self.users):
            raise RuntimeError(f"stalled readers failed to open: {dict(self.errors)}")
        self._keeper = asyncio.create_task(self._keep())

    async def _keep(self) -> None:
        """Replaces every stalled reader the server has dropped."""
        while True:
            await asyncio.sleep(STALLED_CHECK_SECONDS)
            for index, reader in enumerate(self.readers):
                if reader is not None and reader.dropped():
                    now = time.monotonic()
                    self.given_up.append(now)
                    self.lifetimes.append(now - self.opened_at[index])
                    reader.close()
                    self.readers[index] = None
            missing = [i for i, reader in enumerate(self.readers) if reader is None]
            await asyncio.gather(*(self._open(i) for i in missing))

    def given_up_since(self, moment: float) -> int:
        """How many the server dropped after `moment` (time.monotonic())."""
        return sum(at > moment for at in self.given_up)

    async def stop(self) -> None:
        """Stops replacing them and drops the connections."""
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        for reader in self.readers:
            if reader is not None:
                reader.close()

    def summary(self) -> dict:
        """The run's figures about the stalled readers, with the server's own count."""
        # The server logs every socket it gives up as too slow; these users are
        # this scenario's alone.
        names = [f"socket too slow: user={name} " for name, _ in self.users]
        log = self.target.server.log.read_text(errors="replace").splitlines()
        ordered = sorted(self.lifetimes)
        return {
            "stalled_readers": len(self.users),
            "stalled_server_limits": STALLED_READER_LIMITS,
            "stalled_asked_chars": self.asked_chars,
            "stalled_given_up": len(self.given_up),
            "stalled_too_slow_logged": sum(any(n in line for n in names) for line in log),
            "stalled_lifetime_s": {
                "min": round(ordered[0], 1),
                "median": round(ordered[len(ordered) // 2], 1),
                "max": round(ordered[-1], 1),
            }
            if ordered
            else None,
            "stalled_open_errors": dict(self.errors),
        }


class _Changes:
    """The mixed run's changes: senders edit their own messages and react to recent ones.

    It knows what the senders did (their `ack` frames, the changes they sent) and
    reads the server's state with `sync` `since` a revision on a socket of its own,
    so that each step is checked twice once the server is quiet: the stored state
    against what was done, and every receiver's copies against the stored state.
    Changes touch the current step's messages only, so each step is checked alone.
    """

    def __init__(self, target: Target, names: list[str]) -> None:
        self.target = target
        self.names = names  # the senders' usernames, by sender index
        self.senders: list[wsclient.Socket] = []
        self.picker = random.Random(5)
        self._checker: wsclient.Socket | None = None
        self._answers: asyncio.Queue[dict] = asyncio.Queue()
        self._since = 0  # the newest revision the checker has read
        self.begin(-1, "")

    def begin(self, step: int, prefix: str) -> None:
        """Starts step `step`, whose messages' client ids start with `prefix`."""
        self.step = step
        self.prefix = prefix
        self.sent: dict[str, tuple[int, str]] = {}  # client id -> (sender, body)
        self.bodies: dict[int, str] = {}  # message id -> its body, as last sent
        self.edited: set[int] = set()
        self.own: list[list[int]] = [[] for _ in self.names]  # acknowledged, per sender
        self.recent: list[int] = []  # acknowledged, in order
        self.reactions: defaultdict[int, dict[str, set[str]]] = defaultdict(dict)
        self.edits = self.reacts = 0
        self.errors: list[dict] = []

    def on_text(self, index: int) -> Callable[[bytes], None]:
        """The frame handler of sender `index`: notes acks and refusals."""

        def receive(payload: bytes) -> None:
            if payload.startswith(b'{"type":"ack"'):
                ack = json.loads(payload)
                sent = self.sent.get(ack["client_id"])
                if sent is not None:  # else a late ack of an earlier step
                    self.bodies[ack["id"]] = sent[1]
                    self.own[sent[0]].append(ack["id"])
                    self.recent.append(ack["id"])
            elif payload.startswith(b'{"type":"error"'):
                self.errors.append(json.loads(payload))

        return receive

    def message(self, sender: int, n: int, frame: dict) -> None:
        """Notes message `n` of the step; after every CHANGE_EVERY, its sender makes changes."""
        self.sent[frame["client_id"]] = (sender, frame["body"])
        if n % CHANGE_EVERY == CHANGE_EVERY - 1:
            self._edit(sender, n)
            self._react(sender)

    def _edit(self, sender: int, n: int) -> None:
        """Edits the sender's newest message of the step not edited yet, if one is acked."""
        ident = next((i for i in reversed(self.own[sender]) if i not in self.edited), None)
        if ident is None:
            return
        body = f"e{self.step} {n} {time.time():.6f}"
        self.senders[sender].send_text(json.dumps({"type": "edit", "id": ident, "body": body}))
        self.bodies[ident] = body
        self.edited.add(ident)
        self.edits += 1

    def _react(self, sender: int) -> None:
        """Adds the sender's reaction to a recent message, or takes it back if it is there."""
        if not self.recent:
            return
        ident = self.picker.choice(self.recent[-RECENT_MESSAGES:])
        emoji = self.picker.choice(REACTIONS)
        users = self.reactions[ident].setdefault(emoji, set())
        name = self.names[sender]
        on = name not in users
        (users.add if on else users.discard)(name)
        frame = {"type": "react", "id": ident, "emoji": emoji, "on": on}
        self.senders[sender].send_text(json.dumps(frame))
        self.reacts += 1

    @property
    def changes(self) -> int:
        """Edits and reactions sent in this step."""
        return self.edits + self.reacts

    async def open_checker(self, headers: dict[str, str]) -> None:
        """Opens the socket that reads the server's state; starts from its `hello` rev."""

        def receive(payload: bytes) -> None:
            if payload.startswith((b'{"type":"hello"', b'{"type":"sync"', b'{"type":"error"')):
                self._answers.put_nowait(json.loads(payload))

        self._checker = await wsclient.connect(
            HOST, self.target.port, self.target.path, headers=headers, on_text=receive
        )
        hello = await asyncio.wait_for(self._answers.get(), 30)
        self._since = hello["rev"]

    def close_checker(self) -> None:
        """Closes the checker's socket."""
        if self._checker is not None:
            self._checker.close()

    async def final_state(self) -> dict[int, dict]:
        """The step's messages as the server has them now (`sync` `since` the last read)."""
        final: dict[int, dict] = {}
        while True:
            self._checker.send_text(json.dumps({"type": "sync", "since": self._since}))
            answer = await asyncio.wait_for(self._answers.get(), 30)
            if answer["type"] != "sync":
                raise RuntimeError(f"the checker's sync was refused: {answer}")
            for message in answer["messages"]:
                if message.get("room") == self.target.room and message["client_id"].startswith(
                    self.prefix
                ):
                    final[message["id"]] = message
            self._since = answer["last_rev"]
            if not answer["has_more"]:
                return final

    def server_lost(self, final: dict[int, dict]) -> int:
        """Counts the step's messages whose stored state misses something the senders did
        (a message never acknowledged counts too)."""
        lost = len(self.sent) - len(self.bodies)
        for ident, body in self.bodies.items():
            message = final.get(ident)
            if message is None:
                lost += 1
                continue
            wanted = {emoji: users for emoji, users in self.reactions[ident].items() if users}
            stored = {entry["emoji"]: set(entry["users"]) for entry in message["reactions"]}
            lost += (
                message["body"] != body
                or message["deleted"]
                or (message["edited_at"] is not None) != (ident in self.edited)
                or stored != wanted
            )
        return lost


async def room(target: Target, run: Run) -> dict:
    """Stepped send rates into one room of receivers; capacity is the best clean step."""
    return await _room_run(target, run)


async def room_slow_reader(target: Target, run: Run) -> dict:
    """The room run again, with stalled readers in the room from before its first step."""
    stalled = _StalledReaders(target, run)
    result = await _room_run(target, run, stalled=stalled)
    return {**result, **stalled.summary()}


async def mixed(target: Target, run: Run) -> dict:
    """The room run again, the senders also editing and reacting; every receiver must end
    with every message in its final state."""
    names = [name for name, _ in target.accounts["room"]]
    sizes = run.sizes
    changes = _Changes(target, names[sizes.room_receivers :][: sizes.room_senders])
    result = await _room_run(target, run, changes=changes)
    return {**result, "change_every": CHANGE_EVERY}


async def _room_run(
    target: Target,
    run: Run,
    *,
    stalled: _StalledReaders | None = None,
    changes: _Changes | None = None,
) -> dict:
    """Opens the room's receivers and senders (and stalled readers, or the mixed run's
    checker), then steps the rate."""
    sizes = run.sizes
    label = _room_label(stalled, changes)
    headers = _headers(target, "room", sizes.room_receivers + sizes.room_senders)
    receivers = _Receivers(
        target,
        headers[: sizes.room_receivers],
        sizes.receiver_processes,
        concurrency=8,
        keep_copies=changes is not None,
    )
    senders: list = []
    steps: list[dict] = []
    try:
        opened, errors = await receivers.ready()
        senders, _, sender_errors = await open_many(
            target.ports,
            target.path,
            headers[sizes.room_receivers :],
            concurrency=8,
            on_text=changes.on_text if changes is not None else None,
        )
        senders = [s for s in senders if s is not None]
        errors += sender_errors
        if opened < sizes.room_receivers or len(senders) < sizes.room_senders:
            raise RuntimeError(
                f"only {opened} receivers and {len(senders)} senders opened: {dict(errors)}"
            )
        if stalled is not None:
            await stalled.start()
            # Building their megabytes of answers keeps the server busy for a moment.
            await quiesce(target)
        if changes is not None:
            changes.senders = senders
            # A second socket of the first sender's user reads the server's state.
            await changes.open_checker(headers[sizes.room_receivers])
        run.log(
            f"{target.name}: {label}: {opened} receivers, {len(senders)} senders "
            f"(receivers in {sizes.receiver_processes} process(es))"
            + (f", {stalled.present} stalled readers" if stalled else "")
        )
        # Let the join's presence burst pass (and the stalled readers' answers stall).
        await asyncio.sleep(sizes.settle_seconds)
        meter = _meter(target, {"loadgen-main": os.getpid(), **receivers.pids})
        tag = uuid.uuid4().hex[:6]
        ids = itertools.count()
        rates = sizes.room_rates_2p if len(target.servers) > 1 else sizes.room_rates
        for rate in rates:
            if run.out_of_time():
                run.log(f"{target.name}: {label}: out of time, no more steps")
                break

            async def attempt(rate=rate) -> dict:
                step = next(ids)
                return await _room_step(
                    target, run, receivers, senders, meter, step, rate, tag, stalled, changes
                )

            result = await _unless_noise(target, run, label, attempt)
            steps.append(result)
            if not result["ok"]:
                break
    finally:
        if stalled is not None:
            await stalled.stop()
        if changes is not None:
            changes.close_checker()
        await close_all(senders)
        await receivers.stop()
    clean = [s for s in steps if s["ok"]]
    best = max(clean, key=lambda s: s["deliveries_per_s"], default=None)
    return {
        "receivers": sizes.room_receivers,
        "senders": sizes.room_senders,
        "step_seconds": sizes.room_step_seconds,
        "steps": steps,
        "capacity_deliveries_per_s": best["deliveries_per_s"] if best else 0.0,
        "capacity_send_rate": best["rate"] if best else 0,
        "p99_at_capacity_ms": best["p99_ms"] if best else None,
        "broke_at_rate": next((s["rate"] for s in steps if not s["ok"]), None),
    }


def _room_label(stalled: _StalledReaders | None, changes: _Changes | None) -> str:
    if stalled is not None:
        return "room fan-out, stalled readers"
    if changes is not None:
        return "room fan-out, edits and reactions"
    return "room fan-out"


async def _room_step(
    target, run, receivers, senders, meter, step, rate, tag, stalled, changes
) -> dict:
    sizes = run.sizes
    count = round(rate * sizes.room_step_seconds)
    prefix = f"r{tag}-{step}-"
    if changes is not None:
        changes.begin(step, prefix)

    def send(n: int) -> None:
        sender = n % len(senders)
        frame = {
            "type": "send",
            "room": target.room,
            "body": f"r{step} {n} {time.time():.6f}",
            "client_id": f"{prefix}{n}",
        }
        senders[sender].send_text(json.dumps(frame))
        if changes is not None:
            changes.message(sender, n, frame)

    def expected() -> int:
        """Message frames every receiver should get: one per message and per change,
        none for what the server refused."""
        if changes is None:
            return count * sizes.room_receivers
        return (count + changes.changes - len(changes.errors)) * sizes.room_receivers

    began = time.time()
    step_began = time.monotonic()
    present = stalled.present if stalled is not None else None
    meter.start()
    took = await _pace(rate, count, send)
    cpu = meter.stop()
    # Wait for the tail; whatever has not arrived by then counts as lost (late, in the
    # mixed run). The counts live in the receiver processes, so they are polled.
    drain_until = time.monotonic() + sizes.drain_seconds
    while time.monotonic() < drain_until and await receivers.count(step) < expected():  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    delivered, latencies, edit_latencies, last = await receivers.collect(step)
    spread = max(sizes.room_step_seconds, (last or began) - began)
    achieved = count / max(took, 1e-6)
    result = {
        "rate": rate,
        "sent": count,
        "achieved_send_rate": round(achieved, 1),
        "expected": expected(),
        "delivered": delivered,
        "lost": max(expected() - delivered, 0),
        "deliveries_per_s": round(delivered / spread, 1),
        **latency_summary(latencies),
        "cpu": cpu,
        **_judge_load(cpu, rate, achieved),
    }
    if stalled is not None:
        result["stalled_present"] = present  # at the step's start
        result["stalled_given_up"] = stalled.given_up_since(step_began)
    if changes is not None:
        # Here "lost" is what the receivers lack once the server is quiet; frames that
        # missed the drain time are "late".
        result["late"] = result.pop("lost")
        result["edit_latency"] = latency_summary(edit_latencies)
        result.update(await _final_check(target, receivers, changes, step))
    result["ok"] = (
        result["lost"] == 0
        and result.get("late", 0) == 0
        and result.get("server_lost", 0) == 0
        and (result["p99_ms"] or 0) <= ROOM_P99_LIMIT_MS
        and (result.get("edit_latency", {}).get("p99_ms") or 0) <= ROOM_P99_LIMIT_MS
    )
    run.log(_step_line(target.name, _room_label(stalled, changes), result))
    return result


async def _final_check(target: Target, receivers: _Receivers, changes: _Changes, step: int) -> dict:
    """Once the server is quiet, compares the server's state of the step's messages with
    what the senders did, and every receiver's copies with the server's state."""
    await quiesce(target)
    final = await changes.final_state()
    copies = await receivers.check(step, final)
    return {
        "edits": changes.edits,
        "reactions": changes.reacts,
        "errors": len(changes.errors),
        "error_codes": dict(Counter(error.get("code") for error in changes.errors)),
        "messages_stored": len(final),
        "copies": copies,
        "lost": sum(copies[kind] for kind in ("missing", "stale", "wrong", "unexpected")),
        "server_lost": changes.server_lost(final),
    }


async def _unless_noise(target: Target, run: Run, scenario: str, attempt) -> dict:
    """Runs a step; repeats it once if it failed while other processes were busy.

    This machine is shared: another test suite can take a core away in the middle
    of a step. The first attempt stays in the results (`noisy_attempt`).
    """
    result = await attempt()
    others = result["cpu"].get("others", 0.0) + result["cpu"].get("stolen", 0.0)
    if result["ok"] or others < NOISY_OTHERS:
        return result
    run.log(
        f"{target.name}: {scenario} {result['rate']}/s failed while other processes and the "
        f"hypervisor took {others:.0%} of a core; repeating it once"
    )
    await quiesce(target)
    repeated = await attempt()
    repeated["noisy_attempt"] = result
    return repeated


def _step_line(name: str, scenario: str, r: dict) -> str:
    cpu = " ".join(f"{k} {v:.0%}" for k, v in r["cpu"].items())
    if "copies" in r:
        lost = (
            f"late {r['late']:,} of {r['expected']:,} frames, "
            f"lost {r['lost']:,} of {r['copies']['checked']:,} final copies"
        )
    else:
        lost = f"lost {r['lost']:,} of {r['expected']:,}"
    line = (
        f"{name}: {scenario} {r['rate']}/s: {r['deliveries_per_s']:,.0f} deliveries/s, "
        f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, {lost} "
        f"[cpu {cpu}] {'ok' if r['ok'] else 'BROKEN'}"
    )
    if "copies" in r:
        copies = ", ".join(f"{k} {v}" for k, v in r["copies"].items() if k != "checked")
        line += (
            f"\n    edits: p50 {r['edit_latency']['p50_ms']} ms, "
            f"p99 {r['edit_latency']['p99_ms']} ms; "
            f"{r['sent']} messages, {r['edits']} edits, {r['reactions']} reactions, "
            f"{r['errors']} refused {r['error_codes'] or ''}; copies: {copies}; "
            f"server state missing what was done: {r['server_lost']}"
        )
    if "stalled_present" in r:
        line += (
            f"\n    stalled readers: {r['stalled_present']} present at the start, "
            f"{r['stalled_given_up']} given up by the server during the step"
        )
    if r["loadgen_bound"]:
        why = f"{', '.join(r['loadgen_busy'])} above 90% of a core" if r["loadgen_busy"] else ""
        if r["send_rate_short"]:
            why += f"{'; ' if why else ''}sent {r['achieved_send_rate']}/s of {r['rate']}/s"
        line += f"\n    !! the load generator was the bottleneck in this step ({why})"
    elif r["machine_saturated"]:
        line += "\n    !! every core was busy: server and load generator competed for the CPUs"
    return line


# --- Direct messages ----------------------------------------------------------------


class _DirectReceivers:
    """Counts direct messages at their recipients' sockets, per step."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.latencies: defaultdict[int, list[float]] = defaultdict(list)
        self.expected: dict[int, int] = {}
        self.arrived: defaultdict[int, asyncio.Event] = defaultdict(asyncio.Event)

    def on_text(self, index: int) -> Callable[[bytes], None]:
        """The frame handler of socket `index`."""

        def receive(payload: bytes) -> None:
            match = _DIRECT_BODY.search(payload)
            # The sender's own socket gets a copy too; count the recipient's only.
            if match is not None and int(match[4]) == index:
                step = int(match[1])
                self.counts[step] += 1
                self.latencies[step].append(time.time() - float(match[3]))
                if self.counts[step] == self.expected.get(step):
                    self.arrived[step].set()

        return receive


async def direct(target: Target, run: Run) -> dict:
    """Direct messages between random pairs at fixed rates: latency at the recipient, losses."""
    sizes = run.sizes
    users = target.accounts["dm"][: sizes.direct_users]
    receivers = _DirectReceivers()
    sockets, _, errors = await open_many(
        target.port,
        target.path,
        [target.headers(session) for _, session in users],
        concurrency=8,
        on_text=receivers.on_text,
    )
    if any(s is None for s in sockets):
        raise RuntimeError(f"direct messages: sockets failed to open: {dict(errors)}")
    await asyncio.sleep(sizes.settle_seconds)
    meter = _meter(target, {"loadgen-main": os.getpid()})
    tag = uuid.uuid4().hex[:6]
    picker = random.Random(7)
    ids = itertools.count()

    async def attempt(rate: int) -> dict:
        step = next(ids)
        count = receivers.expected[step] = round(rate * sizes.direct_step_seconds)
        pairs = [picker.sample(range(len(users)), 2) for _ in range(count)]

        def send(n: int) -> None:
            sender, recipient = pairs[n]
            sockets[sender].send_text(
                json.dumps(
                    {
                        "type": "send",
                        "to": users[recipient][0],
                        "body": f"d{step} {n} {time.time():.6f} {recipient}",
                        "client_id": f"d{tag}-{step}-{n}",
                    }
                )
            )

        meter.start()
        took = await _pace(rate, count, send)
        cpu = meter.stop()
        # Wait for the tail; whatever has not arrived by then counts as lost.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(receivers.arrived[step].wait(), sizes.drain_seconds)
        delivered = receivers.counts[step]
        achieved = count / max(took, 1e-6)
        result = {
            "rate": rate,
            "sent": count,
            "achieved_send_rate": round(achieved, 1),
            "expected": count,
            "delivered": delivered,
            "lost": max(count - delivered, 0),
            "deliveries_per_s": round(delivered / sizes.direct_step_seconds, 1),
            **latency_summary(receivers.latencies.pop(step, [])),
            "cpu": cpu,
            **_judge_load(cpu, rate, achieved),
        }
        result["ok"] = result["lost"] == 0 and (result["p99_ms"] or 0) <= DIRECT_P99_LIMIT_MS
        run.log(_step_line(target.name, "direct", result))
        return result

    steps = []
    try:
        for rate in sizes.direct_rates:
            if run.out_of_time():
                run.log(f"{target.name}: direct: out of time, no more steps")
                break
            steps.append(
                await _unless_noise(target, run, "direct", lambda rate=rate: attempt(rate))
            )
            waited = await quiesce(target)
            if waited >= 1:
                run.log(f"{target.name}: direct: server busy for {waited} s after the step")
    finally:
        await close_all(sockets)
    return {"users": len(users), "step_seconds": sizes.direct_step_seconds, "steps": steps}


# --- Presence storm -----------------------------------------------------------------


async def presence(target: Target, run: Run) -> dict:
    """Users connect in a burst; how soon an observer's online list holds them all, and how
    many presence frames (`presence` or `users`) it took."""
    sizes = run.sizes
    _, observer_session = target.accounts["presence"][0]
    storm = target.accounts["presence"][1 : sizes.presence_users + 1]
    joined: set[str] = set()  # the storm users whose socket opened
    online: set[str] = set()  # the observer's view
    frames: list[tuple[float, str]] = []
    state = {"storm_over": False, "leaving": False}
    complete: dict[str, float] = {}
    all_online, all_offline = asyncio.Event(), asyncio.Event()

    def check() -> None:
        if state["storm_over"] and "online" not in complete and joined <= online:
            complete["online"] = time.monotonic()
            all_online.set()
        if state["leaving"] and "offline" not in complete and not joined & online:
            complete["offline"] = time.monotonic()
            all_offline.set()

    def watch(payload: bytes) -> None:
        frame = json.loads(payload)
        kind = frame.get("type")
        if kind in ("hello", "users"):
            online.clear()
            online.update(frame["online"])
        elif kind == "presence":
            (online.add if frame["online"] else online.discard)(frame["user"])
        else:
            return
        if kind != "hello":
            frames.append((time.monotonic(), kind))
        check()

    observer = await wsclient.connect(
        HOST, target.port, target.path, headers=target.headers(observer_session), on_text=watch
    )
    await asyncio.sleep(sizes.settle_seconds)
    frames.clear()
    opened_at: list[float] = []
    sockets: list = []
    errors: Counter = Counter()

    async def join(index: int, name: str, session: str) -> None:
        await asyncio.sleep(index * sizes.presence_spread_seconds / len(storm))
        try:
            socket = await wsclient.connect(
                HOST, target.port, target.path, headers=target.headers(session), on_text=_ignore
            )
        except (OSError, TimeoutError, wsclient.HandshakeRefused) as error:
            errors[_describe(error)] += 1
            return
        sockets.append(socket)
        joined.add(name)
        opened_at.append(time.monotonic())

    began = time.monotonic()
    await asyncio.gather(*(join(i, name, session) for i, (name, session) in enumerate(storm)))
    last_open = max(opened_at, default=began)
    state["storm_over"] = True
    check()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_online.wait(), sizes.presence_timeout)
    settled = complete.get("online")
    window = (settled or time.monotonic()) - began
    storm_frames = [kind for at, kind in frames if at <= began + window]
    result = {
        "users": len(storm),
        "opened": len(sockets),
        "errors": dict(errors),
        "connect_seconds": round(last_open - began, 2),
        "settled_after_s": round(settled - began, 2) if settled else None,
        "settled_after_last_open_s": round(max(settled - last_open, 0.0), 2) if settled else None,
        "observer_frames": len(storm_frames),
        "observer_frames_per_s": round(len(storm_frames) / max(window, 1e-6), 1),
        "observer_frame_kinds": dict(Counter(storm_frames)),
    }
    # The same, leaving: every storm user goes offline at once.
    left = time.monotonic()
    state["leaving"] = True
    await close_all(sockets, wait=5)
    check()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_offline.wait(), sizes.presence_timeout)
    gone = complete.get("offline")
    result["offline_settled_after_s"] = round(gone - left, 2) if gone else None
    observer.close()
    run.log(
        f"{target.name}: presence storm: {result['opened']} of {len(storm)} users connected in "
        f"{result['connect_seconds']} s (failed: {dict(errors) or 'none'}); observer complete "
        f"after {result['settled_after_s']} s ({result['settled_after_last_open_s']} s after the "
        f"last connect), {result['observer_frames']} presence frames "
        f"({result['observer_frames_per_s']}/s); all offline after "
        f"{result['offline_settled_after_s']} s"
    )
    return result


# --- History and sync ---------------------------------------------------------------


async def history(target: Target, run: Run) -> dict:
    """Random history pages (50, `before`) and sync pages (100, `after`) over the seeded room.

    Each kind runs twice: one client asking one page after the other (the latency a
    reader sees), then every client at once, each asking again as soon as its page
    arrives (which keeps the server busy: the throughput, and latency under it).
    """
    sizes = run.sizes
    seeded = target.history
    sockets = []
    for _, session in target.accounts["hist"][: sizes.history_clients]:
        socket = await wsclient.connect(
            HOST, target.port, target.path, headers=target.headers(session)
        )
        sockets.append(socket)
    picker = random.Random(11)

    def request(kind: str) -> tuple[dict, int]:
        if kind == "history":
            before = picker.randint(51, seeded["count"] + 1)
            return {"type": "history", "room": seeded["room"], "before": before, "limit": 50}, 50
        after = picker.randint(seeded["first_id"] - 1, seeded["last_id"] - 100)
        return {"type": "sync", "after": after}, 100

    async def client(socket, kind: str, count: int, latencies: list[float]) -> int:
        """Asks `count` pages one after the other; returns how many came back short."""
        short = 0
        for _ in range(count):
            if run.out_of_time():
                break
            frame, size = request(kind)
            began = time.perf_counter()
            socket.send_text(json.dumps(frame))
            while True:
                answer = json.loads(await asyncio.wait_for(socket.recv(), 30))
                if answer["type"] == kind:
                    break
            latencies.append(time.perf_counter() - began)
            short += len(answer["messages"]) != size
        return short

    async def phase(kind: str, clients: list) -> dict:
        latencies: list[float] = []
        per_client = max(1, sizes.history_requests // 2 // len(clients))
        began = time.monotonic()
        shorts = await asyncio.gather(*(client(s, kind, per_client, latencies) for s in clients))
        took = time.monotonic() - began
        return {
            "clients": len(clients),
            "requests": len(latencies),
            "per_s": round(len(latencies) / max(took, 1e-6), 1),
            "short_pages": sum(shorts),
            **latency_summary(latencies),
        }

    result = {"messages": seeded["count"], "clients": len(sockets)}
    for kind in ("history", "sync"):
        alone = await phase(kind, sockets[:1])
        together = await phase(kind, sockets)
        result[kind] = {**alone, "concurrent": together}
        run.log(
            f"{target.name}: {kind} at {seeded['count']:,} messages: one client p50 "
            f"{alone['p50_ms']} ms, p99 {alone['p99_ms']} ms; {together['clients']} clients "
            f"p50 {together['p50_ms']} ms, p99 {together['p99_ms']} ms at {together['per_s']}/s"
        )
    await close_all(sockets)
    return result


# --- Search -------------------------------------------------------------------------

# The site's goal for one search, one client asking.
SEARCH_P99_LIMIT_MS = 50
# Searches made before measuring: the first ones meet cold caches.
SEARCH_WARMUP = 5


def _search_request(picker: random.Random, seeded: dict, number: int, before: int | None) -> dict:
    """The `number`-th search of the mix a user makes: words, prefixes, in one conversation."""
    words = seeded["words"]

    def word() -> str:
        # Like the seeded bodies: frequent words more often than rare ones.
        return words[int(len(words) * picker.random() ** 2)]

    kind = number % 6
    if kind == 0:
        return {"type": "search", "q": word()}
    if kind == 1:
        return {"type": "search", "q": f"{word()} {word()}"}
    if kind == 2:
        # The start of a word, as typed into a search box.
        typed = word()
        return {"type": "search", "q": typed[: max(2, len(typed) // 2)]}
    if kind == 3:
        return {"type": "search", "q": f"{word()} {word()}", "room": picker.choice(seeded["rooms"])}
    if kind == 4:
        return {"type": "search", "q": word(), "with": seeded["with"]}
    # The next page of the previous search, or a search of a Russian word.
    frame = {"type": "search", "q": picker.choice([w for w in words if not w.isascii()])}
    if before is not None:
        frame["before"] = before
    return frame


async def search(target: Target, run: Run) -> dict:
    """One client searches the seeded messages, one search after the other: p50 and p99.

    The mix: one word, two words, a prefix, within a room, within a direct
    conversation, the next page of a search, English and Russian words.
    """
    sizes = run.sizes
    seeded = target.search
    if seeded is None:
        return {"messages": 0, "skipped": "no searchable messages were seeded"}
    _, session = target.accounts["hist"][0]
    socket = await wsclient.connect(HOST, target.port, target.path, headers=target.headers(session))
    picker = random.Random(13)
    latencies: list[float] = []
    timed: list[tuple[float, dict]] = []
    found = empty = 0
    before = None
    for number in range(SEARCH_WARMUP + sizes.search_requests):
        if run.out_of_time():
            break
        frame = _search_request(picker, seeded, number, before)
        began = time.perf_counter()
        socket.send_text(json.dumps(frame))
        while True:
            answer = json.loads(await asyncio.wait_for(socket.recv(), 30))
            if answer["type"] in ("search", "error"):
                break
        took = time.perf_counter() - began
        if answer["type"] == "error":
            raise RuntimeError(f"search {frame} refused: {answer}")
        before = answer["messages"][-1]["id"] if answer["has_more"] else None
        if number < SEARCH_WARMUP:
            continue
        latencies.append(took)
        timed.append((took, frame))
        found += len(answer["messages"])
        empty += not answer["messages"]
    await close_all([socket])
    result = {
        "messages": seeded["count"],
        "requests": len(latencies),
        "found_per_search": round(found / max(len(latencies), 1), 1),
        "empty_answers": empty,
        **latency_summary(latencies),
        # What took longest, to tell a slow kind of search from a noisy machine.
        "slowest": [
            {"ms": round(took * 1000, 1), "frame": frame}
            for took, frame in sorted(timed, key=lambda pair: pair[0], reverse=True)[:5]
        ],
    }
    run.log(
        f"{target.name}: search at {seeded['count']:,} messages: one client p50 "
        f"{result['p50_ms']} ms, p99 {result['p99_ms']} ms, max {result['max_ms']} ms "
        f"over {len(latencies)} searches (goal p99 <= {SEARCH_P99_LIMIT_MS} ms)"
    )
    return result


# In this order: the slow-reader room run right after the plain one, so both meet
# the server in the same state; the connections scenario comes last, because a
# server that has just opened and closed 10,000 sockets is not the same server for
# a while.
async def storm(target: Target, run: Run) -> dict:
    """The reconnect storm: every client dropped by a restart of the server process(es),
    back with the page's backoff and jitter, caught up with `sync`; messages lost."""
    sizes = run.sizes
    if run.out_of_time():
        run.log(f"{target.name}: storm: out of time, not run")
        return {"skipped": "out of time"}
    users = target.accounts["storm"]
    receivers = [target.headers(users[i % len(users)][1]) for i in range(sizes.storm_clients)]
    senders = [target.headers(session) for _, session in target.accounts["stormsend"]]
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    processes = max(sizes.storm_processes, -(-sizes.storm_clients // max(limit - 500, 1)))
    meter = _meter(target, {"loadgen-main": os.getpid()})
    meter.start()
    result = await storm_module.storm(
        ports=target.ports,
        path=target.page_path,
        room=target.room,
        receivers=receivers,
        senders=senders,
        restart=lambda: asyncio.to_thread(target.restart),
        health_ports=target.health_ports,
        processes=processes if sizes.storm_processes else 0,
        concurrency=32,
        send_rate=sizes.storm_send_rate,
        open_timeout=max(60, sizes.storm_clients / 40),
        back_within=sizes.storm_timeout,
        log=lambda line: run.log(f"{target.name}: {line}"),
    )
    result["cpu"] = meter.stop()
    result["server_stop_s"] = round(target.stop_seconds or 0.0, 2)
    result["server_processes"] = len(target.servers)
    result["load_generator_processes"] = processes if sizes.storm_processes else 0
    run.log(
        f"{target.name}: storm: {result['back']:,} of {result['clients'] + result['senders']:,} "
        f"back (all after {result['all_back_s']} s, p50 {result['reconnect_p50_s']} s, "
        f"p90 {result['reconnect_p90_s']} s), all synced after {result['all_synced_s']} s; "
        f"server down {result['server_down_s']} s (stopping took {result['server_stop_s']} s); "
        f"refused {result['refusals'] or 'none'}; "
        f"{result['messages_sent']} sent, {result['messages_acked']} acked, "
        f"lost {result['lost']}, doubled {result['doubled']}"
    )
    return result


SCENARIOS = {
    "room": room,
    "room_slow_reader": room_slow_reader,
    "mixed": mixed,
    "direct": direct,
    "presence": presence,
    "history": history,
    "search": search,
    "storm": storm,
    "connections": connections,
}
