"""The terminal client (`python -m chat.client`) in a pipe against real server processes:
people talk in a room and by DM, /who lists them, a restart is caught up, /quit exits 0.
"""

import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

# The browser fixtures, for the person using the page next to the terminals.
from tests.browser.conftest import chromium, new_page  # noqa: F401
from tests.server import PASSWORD, ROOT, Browser, ServerProcess

pytestmark = pytest.mark.server


class TerminalClient:
    """One `python -m chat.client` process: lines typed into its stdin, read from its stdout."""

    def __init__(self, server_url: str, user: str, password: str = PASSWORD) -> None:
        self.user = user
        self.errors = tempfile.NamedTemporaryFile(prefix="chat-client-", suffix=".log")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "chat.client", "--server", server_url, "--user", user],
            cwd=ROOT,
            env={**os.environ, "CHAT_PASSWORD": password, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            text=True,
            encoding="utf-8",
        )
        self.seen: list[str] = []
        self._lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def type(self, line: str) -> None:
        """Types one line."""
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def expect(self, wanted, timeout: float = 20) -> str:
        """Waits for a line equal to `wanted` (or for which `wanted(line)` is true); returns it."""
        match = wanted if callable(wanted) else lambda line: line == wanted
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                line = None
            if line is None:
                raise AssertionError(
                    f"{self.user} never printed {wanted!r}; printed {self.seen}; "
                    f"stderr: {Path(self.errors.name).read_text()}"
                )
            self.seen.append(line)
            if match(line):
                return line

    def finish(self, timeout: float = 20) -> int:
        """Closes stdin, reads the rest of the output and returns the exit code."""
        self.process.stdin.close()
        code = self.process.wait(timeout)
        while (line := self._lines.get(timeout=timeout)) is not None:
            self.seen.append(line)
        return code

    def stop(self) -> None:
        """Ends the process if it still runs."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def terminal():
    """Starts terminal clients and ends any still running after the test."""
    started = []

    def _terminal(server_url: str, user: str, password: str = PASSWORD) -> TerminalClient:
        client = TerminalClient(server_url, user, password)
        started.append(client)
        return client

    yield _terminal
    for client in started:
        client.stop()


def sign_up(server_url: str, prefix: str) -> str:
    """Signs a new user up over HTTP; returns the username."""
    name = f"{prefix}{uuid.uuid4().hex[:6]}"
    Browser(server_url).signup(name)
    return name


def online_with(*names: str):
    """Matches an online list line naming every one of `names`."""

    def match(line: str) -> bool:
        return line.startswith("* online: ") and set(names) <= set(line[10:].split(", "))

    return match


@pytest.mark.browser
def test_two_clients_and_a_browser_user_talk_in_a_room_and_by_dm(site_server, terminal, request):
    from playwright.sync_api import expect

    from tests.browser.chat_page import message_row, say, wait_until_connected

    # The page's person, logged in with a session cookie of their own.
    web_name = f"web{uuid.uuid4().hex[:6]}"
    session = Browser(site_server.url).signup(web_name)
    page = request.getfixturevalue("new_page")()
    page.context.add_cookies([{"name": "sessionid", "value": session, "url": site_server.url}])
    page.goto(site_server.url + "/")
    wait_until_connected(page)
    ann, ben = sign_up(site_server.url, "ann"), sign_up(site_server.url, "ben")
    first = terminal(site_server.url, ann)
    first.expect(online_with(ann, web_name))
    second = terminal(site_server.url, ben)
    second.expect(online_with(ann, ben, web_name))
    first.expect(f"* {ben} is online")

    # In the room: from a terminal to the other terminal and the page, and back.
    second.type("hello from the terminal")
    first.expect(f"#general <{ben}> hello from the terminal")
    expect(message_row(page, "hello from the terminal")).to_have_count(1)
    say(page, "hello from the page")
    first.expect(f"#general <{web_name}> hello from the page")
    second.expect(f"#general <{web_name}> hello from the page")

    # By DM: named by the other party on each side.
    first.type(f"/dm {ben}")
    first.expect(f"* now in @{ben}")
    first.type("just between us")
    second.expect(f"@{ann} <{ann}> just between us")
    first.expect(f"@{ben} <{ann}> just between us")

    second.type("/who")
    second.expect(online_with(ann, ben, web_name))
    second.type("/rooms")
    second.expect(lambda line: line.startswith("* rooms: ") and "#general" in line)

    second.type("/quit")
    assert second.finish() == 0
    first.expect(f"* {ben} is offline")
    assert first.finish() == 0


def test_lines_piped_in_are_delivered_before_the_client_exits(site_server, terminal):
    reader = terminal(site_server.url, sign_up(site_server.url, "reader"))
    writer_name = sign_up(site_server.url, "writer")
    reader.expect(lambda line: line.startswith("* online: "))
    # printf 'one\ntwo\n' | python -m chat.client ...: stdin ends at once.
    piped = subprocess.run(
        [sys.executable, "-m", "chat.client", "--server", site_server.url, "--user", writer_name],
        cwd=ROOT,
        env={**os.environ, "CHAT_PASSWORD": PASSWORD},
        input="piped one\npiped two\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert piped.returncode == 0, piped.stderr
    reader.expect(f"#general <{writer_name}> piped one")
    reader.expect(f"#general <{writer_name}> piped two")


def test_a_wrong_password_is_refused_with_exit_code_2(site_server):
    name = sign_up(site_server.url, "wrong")
    result = subprocess.run(
        [sys.executable, "-m", "chat.client", "--server", site_server.url, "--user", name],
        cwd=ROOT,
        env={**os.environ, "CHAT_PASSWORD": "not-the-password"},
        input="hi\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "wrong username or password" in result.stderr
    assert result.stdout == ""


def _restarted(old: ServerProcess, database, **env: str) -> ServerProcess:
    """A new server process on the port and database of `old`."""
    new = ServerProcess(database, **env)
    new.port, new.url, new.ws_url = old.port, old.url, old.ws_url
    new.env["PORT"] = str(old.port)
    return new.start()


def test_a_client_catches_up_after_a_server_restart_without_loss_or_doubles(
    database, suite_redis_url, terminal
):
    extra = {"REDIS_URL": suite_redis_url} if suite_redis_url else {}
    server = ServerProcess(database, **extra).start()
    try:
        away_name, other_name = sign_up(server.url, "away"), sign_up(server.url, "other")
        away = terminal(server.url, away_name)
        away.expect(lambda line: line.startswith("* online: "))
        other = terminal(server.url, other_name)
        other.expect(online_with(away_name, other_name))
        away.type("before the restart")
        other.expect(f"#general <{away_name}> before the restart")

        # The client is frozen while the server restarts and a direct message is sent
        # to it (a conversation it has no other message of, so no gap in seq shows it):
        # it can only learn of that message by syncing after its reconnect.
        away.process.send_signal(signal.SIGSTOP)
        server.stop()
        server = _restarted(server, database, **extra)
        other.type(f"/dm {away_name}")
        other.type("while you were away")
        other.expect(f"@{away_name} <{other_name}> while you were away")
        away.process.send_signal(signal.SIGCONT)
        # Typed while the socket is down: sent once it is back, exactly once.
        away.type("after the restart")
        away.expect(f"@{other_name} <{other_name}> while you were away")
        other.expect(f"#general <{away_name}> after the restart")

        away.type("/quit")
        assert away.finish() == 0
        for line in (
            f"#general <{away_name}> before the restart",
            f"@{other_name} <{other_name}> while you were away",
            f"#general <{away_name}> after the restart",
        ):
            assert away.seen.count(line) == 1, (line, away.seen)
    finally:
        server.stop()
