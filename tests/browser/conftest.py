"""Browser fixtures: Debian's chromium driven by Playwright (no downloaded browser)."""

import shutil
import subprocess
import sys
import uuid

import pytest

from tests.server import PASSWORD, ROOT, base_env

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


@pytest.fixture
def signed_up(site_server, new_page):
    """Signs a new person up through the sign-up page; returns their page, once connected."""
    from playwright.sync_api import expect

    def _signed_up(username: str):
        page = new_page()
        page.goto(site_server.url + "/accounts/signup/")
        page.fill("#id_username", username)
        page.fill("#id_password1", PASSWORD)
        page.fill("#id_password2", PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("body")).to_have_attribute("data-socket-state", "open", timeout=10_000)
        return page

    return _signed_up


@pytest.fixture(scope="module")
def staff_login(site_server, site_database):
    """A superuser in the site's database: (username, password)."""
    username = f"root{uuid.uuid4().hex[:6]}"
    env = base_env(DATABASE_URL=site_database.url, DJANGO_SUPERUSER_PASSWORD=PASSWORD)
    command = ["manage.py", "createsuperuser", "--noinput", "--username", username]
    subprocess.run(
        [sys.executable, *command, "--email", f"{username}@example.com"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    return username, PASSWORD


@pytest.fixture
def page_watch():
    """Fails the test if a page it watched broke the site's policy or threw an error."""
    from tests.browser.chat_page import PageWatch

    watch = PageWatch()
    yield watch
    assert watch.problems == [], "\n".join(watch.problems)


@pytest.fixture
def chat_person(site_server, new_page, page_watch):
    """Signs a new person up in a watched page; returns a Person once connected."""
    from tests.browser.chat_page import Person, wait_until_connected

    def _chat_person(prefix: str, viewport=None):
        page = new_page(viewport)
        page_watch.watch(page)
        person = Person(page, f"{prefix}{uuid.uuid4().hex[:8]}")
        person.listen(page)
        page.goto(site_server.url + "/accounts/signup/")
        page.fill("#id_username", person.name)
        page.fill("#id_password1", PASSWORD)
        page.fill("#id_password2", PASSWORD)
        page.click("button[type=submit]")
        wait_until_connected(page)
        return person

    return _chat_person


@pytest.fixture
def staff_person(site_server, new_page, page_watch, staff_login):
    """Logs the module's superuser in through the login page; returns a Person once connected."""
    from tests.browser.chat_page import Person, wait_until_connected

    username, password = staff_login
    page = new_page()
    page_watch.watch(page)
    page.goto(site_server.url + "/accounts/login/?next=/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    wait_until_connected(page)
    return Person(page, username)
