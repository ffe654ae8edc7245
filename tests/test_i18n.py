"""English and Russian on the server side: pages follow Accept-Language or the
language switcher's cookie, the admin follows too, and counts take Russian plurals.
"""

import html
import re
import shutil
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.forms import UserCreationForm
from django.core.management import call_command
from django.test import Client
from django.utils import translation
from django.utils.translation import trans_real

from chat.messaging.store import message_store
from chat.protocol import Send
from chat.views import _wait_text
from tests.conftest import PASSWORD, login_client

pytestmark = pytest.mark.django_db

RU = {"HTTP_ACCEPT_LANGUAGE": "ru"}


@pytest.fixture(scope="module", autouse=True)
def _compiled_catalogues():
    """Compiles each catalogue whose .mo is missing or stale, as `make messages` does."""
    if shutil.which("msgfmt"):
        call_command("compilemessages", ignore_patterns=[".venv", "node_modules"], verbosity=0)
    # Catalogues read before the compile are cached per process: read them again.
    trans_real._translations = {}
    trans_real.translation_catalog_exists.cache_clear()
    mo = django_settings.BASE_DIR / "locale" / "ru" / "LC_MESSAGES" / "django.mo"
    assert mo.exists(), "locale/ru/LC_MESSAGES/django.mo is missing: run `make messages`"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Hashes cheaply: these tests are about words, not hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _back_to_the_default_language():
    """Leaves no language active: the middleware keeps the last request's one for the thread."""
    yield
    translation.deactivate()


def page(response) -> str:
    assert response.status_code in (200, 400, 429), response.status_code
    return response.content.decode()


def test_login_page_is_in_english_by_default():
    body = page(Client().get("/accounts/login/"))
    assert '<html lang="en">' in body
    assert "No account yet?" in body and "Sign up" in body


def test_login_page_is_in_russian_under_accept_language_ru():
    body = page(Client().get("/accounts/login/", **RU))
    assert '<html lang="ru">' in body
    assert "Вход · Чат" in body
    assert "Ещё нет учётной записи?" in body
    # Django's own texts of the form come translated too.
    assert "Имя пользователя" in body
    assert "No account yet?" not in body


def test_sign_up_form_errors_are_in_russian(make_user):
    make_user("alice")
    # A Cyrillic a, then Latin letters: a mix of scripts.
    form = {"username": "\u0430lice", "password1": "x-long-pass-93", "password2": "x-long-pass-93"}
    body = page(Client().post("/accounts/signup/", form, **RU))
    assert "Создание учётной записи" in body
    # The project's own error, with its list of scripts joined in Russian.
    assert "Используйте буквы одной письменности" in body
    assert "Cyrillic и Latin" in body
    mismatch = {"username": "bob", "password1": "x-long-pass-93", "password2": "other-pass-93"}
    body = page(Client().post("/accounts/signup/", mismatch, **RU))
    mismatch_text = UserCreationForm.error_messages["password_mismatch"]
    with translation.override("ru"):
        expected = str(mismatch_text)
    with translation.override("en"):
        assert expected != str(mismatch_text)
    assert expected in body


def test_chat_page_is_in_russian_and_keeps_its_hooks(make_user):
    client = login_client(make_user("alice"))
    body = page(client.get("/", **RU))
    assert '<html lang="ru">' in body
    assert "Разговоры" in body and 'placeholder="Напишите сообщение…"' in body
    assert "Выйти" in body
    # The page's scripts find their elements by id, whatever the language.
    for hook in ('id="composer"', 'id="messages"', 'id="rooms"', 'data-ws-path="/ws/chat/"'):
        assert hook in body


def test_admin_index_and_changelist_are_in_russian_with_russian_dates(make_user):
    alice = make_user("alice")
    message_store(sender=alice, send=Send(body="привет", client_id="r1", room="general"))
    staff = login_client(make_user("root", is_staff=True, is_superuser=True))
    index = page(staff.get("/admin/", **RU))
    assert "Администрирование сайта" in index
    assert "Сейчас" in index  # the Live page's link
    changelist = page(staff.get("/admin/chat/message/", **RU))
    assert "Найти" in changelist  # the search button
    # Column headers: the project's own (the body) and the model's field names.
    assert "<span>Текст</span>" in changelist and ">Отправитель</a>" in changelist
    assert "Выберите сообщение для изменения" in changelist
    # Dates follow the language: today's month in Russian.
    with translation.override("ru"):
        from django.utils import dateformat, timezone

        month = dateformat.format(timezone.now(), "E")
    assert month in changelist
    assert "Select message to change" not in changelist


def test_admin_action_message_takes_russian_plurals(make_user):
    staff = login_client(make_user("root", is_staff=True, is_superuser=True))
    users = [make_user(name) for name in ("u1", "u2", "u3")]
    for n, user in enumerate(users):
        message_store(sender=user, send=Send(body="hi", client_id=f"c{n}", room="general"))
    response = staff.post(
        "/admin/auth/user/",
        {"action": "purge_messages", "_selected_action": [user.pk for user in users]},
        follow=True,
        **RU,
    )
    assert "3 сообщения будут удалены." in page(response)


def test_locked_out_page_is_in_russian(settings, make_user):
    settings.AXES_FAILURE_LIMIT = 2
    make_user("alice")
    client = Client(REMOTE_ADDR="203.0.113.9")
    for n in range(2):
        client.post("/accounts/login/", {"username": "alice", "password": f"wrong-{n}"}, **RU)
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD}, **RU)
    assert response.status_code == 429
    body = page(response)
    assert "Слишком много неудачных входов" in body
    assert "Попробуйте снова через 15 минут." in body


def test_switcher_sets_the_language_cookie_and_the_next_page_is_russian():
    client = Client()
    body = page(client.get("/accounts/login/?next=/"))
    # The switcher: a plain form to Django's set_language that comes back to this page.
    action = re.search(r'<form method="post" action="([^"]+)" class="language-form">', body)
    assert action and action[1] == "/i18n/setlang/?next=/accounts/login/%3Fnext%3D/"
    assert '<select id="language-select" name="language">' in body
    assert '<option value="ru" lang="ru">Русский</option>' in body
    response = client.post(html.unescape(action[1]), {"language": "ru"})
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=/"
    assert response.cookies[django_settings.LANGUAGE_COOKIE_NAME].value == "ru"
    body = page(client.get(response["Location"]))
    assert '<html lang="ru">' in body and "Ещё нет учётной записи?" in body
    assert '<option value="ru" lang="ru" selected>Русский</option>' in body
    # And back: the cookie wins over the browser's Accept-Language.
    client.post("/i18n/setlang/?next=/accounts/login/", {"language": "en"})
    assert "No account yet?" in page(client.get("/accounts/login/", **RU))


@pytest.mark.parametrize(
    ("seconds", "english", "russian"),
    [
        (60, "1 minute", "1 минуту"),
        (180, "3 minutes", "3 минуты"),
        (300, "5 minutes", "5 минут"),
        (21 * 60, "21 minutes", "21 минуту"),
        (1, "1 second", "1 секунду"),
        (22, "22 seconds", "22 секунды"),
        (11, "11 seconds", "11 секунд"),
    ],
)
def test_waiting_times_take_the_plural_form_of_each_language(seconds, english, russian):
    with translation.override("en"):
        assert _wait_text(seconds) == english
    with translation.override("ru"):
        assert _wait_text(timedelta(seconds=seconds).total_seconds()) == russian
