"""Runs the site with the websocket limits the contract promises, under uvicorn or daphne.

`python -m chatsite.server [--server uvicorn|daphne] [--proxy-headers]
[--ping-interval S] [--ping-timeout S] [other daphne options]`; HOST and PORT give the
bind address, CHAT_SERVER the default server.

uvicorn (with uvloop, httptools and the sans-I/O websockets protocol) is the default:
measured side by side in `make bench`, it spends less CPU per frame than daphne
(docs/performance.md). daphne stays supported; its other options pass through.

Both close a frame over 64 KiB with 1009; daphne's own size limit makes its
websocket layer drop the connection instead (the client sees 1006), unless
"fail by drop" is switched off, which this module does. Both then end the
connection with FIN, not a reset (chatsite/websocket_protocol.py says why).
"""

import argparse
import asyncio
import functools
import gc
import logging
import os
import signal
import sys

from chat.protocol import MAX_FRAME_BYTES

SERVERS = ("uvicorn", "daphne")
APPLICATION = "chatsite.asgi:application"
# Seconds between keepalive pings, and to wait for the pong (daphne's defaults).
PING_INTERVAL, PING_TIMEOUT = 20.0, 30.0
# Collections of the middle generation between two full ones (CPython's default is
# 10). A full collection walks every object the process holds: with thousands of
# sockets open that is a pause of a third of a second to a second, and at the
# default a crowd of 5,000 arriving set off twelve of them (docs/performance.md,
# nineteenth step of issue #16). CPython still skips a full collection until the
# objects that survived the younger ones add up to a quarter of the old ones.
FULL_COLLECTION_EVERY = 100


def _options(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="python -m chatsite.server", description=__doc__)
    default = os.environ.get("CHAT_SERVER") or SERVERS[0]
    parser.add_argument("--server", choices=SERVERS, default=default)
    parser.add_argument(
        "--proxy-headers",
        action="store_true",
        help="trust X-Forwarded-For/-Proto from the proxy in front (nginx)",
    )
    parser.add_argument("--ping-interval", type=float, default=PING_INTERVAL)
    parser.add_argument("--ping-timeout", type=float, default=PING_TIMEOUT)
    options, rest = parser.parse_known_args(argv)
    if options.server not in SERVERS:  # argparse checks `choices` on the command line only
        parser.error(f"CHAT_SERVER must be one of {', '.join(SERVERS)}; got {options.server!r}")
    if options.server == "uvicorn" and rest:
        parser.error(f"unknown options for uvicorn: {' '.join(rest)}")
    return options, rest


