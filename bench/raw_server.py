"""The upper bound: a room broadcast written with the `websockets` library alone.

No Django, no channel layer, no database: every `send` frame is parsed once,
turned into one `message` frame, encoded once and written to every open socket.

    .venv/bin/python -m bench.raw_server --port 8765
"""

import argparse
import asyncio
import contextlib
import json
import signal

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

# Every open socket is in the one room.
members: set[ServerConnection] = set()


async def handle(socket: ServerConnection) -> None:
    """Keeps one socket in the room and broadcasts each of its `send` frames."""
    members.add(socket)
    try:
        async for text in socket:
            frame = json.loads(text)
            if frame.get("type") != "send":
                continue
            message = {
                "type": "message",
                "room": frame.get("room"),
                "body": frame.get("body"),
                "client_id": frame.get("client_id"),
            }
            broadcast(members, json.dumps(message, separators=(",", ":")))
    except ConnectionClosed:
        pass  # a load generator may drop its sockets without a closing handshake
    finally:
        members.discard(socket)


async def main(host: str, port: int) -> None:
    """Serves until SIGTERM or SIGINT."""
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.cancel)
    # No compression, no pings: the same work per frame as the other targets.
    async with serve(handle, host, port, compression=None, ping_interval=None, max_size=64 * 1024):
        print(f"raw broadcast server on ws://{host}:{port}/", flush=True)
        with contextlib.suppress(asyncio.CancelledError):
            await stop


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    options = parser.parse_args()
    asyncio.run(main(options.host, options.port))
