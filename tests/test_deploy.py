"""The deployment: docker-compose.yml's shape, and its Caddy and nginx in front of real servers.

Docker cannot run on the test machines, so the compose file is checked against the
Compose specification and for the topology it promises, and the same topology runs
here without Docker: Debian's caddy with deploy/Caddyfile (HTTPS) in front of Debian's
nginx with deploy/nginx.conf, in front of two server processes (started as the image
starts them) on one private Redis and one database.
"""

import asyncio
import http.client
import io
import json
import os
import re
import runpy
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import websockets
import yaml
from django.utils.http import content_disposition_header
from PIL import Image
from pytest_redis import factories

from tests.conftest import redis_url_of
from tests.server import (
    PASSWORD,
    ROOT,
    Browser,
    ChatClient,
    ServerProcess,
    base_env,
    free_port,
)

COMPOSE_FILE = ROOT / "docker-compose.yml"
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
CADDYFILE = ROOT / "deploy" / "Caddyfile"
HEALTHCHECK = ROOT / "deploy" / "healthcheck.py"
NGINX = Path("/usr/sbin/nginx")
CADDY = Path("/usr/bin/caddy")

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


def test_only_caddy_publishes_ports(compose):
    publishing = {
        name
        for name, service in compose["services"].items()
        if service.get("ports") and not service.get("profiles")
    }
    assert publishing == {"caddy"}
    assert compose["services"]["caddy"]["ports"] == [
        "${HTTP_PORT:-80}:80",
        "${HTTPS_PORT:-443}:443",
        "${HTTPS_PORT:-443}:443/udp",
    ]