def _exit_cleanly(signum: int, frame) -> None:
    """Ends the process with status 0: a stop asked for (Ctrl+C, SIGTERM) is no failure.

    uvicorn calls this once it has closed every socket and finished every task. The
    interpreter's teardown would then free, module by module, all that thousands of
    sockets left behind: a third of a stop at 6,000 sockets (docs/performance.md),
    with nothing in it that the operating system does not do. So the logs are
    flushed and the process ends at once.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _serve_uvicorn(options: argparse.Namespace) -> None:
    import uvicorn
    from django.conf import settings
    from uvicorn.main import STARTUP_FAILURE

    from chat import loop_db, metrics
    from chat.realtime import sockets
    from chatsite import accept
    from chatsite.websocket_protocol import OrderlyCloseProtocol

    class ChatServer(uvicorn.Server):
        """uvicorn's server, which takes connections in batches (chatsite/accept.py),
        samples its loop's lag from the start, and tells the site that it stops
        before it closes the sockets."""

        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            # From the first turn on, not from the first socket: the health listener
            # judges the loop by this sampler.
            metrics.watch_loop_lag()
            # Connections taken in batches within the handshake limit, not one a turn
            # (chatsite/accept.py), for the protocols uvicorn makes for its own.
            protocol = functools.partial(
                self.config.http_protocol_class,
                config=self.config,
                server_state=self.server_state,
                app_state=self.lifespan.state,
            )
            self.acceptors = accept.take_over(asyncio.get_running_loop(), self.servers, protocol)

        async def shutdown(self, sockets=None) -> None:
            for acceptor in getattr(self, "acceptors", ()):
                acceptor.stop()
            await super().shutdown(sockets)
            # Every socket is closed: the loop's own database connections go too.
            loop_db.close_all()

        def handle_exit(self, sig, frame) -> None:
            # The sockets closed next (1012) are handed off, not said goodbye to: their
            # users stay online while the pages reconnect (chat.presence).
            sockets.mark_stopping()
            stop_collecting()
            super().handle_exit(sig, frame)

    # uvicorn shuts down gracefully on SIGINT or SIGTERM, puts back the handlers it
    # found and raises the signal again; with Python's defaults that is a
    # KeyboardInterrupt traceback or death by SIGTERM (status 143, which `make run`
    # reports as an error). These handlers turn it into a clean exit instead.
    signal.signal(signal.SIGINT, _exit_cleanly)
    signal.signal(signal.SIGTERM, _exit_cleanly)

    quiet = logging.getLevelName(settings.CHAT_LOG_LEVEL) >= logging.WARNING
    config = uvicorn.Config(
        APPLICATION,
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8000")),
        loop="uvloop",
        http="httptools",
        # uvicorn's sans-I/O websockets protocol, closing in order after a refused
        # frame, so that a proxy passes the close code on (chatsite/websocket_protocol.py).
        ws=OrderlyCloseProtocol,
        ws_max_size=MAX_FRAME_BYTES,
        ws_ping_interval=options.ping_interval,
        ws_ping_timeout=options.ping_timeout,
        # No per-message compression: compressing each frame again for each socket
        # cost more than the bytes it saved on small chat frames, and uncompressed
        # frames are the same bytes for every socket, built once
        # (chat/realtime/direct.py).
        ws_per_message_deflate=False,
        # Channels' router has no lifespan protocol; the site needs none.
        lifespan="off",
        proxy_headers=options.proxy_headers,
        # Behind a proxy that sets X-Forwarded-For itself, whoever connects is it.
        forwarded_allow_ips="*" if options.proxy_headers else None,
        server_header=False,
        access_log=not quiet,
        log_level="warning" if quiet else "info",
        # LOG_FORMAT=json: uvicorn's lines go through the site's JSON handler too.
        log_config=None if settings.LOG_FORMAT == "json" else uvicorn.config.LOGGING_CONFIG,
        # A burst of handshakes must not overflow the kernel's accept queue.
        backlog=2048,
    )
    server = ChatServer(config)
    server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)  # as uvicorn.run: the port was taken, or the site did not load


def _serve_daphne(options: argparse.Namespace, rest: list[str]) -> None:
    from daphne.cli import CommandLineInterface
    from daphne.server import Server
    from twisted.internet import reactor

    from chat import loop_db, metrics

    class ChatServer(Server):
        """daphne's server with frames over the contract's limit closed with 1009."""

        def __init__(self, *args, **kwargs) -> None:
            kwargs["websocket_max_message_size"] = MAX_FRAME_BYTES
            kwargs["websocket_max_frame_size"] = MAX_FRAME_BYTES
            super().__init__(*args, **kwargs)

        def run(self) -> None:
            # The websocket factory exists once the reactor runs.
            reactor.callWhenRunning(self._close_politely)
            reactor.addSystemEventTrigger("before", "shutdown", stop_collecting)
            # Once every socket is closed, the loop's own database connections go too.
            reactor.addSystemEventTrigger("after", "shutdown", loop_db.close_all)
            super().run()

        def _close_politely(self) -> None:
            self.ws_factory.setProtocolOptions(failByDrop=False)
            self.ws_factory.protocol = _daphne_protocol(self.ws_factory.protocol)
            # On the next turn, inside the running asyncio loop (see uvicorn's startup).
            reactor.callLater(0, metrics.watch_loop_lag)

    class ChatCommandLine(CommandLineInterface):
        server_class = ChatServer

    argv = list(rest)
    if not any(arg in argv for arg in ("-b", "--bind", "-p", "--port", "-u", "-e", "--fd")):
        argv = ["-b", os.environ.get("HOST", "127.0.0.1"), "-p", os.environ.get("PORT", "8000")]
        argv += rest
    if options.proxy_headers:
        argv.append("--proxy-headers")
    # daphne takes whole seconds.
    argv += ["--ping-interval", f"{options.ping_interval:g}"]
    argv += ["--ping-timeout", f"{options.ping_timeout:g}"]
    ChatCommandLine().run([*argv, APPLICATION])


def _daphne_protocol(protocol_class: type) -> type:
    """daphne's websocket protocol, with the size limit on received frames only and
    a closing handshake that ends with FIN.

    autobahn applies `maxMessagePayloadSize` to what the server sends too, which
    would end every socket asked for a history page of long messages. And once a
    closing handshake the server started is complete, autobahn aborts the
    connection (a reset) where closing it says the same: a proxy in front logs
    each reset as an error (chatsite/websocket_protocol.py tells more).
    """

    class ChatProtocol(protocol_class):
        def sendMessage(self, *args, **kwargs):
            limit, self.maxMessagePayloadSize = self.maxMessagePayloadSize, 0
            try:
                return super().sendMessage(*args, **kwargs)
            finally:
                self.maxMessagePayloadSize = limit

        def dropConnection(self, abort: bool = False) -> None:
            # wasClean: both close frames went; nothing is left that a reset would cut.
            super().dropConnection(abort=abort and not self.wasClean)

    return ChatProtocol


def tune_collector() -> None:
    """Moves everything start-up made out of the collector's sight, and makes full
    collections ten times rarer than CPython's default (FULL_COLLECTION_EVERY).

    The young generations keep their defaults, so their pauses stay short: a few
    milliseconds at most, against hundreds for a full collection.
    """
    # A full collection then walks only what serving creates.
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)


def stop_collecting() -> None:
    """Turns the cyclic collector off for a process on its way out.

    While a stopping server closes its sockets its port refuses everyone, and the
    pages reconnecting count each refusal in their backoff; a full collection over
    the objects of 10,000 closing sockets took a second of that. What is freed by
    reference counting still is; cycles are left for the exit.
    """
    gc.disable()


def main(argv: list[str]) -> None:
    """Serves chatsite.asgi on HOST:PORT (default 127.0.0.1:8000) until stopped."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    options, rest = _options(argv)
    if options.server == "daphne":
        import daphne.server  # noqa: F401 - installs twisted's asyncio reactor before anything else

    # Import the application now, then tune the collector for what serving creates.
    __import__("chatsite.asgi")
    tune_collector()
    # Before the site's port: a probe of an unready server gets "starting", not silence.
    from chatsite import health_listener

    health_listener.start_from_settings(os.environ.get("HOST", "127.0.0.1"))
    if options.server == "uvicorn":
        _serve_uvicorn(options)
    else:
        _serve_daphne(options, rest)


if __name__ == "__main__":
    main(sys.argv[1:])
