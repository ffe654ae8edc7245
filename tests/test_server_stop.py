"""Stopping the site is no failure: the server exits with status 0 and no traceback on
Ctrl+C (SIGINT) or SIGTERM, after shutting down, and `make run` stopped with Ctrl+C at
a terminal ends with status 0 and no "Interrupt" from make.
"""

import asyncio
import os
import pty
import re
import select
import signal
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.server import ROOT, Browser, ChatClient, ServerProcess, base_env, free_port

pytestmark = pytest.mark.server


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_the_server_exits_with_status_0_when_stopped_by_a_signal(database, sig):
    server = ServerProcess(database).start()
    server.process.send_signal(sig)
    status = server.process.wait(timeout=20)
    assert status == 0, server.output()
    assert "Traceback" not in server.output()
    assert "Finished server process" in server.output()


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")),
    reason="the event loop's own connections are PostgreSQL's (chat/loop_db.py)",
)
@pytest.mark.parametrize("kind", ["uvicorn", "daphne"])
def test_a_stopping_server_closes_its_event_loops_database_connections(database, kind):
    server = ServerProcess(database, CHAT_SERVER=kind, CHAT_LOG_LEVEL="INFO").start()
    try:
        session = Browser(server.url).signup(f"stop{uuid.uuid4().hex[:8]}")

        async def greeted() -> dict:
            client = await ChatClient(server, session).open()
            await client.close()
            return client.hello

        # The handshake read its login and greeting on the loop's connections.
        assert asyncio.run(greeted())["type"] == "hello"
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=20) == 0, server.output()
    finally:
        server.stop()
    assert re.search(r"closed [1-9]\d* database connections of the event loop", server.output())


class Terminal:
    """A command run on a pseudo-terminal, as a person runs it, with its output kept."""

    def __init__(self, argv: list[str], env: dict) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: becomes the command
            os.chdir(ROOT)
            os.execvpe(argv[0], argv, env)
        self.output = b""

    def read_until(self, text: bytes, *, timeout: float) -> None:
        """Reads the output until `text` shows up; fails naming what was seen."""
        deadline = time.monotonic() + timeout
        while text not in self.output:
            left = deadline - time.monotonic()
            assert left > 0, f"{text!r} never came; the terminal showed:\n{self.text()}"
            ready, _, _ = select.select([self.fd], [], [], min(left, 1.0))
            if ready:
                self._read()

    def _read(self) -> bool:
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # the command ended and the terminal closed
            return False
        self.output += chunk
        return bool(chunk)

    def press_ctrl_c(self) -> None:
        """Types Ctrl+C, which the terminal turns into SIGINT for its foreground job."""
        os.write(self.fd, b"\x03")

    def wait(self, *, timeout: float) -> int:
        """Reads what is left and returns the command's exit status."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                while self._read():
                    pass
                return os.waitstatus_to_exitcode(status)
            ready, _, _ = select.select([self.fd], [], [], 0.5)
            if ready:
                self._read()
        os.kill(self.pid, signal.SIGKILL)
        raise AssertionError(f"still running after Ctrl+C:\n{self.text()}")

    def text(self) -> str:
        """The output as text."""
        return self.output.decode(errors="replace")


def test_make_run_stopped_with_ctrl_c_ends_cleanly(tmp_path: Path):
    port = free_port()
    venv_python = Path(sys.executable)
    env = base_env(DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3", DEBUG="1")
    # `make run` as README gives it, on this suite's virtual environment and a
    # throwaway database; installing and compiling are already done and skipped.
    argv = [
        "make",
        "--no-print-directory",
        "run",
        f"PORT={port}",
        f"VENV={venv_python.parent.parent}",
    ]
    terminal = Terminal(argv, env)
    terminal.read_until(f"127.0.0.1:{port}".encode(), timeout=90)
    terminal.press_ctrl_c()
    status = terminal.wait(timeout=30)
    text = terminal.text()
    assert status == 0, text
    assert "Interrupt" not in text and "Error" not in text, text
    assert "Traceback" not in text, text
    assert "Finished server process" in text