def test_caddy_runs_the_projects_caddyfile_and_keeps_its_certificates(compose):
    caddy = compose["services"]["caddy"]
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in caddy["volumes"]
    # The image keeps certificates, keys and its local authority in /data, and its
    # last configuration in /config: named volumes, so a restart asks for nothing anew.
    for volume, mount in (("caddy_data", "/data"), ("caddy_config", "/config")):
        assert f"{volume}:{mount}" in caddy["volumes"]
        assert volume in compose["volumes"]
    assert caddy["environment"]["SITE_ADDRESS"] == "${SITE_ADDRESS:-localhost}"
    assert caddy["restart"] == "unless-stopped"
    # The Caddyfile names that address and passes everything to nginx.
    text = CADDYFILE.read_text()
    assert re.search(r"^\{\$SITE_ADDRESS:localhost\} \{$", text, flags=re.M)
    assert re.search(r"^\s*reverse_proxy nginx:80\b", text, flags=re.M)


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
    assert conditions("caddy") == {"nginx": "service_started"}
    assert conditions("sweeper") == {
        "db": "service_healthy",
        "migrate": "service_completed_successfully",
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


def test_uploads_live_in_a_volume_that_web_writes_and_nginx_only_reads(compose):
    services = compose["services"]
    assert "media" in compose["volumes"]
    assert "media:/srv/media" in services["web"]["volumes"]
    assert "media:/srv/media" in services["sweeper"]["volumes"]
    assert "media:/srv/media:ro" in services["nginx"]["volumes"]
    environment = services["web"]["environment"]
    assert environment["MEDIA_ROOT"] == "/srv/media"
    # The prefix the site puts in X-Accel-Redirect is nginx's internal location, which
    # reads the same directory the site writes.
    assert environment["CHAT_X_ACCEL_PREFIX"] == "${CHAT_X_ACCEL_PREFIX-/_files/}"
    location = re.search(r"location /_files/ \{(.*?)\}", NGINX_CONF.read_text(), flags=re.S)
    assert location, "deploy/nginx.conf should have a location /_files/"
    assert re.search(r"^\s*internal;", location[1], flags=re.M)
    assert re.search(r"^\s*alias /srv/media/;", location[1], flags=re.M)


def test_sweeper_removes_orphan_uploads_every_hour_without_a_port(compose):
    sweeper = compose["services"]["sweeper"]
    assert sweeper["image"] == compose["services"]["web"]["image"]
    assert sweeper["environment"] == compose["services"]["web"]["environment"]
    assert "ports" not in sweeper and "expose" not in sweeper
    script = sweeper["command"][-1]
    assert sweeper["command"][:2] == ["sh", "-c"]
    assert "python manage.py sweep_uploads" in script
    assert "sleep 3600" in script and script.startswith("while true;")
    # It serves nothing, so the image's HTTP healthcheck does not apply.
    assert sweeper["healthcheck"] == {"disable": True}
    assert sweeper["restart"] == "unless-stopped"


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
    # The healthcheck asks the health listener, which a storm on PORT does not delay.
    assert any("CHAT_HEALTH_PORT=8001" in env.split() for env in by_name["ENV"])
    assert any("pip install '.[s3]'" in run for run in by_name["RUN"])
    # The media volume's mount point belongs to the user that writes uploads there.
    assert any(
        "mkdir -p" in run and "/srv/media" in run and "chown chat:chat" in run
        for run in by_name["RUN"]
    )
    assert "MEDIA_ROOT=/srv/media" in by_name["ENV"]
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


def render_nginx_conf(
    *, listen: str, servers: list[str], static_root: Path, media_root: Path, workdir: Path
) -> str:
    """Returns deploy/nginx.conf with the lines marked "test:" pointed at local processes.

    Adds a local upstream of `servers` (named in place of Docker's `web:8000`) and
    temp paths inside `workdir`; everything else is the production file.
    """
    text = NGINX_CONF.read_text()
    swaps = {
        "listen 80;": f"listen {listen};",
        "set $web http://web:8000;": "set $web http://chat_servers;",
        "alias /srv/static/;": f"alias {static_root}/;",
        "alias /srv/media/;": f"alias {media_root}/;",
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

    def __init__(
        self, servers: list[ServerProcess], static_root: Path, media_root: Path, workdir: Path
    ) -> None:
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
                media_root=media_root,
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


@pytest.fixture(scope="module")
def media_root(deploy_dir):
    """The servers' MEDIA_ROOT, which nginx's workers read as the compose volume."""
    root = deploy_dir / "media"
    root.mkdir(mode=0o755)
    return root


# The servers answer /metrics to this token; nginx must not pass it on.
METRICS_TOKEN = "deployment-test-metrics-token"


@pytest.fixture
def site(database, deploy_redis, static_root, media_root, deploy_dir):
    """nginx with the project's config in front of two server processes."""
    if not NGINX.exists():
        pytest.fail("The deployment test needs Debian's nginx: run 'apt-get install nginx'.")
    env = {
        "REDIS_URL": redis_url_of(deploy_redis),
        # As docker-compose.yml sets them for `web`.
        "MEDIA_ROOT": str(media_root),
        "CHAT_X_ACCEL_PREFIX": "/_files/",
        "METRICS_TOKEN": METRICS_TOKEN,
    }
    servers = [ServerProcess(database, args=SERVER_ARGS, **env).start() for _ in range(2)]
    workdir = Path(tempfile.mkdtemp(prefix="nginx-", dir=deploy_dir))
    os.chmod(workdir, 0o755)
    nginx = NginxProcess(servers, static_root, media_root, workdir)
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
def test_metrics_are_scraped_from_each_process_never_through_nginx(site):
    authorization = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    # Each process answers its own scrape...
    for server in site.servers:
        request = urllib.request.Request(f"{server.url}/metrics", headers=authorization)
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200
            assert "chat_sockets_open" in answer.read().decode()
    # ...and nginx, which would reach a replica at random, answers none.
    request = urllib.request.Request(f"{site.url}/metrics", headers=authorization)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 404


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


# --- Uploaded files through nginx ----------------------------------------------


def _http(
    base_url: str,
    method: str,
    path: str,
    *,
    browser: Browser | None = None,
    body: bytes | None = None,
    headers: dict | None = None,
    context: ssl.SSLContext | None = None,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request with `browser`'s cookies (to a front server or a server); raw bytes.

    An https `base_url` is reached over TLS, trusting `context`'s certificates.
    """
    url = urllib.parse.urlsplit(base_url)
    sent = dict(headers or {})
    if browser is not None:
        sent["Cookie"] = "; ".join(f"{cookie.name}={cookie.value}" for cookie in browser.jar)
    if url.scheme == "https":
        connection = http.client.HTTPSConnection(
            url.hostname, url.port, timeout=30, context=context
        )
    else:
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def _upload(browser: Browser, name: str, data: bytes) -> tuple[int, dict]:
    """POSTs one file to /uploads/ as the page does; returns the status and the JSON answer."""
    boundary = uuid.uuid4().hex
    body = b"".join(
        [
            f"--{boundary}\r\n".encode(),
            f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'.encode(),
            b"Content-Type: application/octet-stream\r\n\r\n",
            data,
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
    status, _, answer = _http(
        browser.base_url,
        "POST",
        "/uploads/",
        browser=browser,
        body=body,
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "X-CSRFToken": browser.cookie("csrftoken"),
            "Origin": browser.base_url,
        },
        context=getattr(browser, "context", None),
    )
    return status, json.loads(answer)


def _png(width: int, height: int) -> bytes:
    """A real PNG picture of the given size."""
    picture = io.BytesIO()
    Image.linear_gradient("L").resize((width, height)).convert("RGB").save(picture, "PNG")
    return picture.getvalue()


@pytest.mark.server
def test_nginx_sends_an_uploaded_file_to_whoever_the_site_allows(site, media_root):
    alice = Browser(site.url)
    alice.signup(_name("alice"))
    bob = Browser(site.url)
    bob.signup(_name("bob"))
    name = "résumé notes.txt"
    data = "Notes in plain text, accents and all: é à ü.\n".encode() * 50
    status, answer = _upload(alice, name, data)
    assert status == 201, answer
    assert (answer["name"], answer["size"], answer["type"]) == (name, len(data), "text/plain")
    url = f"/uploads/{answer['id']}/"

    status, through_nginx, body = _http(site.url, "GET", url, browser=alice)
    assert status == 200
    assert body == data
    assert through_nginx["X-Content-Type-Options"] == "nosniff"
    assert through_nginx["Content-Disposition"] == content_disposition_header(True, name)
    assert through_nginx["Content-Type"].startswith("text/plain")
    assert through_nginx["Cache-Control"].startswith("private")

    # Each server only decided and named the file: nginx read the bytes from disk and
    # kept (or set again) every header the site gave.
    for server in site.servers:
        status, direct, body = _http(server.url, "GET", url, browser=alice)
        assert (status, body) == (200, b"")
        redirect = direct["X-Accel-Redirect"]
        assert redirect.startswith("/_files/")
        for header in ("Content-Type", "Content-Disposition", "Cache-Control"):
            assert through_nginx[header] == direct[header], header
        assert "sandbox" in direct["Content-Security-Policy"]
        assert through_nginx["Content-Security-Policy"] == direct["Content-Security-Policy"]
    stored = media_root / urllib.parse.unquote(redirect.removeprefix("/_files/"))
    assert stored.read_bytes() == data

    # The internal location is not reachable from outside, though the file is there.
    status, _, _ = _http(site.url, "GET", redirect, browser=alice)
    assert status == 404
    # Nobody else may have a file not yet sent in a message, and strangers are asked
    # to log in.
    status, _, body = _http(site.url, "GET", url, browser=bob)
    assert status == 404 and data not in body
    status, headers, _ = _http(site.url, "GET", url)
    assert (status, headers["Location"]) == (302, f"/accounts/login/?next={url}")


@pytest.mark.server
def test_nginx_sends_an_uploaded_picture_and_its_thumbnail(site):
    alice = Browser(site.url)
    alice.signup(_name("alice"))
    status, answer = _upload(alice, "sunset.png", _png(640, 400))
    assert status == 201, answer
    assert (answer["type"], answer["width"], answer["height"]) == ("image/png", 640, 400)

    status, headers, body = _http(site.url, "GET", f"/uploads/{answer['id']}/", browser=alice)
    assert status == 200
    assert headers["Content-Type"] == "image/png"
    assert headers["Content-Disposition"].startswith("inline")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert Image.open(io.BytesIO(body)).size == (640, 400)

    thumb_url = f"/uploads/{answer['id']}/thumb/"
    status, headers, body = _http(site.url, "GET", thumb_url, browser=alice)
    assert status == 200
    assert headers["X-Content-Type-Options"] == "nosniff"
    width, height = Image.open(io.BytesIO(body)).size
    assert max(width, height) <= 320 and abs(width / height - 640 / 400) < 0.02


@pytest.mark.server
def test_nginx_passes_uploads_up_to_the_sites_limit_and_refuses_bigger_ones_in_json(site):
    alice = Browser(site.url)
    alice.signup(_name("alice"))
    limit = 25 * 1024 * 1024  # CHAT_MAX_UPLOAD_BYTES' default

    # A file of exactly the limit, in its multipart form, gets through nginx.
    status, answer = _upload(alice, "big.txt", b"a" * limit)
    assert status == 201, answer
    assert answer["size"] == limit
    # One byte more: nginx passes it on, and the site itself refuses it.
    status, answer = _upload(alice, "bigger.txt", b"a" * (limit + 1))
    assert status == 413
    assert answer["error"] == "too_big"

    # Far over the limit: nginx answers from the headers alone, in the site's JSON.
    url = urllib.parse.urlsplit(site.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        connection.putrequest("POST", "/uploads/")
        connection.putheader("Content-Type", "multipart/form-data; boundary=x")
        connection.putheader("Content-Length", str(100 * 1024 * 1024))
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 413
        assert response.headers["Content-Type"] == "application/json"
        answer = json.loads(response.read())
    finally:
        connection.close()
    assert answer["error"] == "too_big" and answer["message"]


# --- HTTPS: Caddy in front of nginx ----------------------------------------------


def render_caddyfile(*, upstream: str, http_port: int) -> str:
    """Returns deploy/Caddyfile with the line marked "test:" pointed at the test's nginx.

    Adds local-only global options (no admin endpoint, plain HTTP on `http_port`,
    every listener on 127.0.0.1); the site's address comes from SITE_ADDRESS, as in
    docker-compose.yml. Everything else is the production file.
    """
    text = CADDYFILE.read_text()
    old = "reverse_proxy nginx:80 # test:"
    assert text.count(old) == 1, f"deploy/Caddyfile should hold {old!r} once"
    text = text.replace(old, f"reverse_proxy {upstream} # test:")
    local = f"\tadmin off\n\thttp_port {http_port}\n\tdefault_bind 127.0.0.1\n"
    assert text.count("\n{\n") == 1, "deploy/Caddyfile should open one global options block"
    return text.replace("\n{\n", "\n{\n" + local, 1)


class CaddyProcess:
    """Debian's caddy running deploy/Caddyfile in the foreground, all its files in `workdir`.

    Serves https://localhost:<port> with a certificate of its own local authority,
    whose root certificate `context` trusts (and nothing else).
    """

    def __init__(self, upstream: str, workdir: Path) -> None:
        self.port = free_port()
        self.http_port = free_port()
        self.url = f"https://localhost:{self.port}"
        self.ws_url = f"wss://localhost:{self.port}/ws/chat/"
        self.http_url = f"http://localhost:{self.http_port}"
        self.workdir = workdir
        self.conf = workdir / "Caddyfile"
        self.conf.write_text(render_caddyfile(upstream=upstream, http_port=self.http_port))
        # Caddy keeps its authority and certificates under XDG_DATA_HOME (HOME as a
        # fallback): here, not in the machine's home directory.
        self.env = {
            **os.environ,
            "HOME": str(workdir),
            "XDG_DATA_HOME": str(workdir / "data"),
            "XDG_CONFIG_HOME": str(workdir / "config"),
            "SITE_ADDRESS": f"localhost:{self.port}",
        }
        self.root_certificate = workdir / "data/caddy/pki/authorities/local/root.crt"
        self.context: ssl.SSLContext | None = None
        self.log = workdir / "caddy.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 20) -> "CaddyProcess":
        """Starts caddy and waits until /healthz answers through it over verified HTTPS."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [CADDY, "run", "--config", self.conf, "--adapter", "caddyfile"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"caddy exited early:\n{self.output()}")
            # The root certificate appears once the authority exists; the site's
            # certificate follows it.
            try:
                context = ssl.create_default_context(cafile=self.root_certificate)
                with urllib.request.urlopen(self.url + "/healthz", timeout=1, context=context):
                    self.context = context
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"caddy did not answer in {timeout} s:\n{self.output()}")

    def stop(self) -> None:
        """Stops caddy (SIGTERM is its graceful exit)."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def output(self) -> str:
        """Returns what caddy logged."""
        return self.log.read_text(errors="replace")


@dataclass
class TlsSite:
    """The site as people reach it over HTTPS: Caddy's addresses, and the servers."""

    url: str
    ws_url: str
    http_url: str
    context: ssl.SSLContext
    servers: list[ServerProcess]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class TlsBrowser(Browser):
    """A cookie-keeping HTTP client that reaches the site over verified HTTPS."""

    def __init__(self, site: TlsSite) -> None:
        super().__init__(site.url)
        self.context = site.context
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar),
            urllib.request.HTTPSHandler(context=site.context),
            _NoRedirect(),
        )


