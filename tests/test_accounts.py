"""Accounts over HTTP: sign-up, log-in, log-out, the chat page and /healthz."""

import html
from html.parser import HTMLParser

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

User = get_user_model()


class Page(HTMLParser):
    """The elements of an HTML page: each tag with its attributes, and each script's text."""

    def __init__(self, text: str):
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._script: dict[str, str | None] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        if tag == "script":
            self._script = dict(attrs)
            self.scripts.append((self._script, ""))

    def handle_data(self, data):
        if self._script is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = None

    def find(self, tag: str, **attrs) -> list[dict[str, str | None]]:
        """Returns the attributes of every `tag` element having all of `attrs`."""
        return [
            found
            for name, found in self.elements
            if name == tag and all(found.get(key) == value for key, value in attrs.items())
        ]


def text_of(response) -> str:
    """The page as a reader sees it: HTML entities decoded."""
    return html.unescape(response.content.decode())


def signup(client: Client, username: str, password1: str, password2: str | None = None):
    """Posts the sign-up form."""
    return client.post(
        "/accounts/signup/",
        {"username": username, "password1": password1, "password2": password2 or password1},
    )


# --- The chat page needs a login ---------------------------------------------


def test_anonymous_visitor_is_sent_to_the_login_page():
    response = Client().get("/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"


def test_chat_page_carries_the_chat_root_for_the_logged_in_user(client, make_user):
    client.force_login(make_user("alice"))
    response = client.get("/")
    assert response.status_code == 200
    page = Page(response.content.decode())
    [root] = page.find("main", id="chat")
    assert root["data-username"] == "alice"
    assert page.find("script", type="module")


def test_chat_page_has_no_inline_script(client, make_user):
    client.force_login(make_user("alice"))
    page = Page(client.get("/").content.decode())
    assert page.scripts, "the page loads its code from a script file"
    for attrs, body in page.scripts:
        assert attrs.get("src"), f"a script without src: {attrs}"
        assert body.strip() == ""


# --- Sign-up -----------------------------------------------------------------


def test_signup_page_asks_for_username_and_password_twice(client):
    response = client.get("/accounts/signup/")
    assert response.status_code == 200
    names = {attrs.get("name") for attrs in Page(response.content.decode()).find("input")}
    assert {"username", "password1", "password2", "csrfmiddlewaretoken"} <= names


def test_signup_creates_the_account_logs_in_and_opens_the_chat(client):
    response = signup(client, "alice", PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert User.objects.filter(username="alice").exists()
    chat = client.get("/")
    assert chat.status_code == 200
    assert Page(chat.content.decode()).find("main", id="chat")[0]["data-username"] == "alice"


def test_signup_through_the_page_passes_the_csrf_check():
    browser = Client(enforce_csrf_checks=True)
    form = Page(browser.get("/accounts/signup/").content.decode())
    # Each form of the page carries a token (the header's language switcher too); any one passes.
    token = form.find("input", name="csrfmiddlewaretoken")[-1]
    response = browser.post(
        "/accounts/signup/",
        {
            "username": "alice",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "csrfmiddlewaretoken": token["value"],
        },
    )
    assert response.status_code == 302
    assert User.objects.filter(username="alice").exists()


def test_signup_with_a_taken_username_is_refused_and_says_so(client, make_user):
    make_user("alice")
    response = signup(client, "alice", "another-long-passphrase-77")
    assert response.status_code == 400
    assert "A user with that username already exists." in text_of(response)
    assert User.objects.filter(username="alice").count() == 1
    assert client.get("/").status_code == 302


@pytest.mark.parametrize(
    ("password", "complaint"),
    [
        ("password", "This password is too common."),
        ("4815162342108", "This password is entirely numeric."),
        ("x7#Qm", "This password is too short."),
    ],
    ids=["common", "all-numeric", "too-short"],
)
def test_signup_with_a_weak_password_is_refused_and_says_why(client, password, complaint):
    response = signup(client, "alice", password)
    assert response.status_code == 400
    assert complaint in text_of(response)
    assert not User.objects.filter(username="alice").exists()


def test_signup_with_mismatched_passwords_is_refused(client):
    response = signup(client, "alice", PASSWORD, PASSWORD + "-typo")
    assert response.status_code == 400
    # Django writes "didn't" with a typographic apostrophe.
    assert "The two password fields didn\N{RIGHT SINGLE QUOTATION MARK}t match." in (
        text_of(response)
    )
    assert not User.objects.filter(username="alice").exists()


# --- Sign-up: names that could pass for someone else's --------------------------

MIXED_SCRIPTS = "Use the letters of one script: this username mixes"
LOOKALIKE = "This username looks like an existing one"


def test_signup_refuses_a_cyrillic_a_in_alice_when_alice_exists(client, make_user):
    make_user("alice")
    response = signup(client, "\N{CYRILLIC SMALL LETTER A}lice", PASSWORD)
    assert response.status_code == 400
    assert f"{MIXED_SCRIPTS} Cyrillic and Latin" in text_of(response)
    assert list(User.objects.values_list("username", flat=True)) == ["alice"]
    assert client.get("/").status_code == 302


def test_signup_refuses_a_name_mixing_latin_and_cyrillic_even_when_nobody_looks_alike(client):
    # "paypal" with two Cyrillic a's: no user is called paypal, the mix alone is refused.
    response = signup(client, "p\u0430yp\u0430l", PASSWORD)
    assert response.status_code == 400
    assert f"{MIXED_SCRIPTS} Cyrillic and Latin" in text_of(response)
    assert not User.objects.exists()


@pytest.mark.parametrize(
    ("taken", "lookalike"),
    [
        ("scope", "\u0455\u0441\u043e\u0440\u0435"),  # "scope" in Cyrillic: one script
        ("alice", "a1ice"),  # digit one for a small L
        ("alice", "aIice"),  # capital i for a small L
        ("mary", "rnary"),  # "rn" for "m"
        ("bob", "B0B"),  # zero for O, in capitals
        ("strasse", "stra\N{LATIN SMALL LETTER SHARP S}e"),
    ],
    ids=["whole-script-cyrillic", "digit-one", "capital-i", "rn-m", "zero-o", "sharp-s"],
)
def test_signup_refuses_a_name_that_looks_like_an_existing_one_and_says_so(
    client, make_user, taken, lookalike
):
    make_user(taken)
    response = signup(client, lookalike, PASSWORD)
    assert response.status_code == 400
    assert LOOKALIKE in text_of(response)
    assert list(User.objects.values_list("username", flat=True)) == [taken]


def test_signup_refuses_a_styled_letter_as_the_same_name(client, make_user):
    # Django's field applies NFKC: a mathematical bold "a" is a plain "a", so the name is taken.
    make_user("alice")
    response = signup(client, "\N{MATHEMATICAL BOLD SMALL A}lice", PASSWORD)
    assert response.status_code == 400
    assert "A user with that username already exists." in text_of(response)
    assert User.objects.count() == 1


def test_signup_tells_the_lookalike_apart_from_the_taken_name(client, make_user):
    make_user("alice")
    response = signup(client, "a1ice", PASSWORD)
    assert response.status_code == 400
    assert (
        "This username looks like an existing one, so people could mistake the two. "
        "Choose a different name."
    ) in text_of(response)


def test_signup_accepts_an_all_cyrillic_name_nobody_else_looks_like(client, make_user):
    make_user("boris")
    response = signup(client, "\u0431\u043e\u0440\u0438\u0441", PASSWORD)  # борис
    assert response.status_code == 302
    assert User.objects.filter(username="\u0431\u043e\u0440\u0438\u0441").exists()


def test_signup_accepts_the_whole_script_lookalike_when_nobody_has_the_original(client):
    response = signup(client, "\u0455\u0441\u043e\u0440\u0435", PASSWORD)  # "scope" in Cyrillic
    assert response.status_code == 302


@pytest.mark.parametrize(
    "username",
    ["bob", "alice2", "jo.smith@example", "user_1-x+y", "M\u00fcller", "\u7530\u4e2d\u3055\u3093"],
    ids=["plain", "digits", "email-like", "punctuation", "latin-accent", "japanese"],
)
def test_signup_accepts_ordinary_names_next_to_existing_ones(client, make_user, username):
    for existing in ("alice", "bill", "mary"):
        make_user(existing)
    response = signup(client, username, PASSWORD)
    assert response.status_code == 302
    assert User.objects.filter(username=username).exists()


def test_logged_in_user_visiting_signup_goes_to_the_chat(client, make_user):
    client.force_login(make_user("alice"))
    response = client.get("/accounts/signup/")
    assert response.status_code == 302
    assert response["Location"] == "/"


# --- Log-in and log-out ---------------------------------------------------


def test_login_with_the_right_password_opens_the_chat(client, make_user):
    make_user("alice")
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_login_with_a_wrong_password_shows_the_form_again_with_an_error(client, make_user):
    make_user("alice")
    response = client.post("/accounts/login/", {"username": "alice", "password": "wrong-one-1"})
    assert response.status_code == 200
    assert "Please enter a correct username and password." in text_of(response)
    assert Page(response.content.decode()).find("input", name="password")
    assert client.get("/").status_code == 302


def test_logout_by_get_is_not_allowed(client, make_user):
    client.force_login(make_user("alice"))
    assert client.get("/accounts/logout/").status_code == 405
    assert client.get("/").status_code == 200


def test_logout_by_post_ends_the_session(client, make_user):
    client.force_login(make_user("alice"))
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    after = client.get("/")
    assert after.status_code == 302
    assert after["Location"] == "/accounts/login/?next=/"


# --- /healthz ------------------------------------------------------------------


def test_healthz_reports_ok_and_is_never_cached(client, settings):
    settings.REDIS_URL = None
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok", "database": "ok", "redis": "off"}
    assert "no-store" in response["Cache-Control"]
    assert "max-age=0" in response["Cache-Control"]


def test_healthz_refuses_post(client):
    assert client.post("/healthz").status_code == 405
