"""A reconnect storm at toy size over two real server processes on one Redis: one process
is restarted while messages are sent; every client comes back with the page's backoff,
catches up with `sync`, and no message is lost or doubled."""

import asyncio
import json
import subprocess
import sys
import time

import pytest
from pytest_redis import factories

from bench import storm
from tests.conftest import redis_url_of
from tests.server import ROOT, ServerProcess

pytestmark = pytest.mark.server

storm_redis = factories.redis_proc(port=None)

CLIENTS, SENDERS = 20, 2


def _accounts(server: ServerProcess) -> dict:
    """Users with a login session each, stored straight into the servers' database."""
    spec = json.dumps({"storm": CLIENTS, "send": SENDERS})
    done = subprocess.run(
        [sys.executable, "-m", "bench.seed", "accounts", spec],
        cwd=ROOT,
        env=server.env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def _headers(server: ServerProcess, session: str) -> dict:
    return {"Origin": server.url, "Cookie": f"sessionid={session}"}


@pytest.mark.timeout(180)
def test_storm_over_two_processes_loses_and_doubles_nothing(database, storm_redis):
    servers = [
        ServerProcess(database, REDIS_URL=redis_url_of(storm_redis)).start() for _ in range(2)
    ]
    restarted, kept = servers
    try:
        users = _accounts(restarted)
        # Clients alternate over the two processes, senders too.
        ports = [server.port for server in servers]

        def again() -> float:
            """Restarts one of the two processes; returns the seconds it was down."""
            began = time.monotonic()
            restarted.stop()
            restarted.start(timeout=60)
            return time.monotonic() - began

        async def restart() -> float:
            return await asyncio.to_thread(again)

        figures = asyncio.run(
            storm.storm(
                ports=ports,
                path="/ws/chat/",
                room="general",
                receivers=[_headers(kept, session) for _, session in users["storm"]],
                senders=[_headers(kept, session) for _, session in users["send"]],
                restart=restart,
                send_rate=10,
                back_within=90,
                log=lambda line: None,
            )
        )
    finally:
        for server in servers:
            server.stop()
    print(f"\nfigures: {figures}")
    # Half the clients were on the restarted process; each came back and caught up.
    assert figures["dropped"] >= CLIENTS // 2
    assert figures["back"] == figures["synced"] == figures["dropped"]
    assert figures["messages_sent"] > 0
    assert figures["messages_acked"] == figures["messages_sent"]
    assert (figures["lost"], figures["missing_copies"], figures["doubled"]) == (0, 0, 0), figures


def test_the_crowd_reads_a_hello_without_its_lists_of_names():
    from chat.protocol import encode, encode_hello, hello_frame

    frame = hello_frame(
        user="ann",
        online=["ann", "ben"],
        rooms=["general"],
        direct=["ben"],
        last_id=5,
        rev=7,
        unread=[],
        staff=False,
        away=["cat"],
    )
    head = storm._hello_head(encode_hello(frame).encode())
    assert head == {key: value for key, value in frame.items() if key not in ("online", "away")}
    # Laid out otherwise (the lists first), the whole frame is read.
    assert storm._hello_head(encode(frame).encode())["rev"] == 7
