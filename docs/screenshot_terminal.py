"""Takes the README's picture of the terminal client: docs/screenshots/13-terminal.png.

Starts a real server process on a throwaway database, signs people up, runs the
full-screen client (`--tui`) for alice under Textual's pilot while bob and carol
talk over their own sockets, saves the screen as SVG and renders it to PNG with
Debian's chromium. Run by `make screenshots` after docs/screenshots.py.
"""

import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from chat.client.session import Session  # noqa: E402
from chat.client.tui import ChatApp  # noqa: E402
from tests.browser.conftest import CHROMIUM_ARGS  # noqa: E402
from tests.server import PASSWORD, Browser, ChatClient, Database, ServerProcess, base_env  # noqa: E402

OUT = ROOT / "docs" / "screenshots" / "13-terminal.png"
SIZE = (110, 30)


async def until(pilot, condition, seconds: float = 20) -> None:
    """Lets the app run until `condition()` holds."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the terminal never showed what was expected")
        await pilot.pause(0.05)


async def chat_in_the_terminal(server: ServerProcess, svg: Path) -> None:
    """Runs alice's full-screen client while bob and carol talk; saves the screen as SVG."""
    sessions = {name: Browser(server.url).signup(name) for name in ("alice", "bob", "carol")}
    bob = await ChatClient(server, sessions["bob"]).open()
    carol = await ChatClient(server, sessions["carol"]).open()
    session = Session(server=server.url, user="alice", password=PASSWORD)
    await asyncio.to_thread(session.login)
    app = ChatApp(session)
    log = []
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "carol" in str(app.query_one("#online").render()))
        script = [
            (bob, "morning all, the deploy went out at 9"),
            (carol, "nice, no alerts so far"),
            (None, "great work, thanks both"),
            (bob, "retro at 3? I'll book the room"),
        ]
        for number, (person, body) in enumerate(script):
            if person is None:
                await pilot.press(*body, "enter")
            else:
                frame = {"type": "send", "room": "general", "body": body, "client_id": f"s{number}"}
                await person.send(frame)
            await until(
                pilot,
                lambda b=body: any(str(line).endswith(b) for line in app.query_one("#log").lines),
            )
        await bob.send(
            {"type": "send", "to": "alice", "body": "got a minute later?", "client_id": "d1"}
        )
        await until(pilot, lambda: any("@bob (1)" in prompt for prompt in prompts(app)))
        await pilot.press(*"/who", "enter")
        await until(pilot, lambda: "online:" in str(app.query_one("#notice").render()))
        log = [str(line) for line in app.query_one("#log").lines]
        app.save_screenshot(filename=svg.name, path=str(svg.parent))
        await app.action_quit()
    await bob.close()
    await carol.close()
    print("\n".join(log))


def prompts(app: ChatApp) -> list[str]:
    """The texts of the conversation list."""
    options = app.query_one("#conversations")
    return [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]


def render(svg: Path) -> None:
    """Renders the SVG to OUT with chromium."""
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("Needs Debian's chromium: apt-get install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(device_scale_factor=1)
        page.goto(svg.as_uri())
        page.locator("svg").first.screenshot(path=str(OUT))
        browser.close()


def main() -> None:
    """Starts the site, takes the picture, stops the site."""
    database = Database()
    database.migrate(base_env())
    server = ServerProcess(database)
    try:
        server.start()
        with tempfile.TemporaryDirectory() as folder:
            svg = Path(folder) / "terminal.svg"
            asyncio.run(chat_in_the_terminal(server, svg))
            render(svg)
    except Exception:
        print(f"--- server log ({server.log.name}) ---\n{server.output()[-4000:]}", file=sys.stderr)
        raise
    finally:
        server.stop()
        database.drop()
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
