"""The deployment: docker-compose.yml's shape, and its nginx in front of real servers.

Docker cannot run on the test machines, so the compose file is checked against the
Compose specification and for the topology it promises, and the same topology runs
here without Docker: Debian's nginx with deploy/nginx.conf in front of two server
processes (started as the image starts them) on one private Redis and one database.
"""

import asyncio
import json
import os
import re
import runpy
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import websockets
import yaml
from pytest_redis import factories

from tests.conftest import redis_url_of
from tests.server import (
    ROOT,
    Browser,
    ChatClient,
    ServerProcess,
    base_env,
    free_port,
)

COMPOSE_FILE = ROOT / "docker-compose.yml"
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
HEALTHCHECK = ROOT / "deploy" / "healthcheck.py"
NGINX = Path("/usr/sbin/nginx")

# How the image starts the site (Dockerfile CMD): behind nginx, trusting its headers.
SERVER_ARGS = ("--proxy-headers",)


@pytest.fixture(scope="module")
def compose() -> dict:
    """docker-compose.yml, parsed."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


def _env_file_names(path: Path) -> set[str]:
    """The variable names an env file sets."""
    lines = path.read_text().splitlines()
    return {line.split("=", 1)[0] for line in lines if re.match(r"[A-Z_][A-Z0-9_]*=", line)}


# --- The compose file --------------------------------------------------------


def test_compose_file_follows_the_compose_specification():
    checker = Path(sys.executable).with_name("check-jsonschema")
    result = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", COMPOSE_FILE],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_only_nginx_publishes_a_port(compose):
    publishing = {name for name, service in compose["services"].items() if service.get("ports")}
    assert publishing == {"nginx"}
    assert compose["services"]["nginx"]["ports"] == ["${HTTP_PORT:-8080}:80"]


def test_web_can_be_scaled(compose):
    web = compose["services"]["web"]
    # `docker compose up --scale web=3` needs neither a fixed name nor a host port.
    assert "container_name" not in web
    assert "ports" not in web
    assert "build" in web


def test_services_start_in_order(compose):
    services = compose["services"]

    def conditions(name: str) -> dict:
        return {dep: spec["condition"] for dep, spec in services[name]["depends_on"].items()}

    assert conditions("migrate") == {"db": "service_healthy"}
    assert conditions("web") == {
        "db": "service_healthy",
        "redis": "service_healthy",
        "migrate": "service_completed_successfully",
    }
    assert conditions("nginx") == {
        "web": "service_healthy",
        "static": "service_completed_successfully",
    }
    assert services["migrate"]["command"] == ["python", "manage.py", "migrate", "--noinput"]


def test_db_and_redis_have_healthchecks_and_the_database_a_named_volume(compose):
    services = compose["services"]
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    volume, _, mount = services["db"]["volumes"][0].partition(":")
    assert volume in compose["volumes"]
    assert mount == "/var/lib/postgresql/data"


def test_nginx_runs_the_projects_config_and_serves_the_static_volume(compose):
    nginx = compose["services"]["nginx"]
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in nginx["volumes"]
    assert "static:/srv/static:ro" in nginx["volumes"]
    # The one-shot that fills the volume uses the image web is built as.
    assert compose["services"]["static"]["image"] == compose["services"]["web"]["image"]
    assert compose["services"]["migrate"]["image"] == compose["services"]["web"]["image"]


def test_env_example_names_every_variable_the_compose_file_uses():
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", COMPOSE_FILE.read_text()))
    assert used <= _env_file_names(ROOT / ".env.example")


def test_env_example_is_a_valid_configuration():
    """The site's checks pass on .env.example as Compose reads it."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL"}
    }
    # Compose's reading of .env: one variable per line, ${NAME} from the lines above.
    for line in (ROOT / ".env.example").read_text().splitlines():
        if re.match(r"[A-Z_][A-Z0-9_]*=", line):
            key, _, value = line.partition("=")
            env[key] = re.sub(r"\$\{(\w+)\}", lambda name: env[name[1]], value)
    assert env["DATABASE_URL"] == f"postgres://chat:{env['POSTGRES_PASSWORD']}@db:5432/chat"
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_env_file_is_not_committed():
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT)
    assert ignored.returncode == 0


def test_image_runs_the_server_unprivileged_with_a_healthcheck():
    # Instructions with their continuation lines joined, comments dropped.
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    instructions = [
        line.split(None, 1) for line in text.splitlines() if line.strip() and line[0] != "#"
    ]
    by_name: dict[str, list[str]] = {}
    for name, args in instructions:
        by_name.setdefault(name.upper(), []).append(args.strip())
    assert by_name["FROM"][0].startswith("python:3.11-slim")
    assert by_name["USER"] == ["chat"]
    assert json.loads(by_name["CMD"][-1]) == ["python", "-m", "chatsite.server", *SERVER_ARGS]
    assert "deploy/healthcheck.py" in by_name["HEALTHCHECK"][-1]
    assert any("pip install ." in run for run in by_name["RUN"])
    assert any("collectstatic" in run and "SECRET_KEY=" in run for run in by_name["RUN"])


