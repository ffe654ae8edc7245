"""Start-up from the environment: good values are read, bad ones stop the site naming
the variable. Each case starts a fresh Python with chatsite.settings, as `make run` does.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# The site's variables, removed from the inherited environment so that the outer
# shell (or tests/settings.py, which sets SECRET_KEY) cannot leak into a case.
KNOBS = {
    "DJANGO_SETTINGS_MODULE",
    "SECRET_KEY",
    "DEBUG",
    "DATABASE_URL",
    "DATABASE_CONN_MAX_AGE",
    "DATABASE_PREPARED_STATEMENTS",
    "DATABASE_JIT",
    "REDIS_URL",
}

# Loads the settings the way every entry point does, then prints what the tests check.
REPORT = """
import json
import django
django.setup()
from django.conf import settings
db = settings.DATABASES["default"]
print(json.dumps({
    "DEBUG": settings.DEBUG,
    "CHAT_RATE_LIMIT": settings.CHAT_RATE_LIMIT,
    "CHAT_MAX_SOCKETS": settings.CHAT_MAX_SOCKETS,
    "ENGINE": db["ENGINE"],
    "NAME": db["NAME"],
    "CONN_MAX_AGE": db["CONN_MAX_AGE"],
    "OPTIONS": db.get("OPTIONS", {}),
}))
"""

GOOD = {"SECRET_KEY": "a-test-secret-key-that-is-long-enough-for-this"}


def clean_environment(**env: str) -> dict[str, str]:
    """This process's environment without the site's variables, plus `env`."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in KNOBS and not key.startswith("CHAT_")
    }
    environment.update(env, DJANGO_SETTINGS_MODULE="chatsite.settings")
    return environment


def start(env: dict[str, str], *, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Starts Django with chatsite.settings and only `env` of the chat's own variables."""
    environment = clean_environment(**env)
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    return subprocess.run(
        [sys.executable, "-c", REPORT],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def started(env: dict[str, str], *, cwd: Path = REPO) -> dict:
    """Starts Django, insists that it came up, and returns the settings it read."""
    result = start(env, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def refusal(env: dict[str, str]) -> str:
    """Starts Django, insists that it refused, and returns the error an operator reads."""
    result = start(env)
    assert result.returncode != 0, f"started with {env}: {result.stdout}"
    # The last line of the traceback is the exception and its message.
    return result.stderr.strip().splitlines()[-1]


# --- SECRET_KEY and DEBUG ------------------------------------------------------


@pytest.mark.parametrize("debug", [None, "0", "false", "off"], ids=repr)
def test_missing_secret_key_with_debug_off_stops_start_up(debug):
    error = refusal({} if debug is None else {"DEBUG": debug})
    assert error.startswith("django.core.exceptions.ImproperlyConfigured")
    assert "SECRET_KEY" in error


def test_debug_on_starts_without_a_secret_key():
    assert started({"DEBUG": "1"})["DEBUG"] is True


def test_manage_py_check_passes_with_debug_on_and_no_secret_key():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO,
        env=clean_environment(DEBUG="1"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_debug_is_off_by_default():
    assert started(GOOD)["DEBUG"] is False


# --- Bad values stop start-up naming the variable ------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEBUG", "maybe"),
        ("CHAT_RATE_LIMIT", "fast"),
        ("CHAT_RATE_LIMIT", "0/10s"),
        ("CHAT_RATE_LIMIT", "20/10"),
        ("DATABASE_URL", "mysql://x/y"),
        ("DATABASE_URL", "not-a-url"),
        ("REDIS_URL", "localhost:6379"),
        ("CHAT_MAX_SOCKETS", "0"),
        ("CHAT_MAX_SOCKETS", "ten"),
        ("CHAT_HEALTH_PORT", "70000"),
        ("CHAT_HEALTH_PORT", "-1"),
        ("CHAT_HEALTH_LOOP_STALL_SECONDS", "0.1"),
    ],
)
def test_bad_value_stops_start_up_naming_the_variable(name, value):
    error = refusal({**GOOD, name: value})
    assert error.startswith("django.core.exceptions.ImproperlyConfigured"), error
    assert name in error


# --- Values that are read ------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "parsed"),
    [(None, [20, 10]), ("off", None), ("5/2s", [5, 2]), ("OFF", None)],
    ids=["default", "off", "5-per-2s", "off-any-case"],
)
def test_chat_rate_limit_is_read_as_messages_per_seconds(value, parsed):
    env = GOOD if value is None else {**GOOD, "CHAT_RATE_LIMIT": value}
    assert started(env)["CHAT_RATE_LIMIT"] == parsed


@pytest.mark.parametrize(
    ("url", "name"),
    [(None, "db.sqlite3"), ("sqlite:///data/chat.sqlite3", "data/chat.sqlite3")],
    ids=["default", "relative-path"],
)
def test_relative_sqlite_path_lives_in_the_repository_whatever_the_working_directory(
    tmp_path, url, name
):
    env = GOOD if url is None else {**GOOD, "DATABASE_URL": url}
    database = started(env, cwd=tmp_path)
    assert database["ENGINE"] == "django.db.backends.sqlite3"
    assert database["NAME"] == str(REPO / name)


def test_blank_database_url_means_the_default_like_every_other_blank_variable():
    # DEBUG=, REDIS_URL=, SECRET_KEY= ... all count as unset; a compose file or a
    # systemd unit often passes an empty value through.
    database = started({**GOOD, "DATABASE_URL": ""})
    assert database["NAME"] == str(REPO / "db.sqlite3")


def test_absolute_sqlite_path_is_kept(tmp_path):
    path = tmp_path / "chat.sqlite3"
    database = started({**GOOD, "DATABASE_URL": f"sqlite:///{path}"})
    assert database["NAME"] == str(path)


def test_postgres_url_selects_postgresql_with_persistent_connections():
    database = started({**GOOD, "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x"})
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert database["NAME"] == "x"
    assert database["CONN_MAX_AGE"] > 0
    # Statements prepared once they repeat, unless a pooler needs them off, and never
    # compiled to machine code.
    assert database["OPTIONS"] == {
        "server_side_binding": True,
        "prepare_threshold": 5,
        "options": "-c jit=off",
    }


@pytest.mark.parametrize("value", ["off", "0", "no"])
def test_prepared_statements_can_be_turned_off_for_a_pooler(value):
    database = started(
        {
            **GOOD,
            "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x",
            "DATABASE_PREPARED_STATEMENTS": value,
        }
    )
    assert database["OPTIONS"] == {"options": "-c jit=off"}


def test_jit_can_be_left_to_the_server_for_a_pooler_that_refuses_options():
    database = started(
        {**GOOD, "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x", "DATABASE_JIT": "on"}
    )
    assert "options" not in database["OPTIONS"]


def test_jit_off_keeps_the_options_the_database_url_gives():
    database = started(
        {
            **GOOD,
            "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x?options=-c%20work_mem%3D8MB",
        }
    )
    assert database["OPTIONS"]["options"] == "-c work_mem=8MB -c jit=off"


def test_a_bad_prepared_statements_value_stops_the_site_naming_it():
    result = start(
        {
            **GOOD,
            "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x",
            "DATABASE_PREPARED_STATEMENTS": "sometimes",
        }
    )
    assert result.returncode != 0
    assert "DATABASE_PREPARED_STATEMENTS" in result.stderr
