"""The health listener: /healthz on a port and thread of its own, with the event loop's
state, so a probe is answered while the site's loop is busy and fails when it is stuck."""

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from chat import metrics
from chatsite import health_listener
from tests.server import ROOT, ServerProcess, free_port

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
HEALTHCHECK = ROOT / "deploy" / "healthcheck.py"


def _ask(port: int, path: str = "/healthz", method: str = "GET") -> tuple[int, dict, bytes]:
    """One request to the listener: status, headers and body."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _wait_for_answer(port: int, wanted, timeout: float = 30) -> dict:
    """Asks until `wanted(status, report)` holds; returns that report."""
    deadline = time.monotonic() + timeout
    while True:
        status, _, body = _ask(port)
        report = json.loads(body)
        if wanted(status, report):
            return report
        if time.monotonic() > deadline:
            raise AssertionError(f"still {status} {report} after {timeout} s")
        time.sleep(0.05)


@pytest.fixture
def listener():
    """The listener on a free port of this process; yields the port."""
    server = health_listener.start("127.0.0.1", 0)
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def event_loop_thread():
    """An event loop running in a thread with the lag sampler on, as in the server."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def watch() -> None:
        metrics.watch_loop_lag()

    asyncio.run_coroutine_threadsafe(watch(), loop).result(10)
    yield loop

    async def stop() -> None:
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()

    asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def test_listener_reports_database_redis_and_the_event_loop(listener, event_loop_thread, settings):
    report = _wait_for_answer(listener, lambda status, report: status == 200)
    assert report == {
        "status": "ok",
        "database": "ok",
        "redis": "ok" if settings.REDIS_URL else "off",
        "event_loop": "ok",
    }
    _, headers, _ = _ask(listener)
    assert headers["Content-Type"] == "application/json"
    assert headers["Cache-Control"] == "no-store"


def test_listener_says_starting_until_an_event_loop_runs(listener):
    status, _, body = _ask(listener)
    assert status == 503
    assert json.loads(body)["event_loop"] == "starting"
    assert json.loads(body)["status"] == "error"


def test_listener_fails_a_stuck_event_loop_and_passes_it_again_once_it_runs(
    listener, event_loop_thread, settings
):
    settings.CHAT_HEALTH_LOOP_STALL_SECONDS = 1.0
    _wait_for_answer(listener, lambda status, report: status == 200)
    # A callback that never returns holds the loop, as a blocking call in a handler would.
    release = threading.Event()
    event_loop_thread.call_soon_threadsafe(release.wait, 120)
    try:
        report = _wait_for_answer(listener, lambda status, report: status == 503)
        assert report["event_loop"].startswith("error: no turn for ")
        assert report["status"] == "error"
        assert report["database"] == "ok"
    finally:
        release.set()
    _wait_for_answer(listener, lambda status, report: report["event_loop"] == "ok")


def test_listener_answers_head_and_refuses_other_paths_and_methods(listener, event_loop_thread):
    _wait_for_answer(listener, lambda status, report: status == 200)
    status, _, body = _ask(listener, method="HEAD")
    assert (status, body) == (200, b"")
    status, _, body = _ask(listener, "/metrics")
    assert status == 404
    assert json.loads(body)["status"] == "error"
    status, headers, _ = _ask(listener, method="POST")
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"


# --- In the server process -------------------------------------------------------


def _healthcheck(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, HEALTHCHECK],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=15,
    )


@pytest.mark.server
def test_server_answers_on_its_health_port_and_the_image_healthcheck_asks_there(database):
    health_port = free_port()
    server = ServerProcess(database, CHAT_HEALTH_PORT=str(health_port)).start()
    try:
        report = _wait_for_answer(health_port, lambda status, report: status == 200)
        assert report["event_loop"] == "ok"
        ok = _healthcheck({"PORT": str(server.port), "CHAT_HEALTH_PORT": str(health_port)})
        assert ok.returncode == 0, ok.stdout
        # It asks the health port, not the site's: with nothing there, it fails.
        nothing = free_port()
        down = _healthcheck({"PORT": str(server.port), "CHAT_HEALTH_PORT": str(nothing)})
        assert down.returncode == 1
        assert f":{nothing}/healthz failed" in down.stdout
    finally:
        server.stop()


@pytest.mark.server
def test_server_does_not_start_when_its_health_port_is_taken(database):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = ServerProcess(database, CHAT_HEALTH_PORT=str(port))
        with pytest.raises(RuntimeError, match=f"CHAT_HEALTH_PORT {port}: cannot listen"):
            server.start()
        assert server.process.returncode not in (0, None)