class TlsChatClient(ChatClient):
    """A websocket client of the site over wss://, verifying Caddy's certificate."""

    async def open(self) -> "TlsChatClient":
        """Connects and reads `hello`."""
        self.ws = await websockets.connect(
            self.server.ws_url,
            origin=self.server.url,
            additional_headers={"Cookie": f"sessionid={self.session}"},
            ssl=self.server.context,
            open_timeout=10,
            max_size=None,
        )
        self.hello = await self.receive_type("hello")
        return self


@pytest.fixture(scope="module")
def tls_site(database, deploy_redis, static_root, media_root, deploy_dir):
    """Caddy (HTTPS) in front of nginx in front of two servers with production settings."""
    if not CADDY.exists():
        pytest.skip("The HTTPS deployment test needs Debian's caddy: run 'apt-get install caddy'.")
    if not NGINX.exists():
        pytest.fail("The deployment test needs Debian's nginx: run 'apt-get install nginx'.")
    env = {
        "REDIS_URL": redis_url_of(deploy_redis),
        "MEDIA_ROOT": str(media_root),
        "CHAT_X_ACCEL_PREFIX": "/_files/",
    }
    servers = [ServerProcess(database, args=SERVER_ARGS, **env) for _ in range(2)]
    for server in servers:
        # As in production: HTTPS expected, plain HTTP redirected, cookies Secure.
        del server.env["CHAT_PLAIN_HTTP"]
    workdir = Path(tempfile.mkdtemp(prefix="front-", dir=deploy_dir))
    os.chmod(workdir, 0o755)
    nginx = NginxProcess(servers, static_root, media_root, workdir)
    (workdir / "caddy").mkdir()
    caddy = CaddyProcess(f"127.0.0.1:{nginx.port}", workdir / "caddy")
    try:
        for server in servers:
            server.start()
        nginx.start()
        caddy.start()
        yield TlsSite(caddy.url, caddy.ws_url, caddy.http_url, caddy.context, servers)
    finally:
        caddy.stop()
        nginx.stop()
        for server in servers:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.server
