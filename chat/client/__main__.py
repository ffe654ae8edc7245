"""`python -m chat.client`: logs in and chats from a terminal, line by line (for pipes
and scripts) or full-screen with `--tui`.

Exit codes: 0 done (stdin ended or /quit, every message delivered); 1 some message was
refused by the server; 2 the login was refused; 3 the session ended (logged out
elsewhere); 130 interrupted.
"""

import argparse
import asyncio
import contextlib
import getpass
import os
import sys
import threading

from chat.client.connection import Connection, SessionEnded, login_with_retry
from chat.client.lines import (
    HELP,
    ErrorEvent,
    Event,
    Help,
    Invalid,
    Join,
    Quit,
    Rooms,
    Send,
    StatusEvent,
    Who,
    event_line,
    parse_input,
)
from chat.client.session import LoginRefused, Session

EXIT_OK, EXIT_REFUSED_SENDS, EXIT_LOGIN, EXIT_SESSION_ENDED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """Reads the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m chat.client",
        description="Chat from a terminal. The password comes from CHAT_PASSWORD, or a prompt.",
    )
    parser.add_argument("--server", default="http://127.0.0.1:8000", help="the site's address")
    parser.add_argument("--user", required=True, help="the username to log in as")
    parser.add_argument("--tui", action="store_true", help="full-screen mode (Textual)")
    return parser.parse_args(argv)


def read_password(user: str) -> str:
    """Returns CHAT_PASSWORD, or asks for the password on the terminal."""
    password = os.environ.get("CHAT_PASSWORD")
    if password is not None:
        return password
    return getpass.getpass(f"Password for {user}: ")


def _stdin_lines(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue) -> None:
    # A daemon thread, so a blocked read never holds up the exit; None marks the end.
    for line in sys.stdin:
        loop.call_soon_threadsafe(queue.put_nowait, line)
    loop.call_soon_threadsafe(queue.put_nowait, None)


async def run_lines(session: Session) -> int:
    """Runs the line mode: stdin lines become messages and commands, events become lines."""
    connection: Connection

    def show(event: Event) -> None:
        if isinstance(event, StatusEvent):
            print(f"chat: {event.text}", file=sys.stderr, flush=True)
            return
        line = event_line(event, connection.state.me)
        if line is not None:
            print(line, flush=True)

    connection = Connection(session=session, emit=show)
    await login_with_retry(session, show)
    running = asyncio.create_task(connection.run())
    queue: asyncio.Queue = asyncio.Queue()
    loop = asyncio.get_running_loop()
    threading.Thread(target=_stdin_lines, args=(loop, queue), daemon=True).start()
    try:
        # Commands wait for the first hello: /join checks the rooms it names.
        greeted = asyncio.ensure_future(connection.greeted.wait())
        await asyncio.wait({greeted, running}, return_when=asyncio.FIRST_COMPLETED)
        greeted.cancel()
        while not running.done():
            reading = asyncio.ensure_future(queue.get())
            await asyncio.wait({reading, running}, return_when=asyncio.FIRST_COMPLETED)
            if running.done():
                reading.cancel()
                break
            command = parse_input(line) if (line := reading.result()) is not None else Quit()
            if isinstance(command, Quit):
                break
            await _carry_out(connection, command, show)
        # Stdin ended (or /quit): deliver what was typed before leaving.
        delivered = asyncio.ensure_future(connection.wait_delivered())
        await asyncio.wait({delivered, running}, return_when=asyncio.FIRST_COMPLETED)
        delivered.cancel()
        if running.done():
            running.result()  # raises SessionEnded or LoginRefused
    finally:
        await connection.stop()
        if not running.done():
            running.cancel()
        with contextlib.suppress(asyncio.CancelledError, SessionEnded, LoginRefused):
            await running
    return EXIT_REFUSED_SENDS if connection.refused else EXIT_OK


async def _carry_out(connection: Connection, command, show) -> None:
    match command:
        case Send(body=body):
            await connection.say(body)
        case Join(conversation=conversation):
            await connection.join(conversation)
        case Who():
            await connection.who()
        case Rooms():
            connection.rooms()
        case Help():
            print(HELP, flush=True)
        case Invalid(reason=reason):
            show(ErrorEvent("command", reason))


def main(argv: list[str] | None = None) -> int:
    """Runs the client; returns the exit code."""
    arguments = parse_arguments(argv)
    # One event, one line, flushed at once: a pipe sees each line as it happens.
    sys.stdout.reconfigure(line_buffering=True, errors="replace")
    sys.stdin.reconfigure(errors="replace")
    try:
        password = read_password(arguments.user)
        session = Session(server=arguments.server, user=arguments.user, password=password)
    except ValueError as error:
        print(f"chat: {error}", file=sys.stderr)
        return EXIT_LOGIN
    except (EOFError, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    try:
        if arguments.tui:
            from chat.client.tui import run_tui

            return run_tui(session)
        return asyncio.run(run_lines(session))
    except LoginRefused as error:
        print(f"chat: login refused: {error}", file=sys.stderr)
        return EXIT_LOGIN
    except SessionEnded:
        print("chat: the session ended (logged out or expired); log in again", file=sys.stderr)
        return EXIT_SESSION_ENDED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
