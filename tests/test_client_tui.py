"""The terminal client's full-screen mode, driven by Textual's test pilot against a
real server: the online list shows who is there, and what is typed arrives in the log.
"""

import asyncio
import time
import uuid

import pytest

from chat.client.session import Session
from chat.client.tui import ChatApp
from tests.server import PASSWORD, Browser, ChatClient

pytestmark = pytest.mark.server


async def until(pilot, condition, what: str, timeout: float = 20) -> None:
    """Lets the app run until `condition()` holds; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        await pilot.pause(0.05)


def log_lines(app: ChatApp) -> list[str]:
    return [str(line) for line in app.query_one("#log").lines]


async def test_the_full_screen_mode_shows_who_is_online_and_the_messages(site_server):
    me, other = f"tui{uuid.uuid4().hex[:6]}", f"peer{uuid.uuid4().hex[:6]}"
    Browser(site_server.url).signup(me)
    peer = await ChatClient(site_server, Browser(site_server.url).signup(other)).open()
    session = Session(server=site_server.url, user=me, password=PASSWORD)
    await asyncio.to_thread(session.login)
    app = ChatApp(session)
    try:
        async with app.run_test(size=(110, 30)) as pilot:
            online = app.query_one("#online")
            await until(pilot, lambda: other in str(online.render()), "the peer in the online list")

            await pilot.press(*"hello from the pilot", "enter")
            await until(
                pilot,
                lambda: any(
                    line.endswith(f"<{me}> hello from the pilot") for line in log_lines(app)
                ),
                "my message in the log",
            )

            await peer.send(
                {"type": "send", "room": "general", "body": "welcome", "client_id": "w1"}
            )
            await until(
                pilot,
                lambda: any(line.endswith(f"<{other}> welcome") for line in log_lines(app)),
                "the peer's message in the log",
            )
            await app.action_quit()
    finally:
        await peer.close()
