"""The three servers under test, each started on a free loopback port and stopped afterwards.

- `site`: `python -m chatsite.server` in Redis mode (a private redis-server) on a fresh
  PostgreSQL database (SQLite in a temporary directory when PostgreSQL is not there);
- `naive`: the Channels-tutorial consumer of bench/naive_asgi.py under daphne, on
  channels-redis' core layer (its own private redis-server);
- `raw`: the `websockets`-only broadcast server of bench/raw_server.py;
- `site-2p`: the site as two server processes on one Redis and one database, each on
  its own port (clients alternate over them; no proxy in front).

A site target can be restarted (every process stopped and started again on the same
ports, database and Redis): the reconnect storm does that.

Child processes inherit the raised open-files limit of the benchmark process.
"""

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
HOST = "127.0.0.1"

# Scenarios every target can run; the others need the site's features.
COMMON = ("connections", "room")
SITE_ONLY = ("room_slow_reader", "mixed", "direct", "presence", "history", "search", "storm")
# The two-process site: capacity and the storm, beside the one-process figures.
TWO_PROCESS = ("room", "storm")
# The room of long messages that stalled readers ask for: bodies as long as a user
# may send (the contract's limit).
LONG_ROOM = "bench-long"
LONG_BODY_CHARS = 4000
# The site gives a socket that does not read up after 10 s, or once 4 M characters
# are queued for it. The stalled readers must stay in the room for a whole room run
# (a minute or more), so the site target waits longer and queues more; no other
# scenario has a client that does not read, so nothing else sees the difference.
STALLED_READER_LIMITS = {"CHAT_SEND_STALL_SECONDS": "600", "CHAT_SEND_QUEUE_CHARS": "64000000"}


