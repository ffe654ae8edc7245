"""Runs the site under daphne with the websocket limits the contract promises.

`python -m chatsite.server [daphne options]`; HOST and PORT default the bind address.
A frame over 64 KiB must close the socket with 1009; daphne's own size limit makes
its websocket layer drop the connection instead (the client sees 1006), unless
"fail by drop" is switched off, which this server does.
"""

import os
import sys

from daphne.cli import CommandLineInterface
from daphne.server import Server
from twisted.internet import reactor

from chat.protocol import MAX_FRAME_BYTES


class ChatServer(Server):
    """daphne's server with frames over the contract's limit closed with 1009."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs["websocket_max_message_size"] = MAX_FRAME_BYTES
        kwargs["websocket_max_frame_size"] = MAX_FRAME_BYTES
        super().__init__(*args, **kwargs)

    def run(self) -> None:
        """Starts serving; the websocket factory exists once the reactor runs."""
        reactor.callWhenRunning(self._close_politely)
        super().run()

    def _close_politely(self) -> None:
        self.ws_factory.setProtocolOptions(failByDrop=False)


class ChatCommandLine(CommandLineInterface):
    """daphne's command line, serving with ChatServer."""

    server_class = ChatServer


def main(argv: list[str]) -> None:
    """Serves chatsite.asgi on HOST:PORT (default 127.0.0.1:8000)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    if not any(arg in argv for arg in ("-b", "--bind", "-p", "--port", "-u", "-e", "--fd")):
        argv = [
            "-b",
            os.environ.get("HOST", "127.0.0.1"),
            "-p",
            os.environ.get("PORT", "8000"),
            *argv,
        ]
    ChatCommandLine().run([*argv, "chatsite.asgi:application"])


if __name__ == "__main__":
    main(sys.argv[1:])