# --- The image's healthcheck -------------------------------------------------


@pytest.mark.parametrize(
    ("allowed_hosts", "host"),
    [
        ("chat.example.com,localhost", "chat.example.com"),
        (".example.com", "example.com"),
        ("*", "localhost"),
        ("", "localhost"),
    ],
)
def test_healthcheck_asks_with_an_allowed_host(monkeypatch, allowed_hosts, host):
    monkeypatch.setenv("ALLOWED_HOSTS", allowed_hosts)
    probe_host = runpy.run_path(str(HEALTHCHECK))["probe_host"]
    assert probe_host() == host


@pytest.mark.server
def test_healthcheck_passes_on_a_running_site_and_fails_without_one(site_server):
    def probe(port: int) -> subprocess.CompletedProcess:
        env = {**os.environ, "PORT": str(port), "ALLOWED_HOSTS": "localhost"}
        return subprocess.run(
            [sys.executable, HEALTHCHECK], env=env, capture_output=True, text=True, timeout=10
        )

    up = probe(site_server.port)
    assert up.returncode == 0, up.stdout
    down = probe(free_port())
    assert down.returncode == 1
    assert "/healthz failed" in down.stdout


# --- The same topology without Docker -----------------------------------------

deploy_redis = factories.redis_proc(port=None)