def test_the_site_answers_over_https_through_caddy_and_plain_http_is_redirected(
    tls_site, static_root
):
    browser = TlsBrowser(tls_site)
    status, headers, body = browser.get("/accounts/login/")
    # The site saw https (Caddy's X-Forwarded-Proto, passed on by nginx): the page
    # itself, not a redirect, and browsers are told to keep to HTTPS.
    assert status == 200
    assert 'name="password"' in body
    assert headers["Strict-Transport-Security"].startswith("max-age=31536000")

    status, headers, body = browser.get("/static/chat/app.js")
    assert status == 200
    assert body == (static_root / "chat" / "app.js").read_text()
    assert "max-age=3600" in headers["Cache-Control"]

    # Plain HTTP on Caddy's HTTP port: the same address over HTTPS.
    status, headers, _ = Browser(tls_site.http_url).get("/accounts/login/?next=/")
    assert status == 308
    assert headers["Location"] == f"{tls_site.url}/accounts/login/?next=/"

    # Signing up logs in with a session cookie browsers send over HTTPS only.
    status, headers, _ = browser.post_form(
        "/accounts/signup/",
        {"username": _name("dora"), "password1": PASSWORD, "password2": PASSWORD},
    )
    assert status == 302
    cookies = {value.split("=", 1)[0]: value for value in headers.get_all("Set-Cookie")}
    assert re.search(r";\s*Secure\b", cookies["sessionid"], flags=re.I)
    status, _, _ = browser.get("/")
    assert status == 200