def free_port() -> int:
    """Returns a TCP port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited early:\n{_tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{process.args} did not listen on {port} in {timeout} s:\n{_tail(log)}")


def _tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


class Process:
    """A child process whose output goes to a log file in the run's work directory."""

    def __init__(self, name: str, argv: list[str], env: dict, workdir: Path) -> None:
        self.name = name
        self.argv, self.env = argv, env
        self.log = workdir / f"{name}.log"
        self._launch("wb")

    def _launch(self, mode: str) -> None:
        with self.log.open(mode) as out:
            self.popen = subprocess.Popen(
                self.argv, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        self.ps = psutil.Process(self.popen.pid)

    def start_again(self) -> None:
        """Starts the (stopped) process again with the same command; the log goes on."""
        self._launch("ab")

    @property
    def pid(self) -> int:
        """The process id."""
        return self.popen.pid

    def cpu_seconds(self) -> float:
        """User plus system CPU time used so far, all threads."""
        times = self.ps.cpu_times()
        return times.user + times.system

    def rss(self) -> int:
        """Resident memory in bytes."""
        return self.ps.memory_info().rss

    def terminate(self) -> None:
        """Asks the process to stop (SIGTERM) without waiting."""
        if self.popen.poll() is None:
            self.popen.terminate()

    def stop(self) -> None:
        """Terminates the process, killing it if it does not go within 10 s."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


@contextlib.contextmanager
def private_redis(workdir: Path) -> Iterator[tuple[str, Process]]:
    """A redis-server of our own on a free port, never the machine's shared one."""
    port = free_port()
    data = workdir / f"redis-{port}"
    data.mkdir()
    argv = ["redis-server", "--port", str(port), "--bind", HOST, "--dir", str(data)]
    argv += ["--save", "", "--appendonly", "no"]
    process = Process(f"redis-{port}", argv, os.environ.copy(), workdir)
    try:
        _wait_for_port(port, process.popen, process.log, 10)
        yield f"redis://{HOST}:{port}/0", process
    finally:
        process.stop()


def postgres_available() -> bool:
    """Tells whether the benchmark's PostgreSQL server accepts connections."""
    try:
        import psycopg

        with psycopg.connect(_pg_admin_url(), connect_timeout=2):
            return True
    except Exception:  # any failure means: use SQLite
        return False


# Which tables autovacuum would analyze now, by its own rule: more rows changed since
# the last ANALYZE than autovacuum_analyze_threshold + autovacuum_analyze_scale_factor
# times the rows (https://www.postgresql.org/docs/current/routine-vacuuming.html).
_DUE_FOR_ANALYZE = """
SELECT format('%I.%I', s.schemaname, s.relname)
FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
WHERE s.n_mod_since_analyze > current_setting('autovacuum_analyze_threshold')::float8
      + current_setting('autovacuum_analyze_scale_factor')::float8 * greatest(c.reltuples, 0)
"""


def autovacuum_analyze(database_url: str) -> list[str]:
    """Runs the ANALYZE a PostgreSQL with autovacuum on would have run by now, when the
    benchmark's has it off; returns the tables analyzed.

    A deployment's PostgreSQL keeps autovacuum on (its default), which gathers
    statistics as tables grow; some machines run the benchmark with it off, and then
    the tables the scenarios filled keep the statistics of when they were empty.
    """
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as db:
        if db.execute("SHOW autovacuum").fetchone()[0] == "on":
            return []  # the server does it itself
        tables = [name for (name,) in db.execute(_DUE_FOR_ANALYZE).fetchall()]
        for table in tables:
            db.execute(f"ANALYZE {table}")
    return tables


def _pg_admin_url() -> str:
    parsed = urllib.parse.urlsplit(PG_URL)
    return urllib.parse.urlunsplit(parsed._replace(path="/postgres"))


@contextlib.contextmanager
def fresh_database(workdir: Path, *, use_postgres: bool) -> Iterator[tuple[str, str]]:
    """Yields (DATABASE_URL, vendor) of a database made for this run and removed after it."""
    if not use_postgres:
        path = workdir / f"bench-{secrets.token_hex(6)}.sqlite3"
        try:
            yield f"sqlite:///{path}", "sqlite"
        finally:
            for leftover in workdir.glob(f"{path.name}*"):  # with its -wal and -shm files
                leftover.unlink()
        return
    import psycopg

    name = f"chat_bench_{secrets.token_hex(6)}"
    with psycopg.connect(_pg_admin_url(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        parsed = urllib.parse.urlsplit(PG_URL)
        yield urllib.parse.urlunsplit(parsed._replace(path=f"/{name}")), "postgresql"
    finally:
        with psycopg.connect(_pg_admin_url(), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@dataclass
class Target:
    """A running server under test, as the load generator sees it."""

    name: str
    description: str
    port: int
    path: str
    server: Process
    scenarios: tuple[str, ...] = COMMON
    redis: Process | None = None
    room: str = "general"
    # Site only: logged-in users per scenario, as (username, session key).
    accounts: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    history: dict | None = None
    long_history: dict | None = None
    # Site only: the searchable messages (bench.seed search), or None.
    search: dict | None = None
    database: str | None = None
    # Site only, PostgreSQL only: its DATABASE_URL (see autovacuum_analyze).
    database_url: str | None = None
    # Every server process and its port (the first are `server` and `port`).
    servers: list[Process] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    # Site only: each process's health listener, in the order of `ports`.
    health_ports: list[int] = field(default_factory=list)
    # How long the last restart took to stop the processes (SIGTERM until gone).
    stop_seconds: float | None = None

    @property
    def page_path(self) -> str:
        """The socket path as the page opens it: the site's asks for presence batches
        (static/chat/presence.js); without it, a burst of arrivals sends every socket
        the whole online list each window, which a page never gets."""
        return f"{self.path}?presence=batch" if self.name.startswith("site") else self.path

    def __post_init__(self) -> None:
        self.servers = self.servers or [self.server]
        self.ports = self.ports or [self.port]

    def restart(self) -> float:
        """Stops every server process, starts them again on the same ports, database and
        Redis, and waits until each listens; returns the seconds they were down."""
        began = time.monotonic()
        # All at once, as a deploy or a crash of the host does.
        for server in self.servers:
            server.terminate()
        for server in self.servers:
            server.stop()
        self.stop_seconds = time.monotonic() - began
        for server in self.servers:
            server.start_again()
        # Back once each listens (it loads the site before it does): the crowd that
        # arrives at once can keep /healthz waiting longer than its one-second probe.
        for port, server in zip(self.ports, self.servers, strict=True):
            _wait_for_port(port, server.popen, server.log, 60)
        return time.monotonic() - began

    def headers(self, session: str | None = None) -> dict[str, str]:
        """The handshake headers of one socket: the site's Origin, and its login cookie."""
        headers = {"Origin": f"http://{HOST}:{self.port}"}
        if session is not None:
            headers["Cookie"] = f"sessionid={session}"
        return headers


def _site_env(**extra: str) -> dict:
    # Like tests/server.py: production-like settings, nothing inherited that picks a mode.
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DJANGO_SETTINGS_MODULE", "REDIS_URL", "DATABASE_URL"}
    }
    env.update(
        {
            "DEBUG": "0",
            # The load generator talks to the process itself over plain HTTP.
            "CHAT_PLAIN_HTTP": "1",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            # The load generator is a few users doing what a crowd does: one sends
            # hundreds of messages a second, pages history back to back, opens a
            # thousand sockets, so no per-user limit applies.
            "CHAT_RATE_LIMIT": "off",
            "CHAT_READ_RATE_LIMIT": "off",
            "CHAT_CONNECT_RATE_LIMIT": "off",
            "CHAT_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            **extra,
        }
    )
    return env


def _django(argv: list[str], env: dict, timeout: float = 600) -> str:
    done = subprocess.run(
        [sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


@contextlib.contextmanager
def site(
    workdir: Path,
    *,
    accounts: dict[str, int],
    history: int,
    long_history: int = 0,
    search: int = 0,
    use_postgres: bool,
    log,
    server_name: str = "uvicorn",
    processes: int = 1,
) -> Iterator[Target]:
    """Starts the site in Redis mode on a fresh database, with users, sessions and history.

    `history` short messages go to one room, `long_history` messages of
    LONG_BODY_CHARS characters to another (LONG_ROOM). `server_name` picks the server
    (CHAT_SERVER): the default uvicorn is the `site` target with every scenario;
    daphne is `site-daphne`, with the room and direct scenarios only, to show what
    the server choice is worth in the same run. `processes` 2 is `site-2p`: two
    server processes on the one Redis and database, each on a port of its own.
    """
    name = "site" if server_name == "uvicorn" else f"site-{server_name}"
    if processes > 1:
        name = f"site-{processes}p"
    with (
        private_redis(workdir) as (redis_url, redis),
        fresh_database(workdir, use_postgres=use_postgres) as (database_url, vendor),
    ):
        ports = [free_port() for _ in range(processes)]
        port = ports[0]
        env = _site_env(
            SECRET_KEY=secrets.token_urlsafe(40),
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            HOST=HOST,
            PORT=str(port),
            # One user may hold many sockets in the connections scenario.
            CHAT_MAX_SOCKETS="20000",
            CHAT_SERVER=server_name,
            **STALLED_READER_LIMITS,
        )
        log(f"{name}: {vendor} database, migrating")
        _django(["manage.py", "migrate", "--noinput", "-v0"], env)
        seeded = long_seeded = None
        if history:
            log(f"{name}: storing {history:,} history messages")
            argv = ["-m", "bench.seed", "history", "--count", str(history)]
            seeded = json.loads(_django(argv, env))
            log(f"{name}: history stored in {seeded['seconds']} s")
        if long_history:
            argv = ["-m", "bench.seed", "history", "--room", LONG_ROOM, "--count"]
            argv += [str(long_history), "--body-chars", str(LONG_BODY_CHARS)]
            long_seeded = json.loads(_django(argv, env))
        log(f"{name}: creating users and sessions")
        users = json.loads(_django(["-m", "bench.seed", "accounts", json.dumps(accounts)], env))
        searchable = None
        if search:
            log(f"{name}: storing {search:,} searchable messages")
            searcher = users["hist"][0][0]
            argv = ["-m", "bench.seed", "search", "--count", str(search), "--user", searcher]
            searchable = json.loads(_django(argv, env))
            log(f"{name}: searchable messages stored in {searchable['seconds']} s")
        servers = []
        # Each process's health listener (chatsite/health_listener.py), probed in the
        # storm beside /healthz on the site's port.
        health_ports = [free_port() for _ in ports]
        try:
            for number, each_port in enumerate(ports):
                process_name = name if number == 0 else f"{name}-{number + 1}"
                argv = [sys.executable, "-m", "chatsite.server"]
                ports_env = {"PORT": str(each_port), "CHAT_HEALTH_PORT": str(health_ports[number])}
                servers.append(Process(process_name, argv, {**env, **ports_env}, workdir))
            for each_port, server in zip(ports, servers, strict=True):
                _wait_for_health(each_port, server)
            shown = f"{processes} processes of " if processes > 1 else ""
            yield Target(
                name=name,
                description=f"{shown}chatsite.server ({server_name}), Redis mode, {vendor}",
                port=port,
                path="/ws/chat/",
                server=servers[0],
                servers=servers,
                ports=ports,
                health_ports=health_ports,
                scenarios=(
                    COMMON + SITE_ONLY
                    if name == "site"
                    else TWO_PROCESS
                    if processes > 1
                    else ("room", "direct")
                ),
                redis=redis,
                accounts=users,
                history=seeded,
                long_history=long_seeded,
                search=searchable,
                database=vendor,
                database_url=database_url if vendor == "postgresql" else None,
            )
        finally:
            for server in servers:
                server.stop()


def _wait_for_health(port: int, server: Process, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.popen.poll() is not None:
            raise RuntimeError(f"the site exited early:\n{_tail(server.log)}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=1),
        ):
            return
        time.sleep(0.1)
    raise RuntimeError(f"the site did not answer /healthz in {timeout} s:\n{_tail(server.log)}")


@contextlib.contextmanager
def naive(workdir: Path) -> Iterator[Target]:
    """Starts the tutorial-shaped consumer under plain daphne on the core Redis layer."""
    with private_redis(workdir) as (redis_url, redis):
        port = free_port()
        env = {**os.environ, "BENCH_REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1"}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        argv = [sys.executable, "-m", "daphne", "-b", HOST, "-p", str(port)]
        argv.append("bench.naive_asgi:application")
        server = Process("naive", argv, env, workdir)
        try:
            _wait_for_port(port, server.popen, server.log, 30)
            yield Target(
                name="naive",
                description="tutorial consumer, daphne, channels_redis.core defaults",
                port=port,
                path="/ws/chat/",
                server=server,
                redis=redis,
            )
        finally:
            server.stop()


@contextlib.contextmanager
def raw(workdir: Path) -> Iterator[Target]:
    """Starts the websockets-only broadcast server."""
    port = free_port()
    argv = [sys.executable, "-m", "bench.raw_server", "--host", HOST, "--port", str(port)]
    server = Process("raw", argv, {**os.environ, "PYTHONUNBUFFERED": "1"}, workdir)
    try:
        _wait_for_port(port, server.popen, server.log, 30)
        yield Target(
            name="raw",
            description="websockets library only, broadcast",
            port=port,
            path="/",
            server=server,
        )
    finally:
        server.stop()


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    """A temporary directory for logs, the SQLite file and redis-server's files.

    It is removed afterwards unless the run failed, so the server logs can be read.
    """
    path = Path(tempfile.mkdtemp(prefix="chat-bench-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