def render_nginx_conf(*, listen: str, servers: list[str], static_root: Path, workdir: Path) -> str:
    """Returns deploy/nginx.conf with the lines marked "test:" pointed at local processes.

    Adds a local upstream of `servers` (named in place of Docker's `web:8000`) and
    temp paths inside `workdir`; everything else is the production file.
    """
    text = NGINX_CONF.read_text()
    swaps = {
        "listen 80;": f"listen {listen};",
        "set $web http://web:8000;": "set $web http://chat_servers;",
        "alias /srv/static/;": f"alias {static_root}/;",
    }
    for old, new in swaps.items():
        assert text.count(old) == 1, f"deploy/nginx.conf should hold {old!r} once"
        text = text.replace(old, new)
    temp_paths = "".join(
        f"    {kind}_temp_path {workdir / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # max_fails=0: like the per-request address list nginx builds from Docker's DNS
    # answer, a server that failed once is not shunned by later requests.
    upstream = "".join(f"        server {server} max_fails=0;\n" for server in servers)
    local = f"{temp_paths}    upstream chat_servers {{\n{upstream}    }}\n"
    assert text.count("\nhttp {\n") == 1
    return text.replace("\nhttp {\n", "\nhttp {\n" + local, 1)


class NginxProcess:
    """Debian's nginx running deploy/nginx.conf in the foreground, all files in `workdir`."""

    def __init__(self, servers: list[ServerProcess], static_root: Path, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws/chat/"
        self.workdir = workdir
        self.conf = workdir / "nginx.conf"
        self.conf.write_text(
            render_nginx_conf(
                listen=f"127.0.0.1:{self.port}",
                servers=[f"127.0.0.1:{server.port}" for server in servers],
                static_root=static_root,
                workdir=workdir,
            )
        )
        self.log = workdir / "nginx.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 10) -> "NginxProcess":
        """Starts nginx and waits until /healthz answers through it."""
        with self.log.open("ab") as log:
            # Foreground, with its pid file here rather than the system's.
            options = f"daemon off; pid {self.workdir / 'nginx.pid'};"
            self.process = subprocess.Popen(
                [NGINX, "-p", self.workdir, "-c", self.conf, "-g", options],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited early:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"nginx did not answer in {timeout} s:\n{self.output()}")

    def stop(self) -> None:
        """Stops nginx (SIGTERM is its fast shutdown)."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def output(self) -> str:
        """Returns what nginx logged (errors and the access log)."""
        return self.log.read_text(errors="replace")


@dataclass
class Site:
    """The site as people reach it: nginx's address, and the processes behind it."""

    url: str
    ws_url: str
    servers: list[ServerProcess]


@pytest.fixture(scope="module")
def deploy_dir():
    """A directory nginx's unprivileged workers can read (pytest's own are private)."""
    with tempfile.TemporaryDirectory(prefix="chat-deploy-") as name:
        os.chmod(name, 0o755)
        yield Path(name)


@pytest.fixture(scope="module")
def static_root(deploy_dir):
    """The collected static files, as the image's collectstatic step makes them."""
    root = deploy_dir / "static"
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env=base_env(STATIC_ROOT=str(root)),
        check=True,
    )
    for directory, _, _ in os.walk(root):
        os.chmod(directory, 0o755)
    return root


@pytest.fixture
def site(database, deploy_redis, static_root, deploy_dir):
    """nginx with the project's config in front of two server processes."""
    if not NGINX.exists():
        pytest.fail("The deployment test needs Debian's nginx: run 'apt-get install nginx'.")
    env = {"REDIS_URL": redis_url_of(deploy_redis)}
    servers = [ServerProcess(database, args=SERVER_ARGS, **env).start() for _ in range(2)]
    workdir = Path(tempfile.mkdtemp(prefix="nginx-", dir=deploy_dir))
    os.chmod(workdir, 0o755)
    nginx = NginxProcess(servers, static_root, workdir)
    try:
        nginx.start()
        yield Site(nginx.url, nginx.ws_url, servers)
    finally:
        nginx.stop()
        for server in servers:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


async def _frames(client: ChatClient, wanted: set[str], timeout: float = 5) -> dict[str, dict]:
    """Reads frames until one of each wanted type arrived; returns the first of each."""
    found: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    while not wanted <= found.keys():
        frame = await client.receive(max(deadline - time.monotonic(), 0.01))
        found.setdefault(frame["type"], frame)
    return found


async def _sees_presence(client: ChatClient, user: str, online: bool, timeout: float = 5) -> None:
    """Waits until `client` learns that `user` came online (or went offline)."""
    deadline = time.monotonic() + timeout
    while True:
        frame = await client.receive(max(deadline - time.monotonic(), 0.01))
        if frame["type"] == "presence" and (frame["user"], frame["online"]) == (user, online):
            return
        if frame["type"] == "users" and (user in frame["online"]) == online:
            return


@pytest.mark.server
def test_health_and_static_files_through_nginx(site, static_root):
    browser = Browser(site.url)
    status, _, body = browser.get("/healthz")
    assert status == 200
    assert json.loads(body) == {"status": "ok", "database": "ok", "redis": "ok"}

    status, headers, body = browser.get("/static/chat/app.js")
    assert status == 200
    assert body == (static_root / "chat" / "app.js").read_text()
    assert "javascript" in headers["Content-Type"]
    # Served from disk by nginx's static location, which lets browsers cache it.
    assert "max-age=3600" in headers["Cache-Control"]
    # The admin's files come from collectstatic, not from the project's static/.
    status, _, _ = browser.get("/static/admin/css/base.css")
    assert status == 200

    status, headers, _ = browser.get("/")
    assert (status, headers["Location"]) == (302, "/accounts/login/?next=/")


@pytest.mark.server
def test_two_people_chat_through_nginx(site):
    alice, bob = _name("alice"), _name("bob")
    alice_browser = Browser(site.url)
    # Sign-up is a POST with a CSRF check of Origin against the Host nginx passes on.
    alice_session = alice_browser.signup(alice)
    bob_session = Browser(site.url).signup(bob)
    status, _, _ = alice_browser.get("/")
    assert status == 200

    async def conversation():
        alice_ws = await ChatClient(site, alice_session).open()
        bob_ws = await ChatClient(site, bob_session).open()
        assert alice in bob_ws.hello["online"]
        await _sees_presence(alice_ws, bob, True)

        # A room message each way: the sender gets the ack, both get the message.
        for sender, receiver, body in ((alice_ws, bob_ws, "hi bob"), (bob_ws, alice_ws, "hi")):
            client_id = _name("k")
            await sender.send(
                {"type": "send", "room": "general", "body": body, "client_id": client_id}
            )
            sent = await _frames(sender, {"ack", "message"})
            received = await receiver.receive_type("message")
            assert sent["message"]["id"] == sent["ack"]["id"] == received["id"]
            assert (received["room"], received["body"]) == ("general", body)

        await alice_ws.send({"type": "send", "to": bob, "body": "psst", "client_id": "dm1"})
        direct = await bob_ws.receive_type("message")
        assert (direct["from"], direct["to"], direct["body"]) == (alice, bob, "psst")

        # The contract's frame limit holds through the proxy: 1009, not a dropped line.
        await bob_ws.ws.send("x" * (64 * 1024 + 1))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await bob_ws.receive()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009

        await _sees_presence(alice_ws, bob, False)
        await alice_ws.close()

    asyncio.run(conversation())


@pytest.mark.server
def test_chat_stays_up_through_nginx_while_one_process_is_down(site):
    carol = _name("carol")
    session = Browser(site.url).signup(carol)

    async def reconnect_and_send(client_id: str) -> None:
        client = await ChatClient(site, session).open()
        frame = {"type": "send", "room": "general", "body": "still here", "client_id": client_id}
        await client.send(frame)
        await _frames(client, {"ack"})
        await client.close()

    # Each process in turn is stopped; nginx passes everything to the other one.
    first, second = site.servers
    for down, up in ((first, second), (second, first)):
        down.stop()
        for _ in range(4):
            status, _, _ = Browser(site.url).get("/healthz")
            assert status == 200
        asyncio.run(reconnect_and_send(_name("k")))
        down.start()
        assert up.process.poll() is None