@pytest.mark.server
def test_two_people_chat_over_wss_through_caddy(tls_site):
    alice, bob = _name("alice"), _name("bob")
    alice_session = TlsBrowser(tls_site).signup(alice)
    bob_session = TlsBrowser(tls_site).signup(bob)

    async def conversation():
        alice_ws = await TlsChatClient(tls_site, alice_session).open()
        bob_ws = await TlsChatClient(tls_site, bob_session).open()
        assert alice in bob_ws.hello["online"]
        await _sees_presence(alice_ws, bob, True)

        await alice_ws.send(
            {"type": "send", "room": "general", "body": "over tls", "client_id": _name("k")}
        )
        sent = await _frames(alice_ws, {"ack", "message"})
        received = await bob_ws.receive_type("message")
        assert sent["ack"]["id"] == received["id"]
        assert (received["from"], received["room"], received["body"]) == (
            alice,
            "general",
            "over tls",
        )
        await bob_ws.send({"type": "send", "to": alice, "body": "psst", "client_id": "dm1"})
        direct = await alice_ws.receive_type("message")
        assert (direct["from"], direct["to"], direct["body"]) == (bob, alice, "psst")

        # The site knows the socket came over TLS: a page of its plain-HTTP origin
        # may not open one.
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(
                tls_site.ws_url,
                origin=tls_site.url.replace("https://", "http://"),
                additional_headers={"Cookie": f"sessionid={alice_session}"},
                ssl=tls_site.context,
                open_timeout=10,
            )
        assert refused.value.response.status_code == 403

        await bob_ws.close()
        await _sees_presence(alice_ws, bob, False)
        await alice_ws.close()

    asyncio.run(conversation())


