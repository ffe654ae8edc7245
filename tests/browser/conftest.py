"""Browser fixtures: Debian's chromium driven by Playwright (no downloaded browser)."""

import shutil

import pytest

# Chromium's background services would try to reach the network, which is closed here.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def chromium():
    """Launches Debian's chromium once per test module.

    Not per session: the sync Playwright API keeps an asyncio loop running in the
    main thread while it is open, which would break every later asyncio.run() test.
    """
    from playwright.sync_api import sync_playwright

    path = shutil.which("chromium")
    if path is None:
        pytest.fail("The browser tests need Debian's chromium: run 'apt-get install chromium'.")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(chromium):
    """Opens pages in fresh browser contexts (separate cookies: separate people)."""
    contexts = []

    def _new_page(viewport=None):
        context = chromium.new_context(viewport=viewport or {"width": 1200, "height": 800})
        contexts.append(context)
        return context.new_page()

    yield _new_page
    for context in contexts:
        context.close()