@pytest.mark.server
def test_files_go_up_and_come_back_over_https_through_caddy(tls_site):
    alice = TlsBrowser(tls_site)
    alice.signup(_name("alice"))
    name = "résumé notes.txt"
    data = "Notes in plain text, accents and all: é à ü.\n".encode() * 50
    status, answer = _upload(alice, name, data)
    assert status == 201, answer
    url = f"/uploads/{answer['id']}/"

    # nginx sends the bytes on the site's X-Accel-Redirect; Caddy passes them on.
    status, headers, body = _http(tls_site.url, "GET", url, browser=alice, context=alice.context)
    assert status == 200
    assert body == data
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Disposition"] == content_disposition_header(True, name)
    assert "sandbox" in headers["Content-Security-Policy"]

    # Caddy sets no body limit of its own: a file of exactly the site's limit gets
    # through to nginx and the site.
    limit = 25 * 1024 * 1024  # CHAT_MAX_UPLOAD_BYTES' default
    status, answer = _upload(alice, "big.txt", b"a" * limit)
    assert status == 201, answer
    assert answer["size"] == limit


@pytest.mark.server
def test_the_site_sees_the_browsers_address_through_caddy_and_nginx(tls_site):
    # The browser connects from 127.0.0.2 and claims another address; the proxies
    # connect from 127.0.0.1. Login lockouts and logs need the browser's own address.
    probe = f"/healthz?probe={uuid.uuid4().hex}"
    url = urllib.parse.urlsplit(tls_site.url)
    connection = http.client.HTTPSConnection(
        url.hostname,
        url.port,
        timeout=10,
        context=tls_site.context,
        source_address=("127.0.0.2", 0),
    )
    try:
        connection.request("GET", probe, headers={"X-Forwarded-For": "203.0.113.9"})
        assert connection.getresponse().status == 200
    finally:
        connection.close()
    # The server logs each request as it answers it, before the client reads it.
    seen = [
        line
        for server in tls_site.servers
        for line in server.output().splitlines()
        if f"GET {probe} " in line
    ]
    assert len(seen) == 1, seen
    assert "127.0.0.2:" in seen[0]


def test_the_metrics_profile_scrapes_every_web_replica_from_this_machine_only(compose):
    prometheus = compose["services"]["prometheus"]
    assert prometheus["profiles"] == ["metrics"]
    # Its page is published on the loopback address only, never to the world.
    assert all(port.startswith("127.0.0.1:") for port in prometheus["ports"])
    assert "./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus["volumes"]
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["dns_sd_configs"] == [{"names": ["web"], "type": "A", "port": 8000}]
    assert job["authorization"]["credentials_file"] in prometheus["entrypoint"][-1]
