"""Settings read from the environment; a bad value stops start-up naming its variable.

Every knob an operator may turn is listed in README.md's configuration table.
"""

import importlib.util
import re
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.conf import global_settings
from django.core.exceptions import ImproperlyConfigured
from pythonjsonlogger.core import RESERVED_ATTRS

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()


def _bool(name: str, default: bool) -> bool:
    """Reads a yes/no variable, refusing anything that is not clearly one or the other."""
    raw = env.str(name, default="").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(
        f"{name} must be one of 1/0, true/false, yes/no, on/off; got {raw!r}"
    )


def _int(name: str, default: int, *, minimum: int = 0) -> int:
    """Reads a whole number of at least `minimum`."""
    raw = env.str(name, default="").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number; got {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}; got {value}")
    return value


def _float(name: str, default: float, *, minimum: float = 0.0) -> float:
    """Reads a number of seconds of at least `minimum`."""
    raw = env.str(name, default="").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number; got {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}; got {value}")
    return value


def _list(name: str, default: list[str]) -> list[str]:
    """Reads a comma-separated list, dropping blanks."""
    raw = env.str(name, default="")
    if not raw.strip():
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def _rate(name: str, default: str) -> tuple[int, int] | None:
    """Reads a rate as `N/Ss` (N messages per S seconds); `off` gives None."""
    raw = env.str(name, default="").strip().lower() or default
    if raw == "off":
        return None
    match = re.fullmatch(r"(\d+)/(\d+)s", raw)
    if not match or int(match[1]) < 1 or int(match[2]) < 1:
        raise ImproperlyConfigured(
            f"{name} must look like 20/10s (N per S seconds) or off; got {raw!r}"
        )
    return int(match[1]), int(match[2])


# --- Core -------------------------------------------------------------------

DEBUG = _bool("DEBUG", False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it to a long random string (DEBUG is off, so no "
            "development key is used)."
        )
    SECRET_KEY = "development-only-key-never-use-in-production"

# The site binds to 127.0.0.1 by default, so those names are the safe default.
ALLOWED_HOSTS = _list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = _list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "csp",
    "chat",
]

MIDDLEWARE = [
    # Ahead of all: scrapers reach /metrics at each process's own address (chat/metrics_view.py).
    "chat.metrics_view.MetricsMiddleware",
    # First: every answer, the HTTPS redirect included, carries the request id.
    "chat.logcontext.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # After the session, before CommonMiddleware: the request's language.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a login refused by the lockout into the 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "chatsite.urls"
ASGI_APPLICATION = "chatsite.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------

_database_url = env.str("DATABASE_URL", default="").strip() or "sqlite:///db.sqlite3"
try:
    _db = env.db_url_config(_database_url)
except (ImproperlyConfigured, KeyError, ValueError) as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from None
_engine = _db.get("ENGINE", "")
if _engine == "django.db.backends.sqlite3" and _db.get("HOST"):
    # sqlite://db.sqlite3 (two slashes) would silently be an empty in-memory database.
    raise ImproperlyConfigured(
        f"DATABASE_URL {_database_url!r} names a host; write sqlite:///relative/path "
        "or sqlite:////absolute/path"
    )
if _engine == "django.db.backends.sqlite3":
    if _db["NAME"] not in ("", ":memory:") and not Path(_db["NAME"]).is_absolute():
        _db["NAME"] = str(BASE_DIR / _db["NAME"])
    # A chat writes often: take the write lock when a transaction starts and wait
    # for it, instead of failing when two writers meet.
    _db.setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
elif _engine.startswith("django.db.backends.postgresql"):
    # Channels closes "old" connections around every database call; keeping them
    # alive avoids a new PostgreSQL connection per query.
    _db["CONN_MAX_AGE"] = _int("DATABASE_CONN_MAX_AGE", 60)
    _db["CONN_HEALTH_CHECKS"] = True
    # Parameters sent apart from the statement, so that PostgreSQL can keep a plan:
    # psycopg prepares a statement on its fifth use on a connection. Planning the
    # greeting's reads at every handshake cost PostgreSQL 1.9 ms of CPU a handshake,
    # 0.4 ms with plans kept. `off` for a pooler in transaction mode that cannot
    # keep prepared statements (PgBouncer before 1.21, or without max_prepared_statements).
    if _bool("DATABASE_PREPARED_STATEMENTS", True):
        _db.setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=5)
    # PostgreSQL compiles a statement to machine code (JIT) once its estimated cost
    # passes jit_above_cost, at every execution. The site's statements are short, and
    # an estimate grown with the tables set it off for the greeting: 40 ms of
    # compiling for 0.4 ms of work, at every handshake (docs/performance.md,
    # twenty-first step of issue #16). `on` for a pooler that refuses the
    # connection's `options` (PgBouncer without ignore_startup_parameters = options).
    if not _bool("DATABASE_JIT", False):
        _options = _db.setdefault("OPTIONS", {})
        _options["options"] = f"{_options.get('options', '')} -c jit=off".strip()
else:
    raise ImproperlyConfigured(
        f"DATABASE_URL must start with sqlite:// or postgres://; got {_database_url!r}"
    )
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, channel layer, presence --------------------------------------------

REDIS_URL = env.str("REDIS_URL", default="").strip() or None
if REDIS_URL and not re.match(r"rediss?://", REDIS_URL):
    raise ImproperlyConfigured(
        f"REDIS_URL must start with redis:// or rediss://; got {REDIS_URL!r}"
    )

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # Pub/sub, not the core layer: see docs/architecture.md for the measurement.
            "BACKEND": "chat.realtime.layers.ChatPubSubLayer",
            # redis-py's default socket timeout races the layer's blocking reads.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30}]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Chat behaviour ---------------------------------------------------------

CHAT_RATE_LIMIT = _rate("CHAT_RATE_LIMIT", "20/10s")
# Reads (history, sync, search) and socket handshakes, per user.
CHAT_READ_RATE_LIMIT = _rate("CHAT_READ_RATE_LIMIT", "60/10s")
CHAT_CONNECT_RATE_LIMIT = _rate("CHAT_CONNECT_RATE_LIMIT", "30/10s")
# A socket whose client does not read is closed with 4008 once a write to it has
# waited this long, or once this many characters of frames are queued for it.
CHAT_SEND_STALL_SECONDS = _float("CHAT_SEND_STALL_SECONDS", 10.0, minimum=0.1)
CHAT_SEND_QUEUE_CHARS = _int("CHAT_SEND_QUEUE_CHARS", 4_000_000, minimum=100_000)
CHAT_MAX_SOCKETS = _int("CHAT_MAX_SOCKETS", 10, minimum=1)
# Websocket handshakes under way at once per process; more are refused with 503 at
# once (chat/handshake_limit.py). `off`: no limit.
CHAT_MAX_HANDSHAKES = (
    None
    if env.str("CHAT_MAX_HANDSHAKES", default="").strip().lower() == "off"
    else _int("CHAT_MAX_HANDSHAKES", 500, minimum=1)
)
# PostgreSQL connections per server process on which a handshake reads its session,
# user and greeting, and a socket its `sync` pages, from the event loop itself,
# without a thread hop (chat/loop_db.py); 0 sends those reads to the database
# threads instead. Each connection carries one statement per turn of the loop, and
# in a reconnect storm the turns are long: 4 held the crowd back (docs/performance.md).
CHAT_LOOP_DB_CONNECTIONS = _int("CHAT_LOOP_DB_CONNECTIONS", 16, minimum=0)
# A plain HTTP listener for health probes alone, on its own port and thread
# (chatsite/health_listener.py): /healthz on the site's port waits in line with
# every socket of a reconnect storm. 0: none.
CHAT_HEALTH_PORT = _int("CHAT_HEALTH_PORT", 0)
if CHAT_HEALTH_PORT > 65535:
    raise ImproperlyConfigured(f"CHAT_HEALTH_PORT must be a TCP port; got {CHAT_HEALTH_PORT}")
# The health listener reports the server unhealthy once its event loop has not
# taken a turn for this long (a storm delays turns by seconds; a stuck loop never
# comes back).
CHAT_HEALTH_LOOP_STALL_SECONDS = _float("CHAT_HEALTH_LOOP_STALL_SECONDS", 15.0, minimum=0.5)
# Presence changes are gathered this long, then sent as frames or one `users` list.
CHAT_PRESENCE_WINDOW_SECONDS = _float("CHAT_PRESENCE_WINDOW_SECONDS", 0.25, minimum=0.0)
# At most about this many presence frames a second per process: with more sockets
# than this times the window, the window grows (chat.realtime.fanout.burst_window).
CHAT_PRESENCE_FRAMES_PER_SECOND = _int("CHAT_PRESENCE_FRAMES_PER_SECOND", 10_000, minimum=1)
# How often each socket re-checks that its session still exists.
CHAT_SESSION_CHECK_SECONDS = _float("CHAT_SESSION_CHECK_SECONDS", 60.0, minimum=0.1)
# Presence entries live this long unless a heartbeat refreshes them (Redis mode).
# A killed process's users go offline within about TTL + heartbeat seconds.
CHAT_PRESENCE_TTL_SECONDS = _float("CHAT_PRESENCE_TTL_SECONDS", 20.0, minimum=0.5)
CHAT_HEARTBEAT_SECONDS = _float("CHAT_HEARTBEAT_SECONDS", 5.0, minimum=0.1)
if CHAT_HEARTBEAT_SECONDS * 2 > CHAT_PRESENCE_TTL_SECONDS:
    raise ImproperlyConfigured(
        "CHAT_PRESENCE_TTL_SECONDS must be at least twice CHAT_HEARTBEAT_SECONDS, "
        "or live sockets would expire between heartbeats"
    )

# --- Accounts, sessions, security --------------------------------------------

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Django's database sessions, loaded with one plain query (chat/sessions.py).
SESSION_ENGINE = "chat.sessions"
SESSION_COOKIE_AGE = _int("SESSION_COOKIE_AGE", 60 * 60 * 24 * 14, minimum=60)
# HTTPS by default: with DEBUG off, TLS ends at the front server, which says so in
# X-Forwarded-Proto; cookies travel over HTTPS only, browsers are told to stay on
# HTTPS (HSTS) and plain HTTP is redirected. CHAT_PLAIN_HTTP=1 turns all of it off,
# for a trusted network without TLS; each variable below still overrides its part.
CHAT_PLAIN_HTTP = _bool("CHAT_PLAIN_HTTP", False)
_https = not DEBUG and not CHAT_PLAIN_HTTP
SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", _https)
CSRF_COOKIE_SECURE = _bool("CSRF_COOKIE_SECURE", _https)
SECURE_SSL_REDIRECT = _bool("SECURE_SSL_REDIRECT", _https)
SECURE_HSTS_SECONDS = _int("SECURE_HSTS_SECONDS", 365 * 24 * 60 * 60 if _https else 0)
# Subdomains and the browsers' preload list stay the operator's choice (W005, W021).
SECURE_HSTS_INCLUDE_SUBDOMAINS = _bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = _bool("SECURE_HSTS_PRELOAD", False)
if _bool("SECURE_PROXY_SSL_HEADER", _https):
    # Behind a TLS-terminating proxy that sets X-Forwarded-Proto (and overwrites
    # whatever a client sent): Django, and the websocket origin check, believe it.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Health probes talk plain HTTP to the process itself, behind the proxy.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# Scripts, styles, images and sockets come from this site only; nothing inline,
# no framing. The page and the admin need nothing more (docs/security.md).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF, "ws:", "wss:"],
        "object-src": [NONE],
        "frame-ancestors": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
    }
}

# Password guessing: django-axes counts failed logins per username and per
# address; either reaching the limit locks it out for the cool-off, answered 429.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = _int("CHAT_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(seconds=_int("CHAT_LOGIN_LOCKOUT_SECONDS", 15 * 60, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# Tries during a lockout neither count nor extend it: the person who finally
# remembers the password waits one cool-off, not one per try.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "chat.views.login_locked_out"
AXES_HTTP_RESPONSE_CODE = 429
# Sign-ups (every POST of the form) per client address.
CHAT_SIGNUP_RATE_LIMIT = _rate("CHAT_SIGNUP_RATE_LIMIT", "20/3600s")
# Password reset requests per e-mail address (no mail bombs through the form).
CHAT_RESET_RATE_LIMIT = _rate("CHAT_RESET_RATE_LIMIT", "3/3600s")

# E-mail (password reset links) goes where EMAIL_URL says (django-environ's form:
# smtp://user:password@host:587, smtp+tls://..., smtp+ssl://..., consolemail://).
# With DEBUG on and no EMAIL_URL, mails are printed on the console; with DEBUG off
# and none, no mail can go and the reset page says so.
_email_url = env.str("EMAIL_URL", default="").strip()
if not _email_url and DEBUG:
    _email_url = "consolemail://"
CHAT_EMAIL_ENABLED = bool(_email_url)
if _email_url:
    try:
        _email = env.email_url_config(_email_url)
    except (ImproperlyConfigured, ValueError) as exc:
        raise ImproperlyConfigured(f"EMAIL_URL is not a valid e-mail URL: {exc}") from exc
    EMAIL_BACKEND = _email["EMAIL_BACKEND"]
    EMAIL_HOST = _email["EMAIL_HOST"] or "localhost"
    EMAIL_PORT = _email["EMAIL_PORT"] or 25
    EMAIL_HOST_USER = _email["EMAIL_HOST_USER"] or ""
    EMAIL_HOST_PASSWORD = _email["EMAIL_HOST_PASSWORD"] or ""
    EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS"))
    EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL"))
    EMAIL_FILE_PATH = _email["EMAIL_FILE_PATH"] or None
else:
    EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="").strip() or "chat@localhost"

# --- Internationalisation, static files ---------------------------------------

# English and Russian (docs/i18n.md): the language comes from the django_language
# cookie set by POST /i18n/setlang/, else from Accept-Language (LocaleMiddleware).
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ru", "Русский")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))

# --- Files: uploads, kept through Django's storage API (docs/files.md) -------

# Local files under MEDIA_ROOT by default (a named volume in docker-compose).
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "media")))
CHAT_MAX_UPLOAD_BYTES = _int("CHAT_MAX_UPLOAD_BYTES", 25 * 1024 * 1024, minimum=1)
# Behind nginx: Django decides who may fetch a file and answers with an
# X-Accel-Redirect to this internal location, so nginx sends the bytes.
CHAT_X_ACCEL_PREFIX = env.str("CHAT_X_ACCEL_PREFIX", default="").strip()
# An image is decoded only up to this many pixels (all frames of an animation
# together); a larger one is refused before its pixels are read.
CHAT_MAX_IMAGE_PIXELS = _int("CHAT_MAX_IMAGE_PIXELS", 40_000_000, minimum=1)
# Uploads one user may make, `N/Ss`; `off` disables the limit.
CHAT_UPLOAD_RATE_LIMIT = _rate("CHAT_UPLOAD_RATE_LIMIT", "30/60s")

# Or an S3-compatible bucket (docs/files.md, "S3-compatible storage"). Objects stay
# private: no ACL is sent (the bucket's private default holds), and Django still
# checks every download and streams it, so no bucket URL ever reaches a browser.
# Credentials come the standard AWS way (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
# or an instance role), never from this file.
CHAT_S3_BUCKET = env.str("CHAT_S3_BUCKET", default="").strip()
if CHAT_S3_BUCKET:
    if CHAT_X_ACCEL_PREFIX:
        raise ImproperlyConfigured(
            "CHAT_X_ACCEL_PREFIX and CHAT_S3_BUCKET cannot both be set: nginx can only "
            "send files from its own disk. Leave CHAT_X_ACCEL_PREFIX empty with S3."
        )
    if importlib.util.find_spec("storages") is None or importlib.util.find_spec("boto3") is None:
        raise ImproperlyConfigured(
            "CHAT_S3_BUCKET needs django-storages and boto3: pip install '.[s3]'"
        )
    _s3_endpoint = env.str("CHAT_S3_ENDPOINT_URL", default="").strip() or None
    if _s3_endpoint and not re.match(r"https?://", _s3_endpoint):
        raise ImproperlyConfigured(
            f"CHAT_S3_ENDPOINT_URL must start with http:// or https://; got {_s3_endpoint!r}"
        )
    STORAGES = {
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": CHAT_S3_BUCKET,
                "endpoint_url": _s3_endpoint,
                "region_name": env.str("CHAT_S3_REGION", default="").strip() or None,
                "default_acl": None,
                # url() would only ever give a signed, expiring link, never a public one.
                "querystring_auth": True,
                # A download is fetched whole before it is streamed; past 2 MiB it
                # waits in a temporary file instead of memory.
                "max_memory_size": 2 * 1024 * 1024,
            },
        },
        "staticfiles": global_settings.STORAGES["staticfiles"],
    }

# --- Metrics: GET /metrics for Prometheus (docs/operations.md) ------------------

# The bearer token a scraper must send; unset, /metrics does not exist (404).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="").strip() or None
if METRICS_TOKEN is not None and len(METRICS_TOKEN) < 16:
    raise ImproperlyConfigured(
        "METRICS_TOKEN must be at least 16 characters long (a random string); "
        f"got {len(METRICS_TOKEN)}"
    )

# --- Logging: events, never message bodies ---------------------------------

# Also read by chatsite/server.py (its access log is off at WARNING and above).
CHAT_LOG_LEVEL = env.str("CHAT_LOG_LEVEL", default="").strip().upper() or "INFO"
if CHAT_LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(
        "CHAT_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL; "
        f"got {CHAT_LOG_LEVEL!r}"
    )

# plain: one readable line per event; json: one JSON object per line, for a log
# collector, with the request id (HTTP) or socket id (websocket) of the event.
LOG_FORMAT = env.str("LOG_FORMAT", default="").strip().lower() or "plain"
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json; got {LOG_FORMAT!r}")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "chat.logcontext.ContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(levelname)s %(name)s %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",
            # uvicorn's copy of each message with terminal colours in it.
            "reserved_attrs": [*RESERVED_ATTRS, "color_message"],
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context"],
        }
    },
    # The root logger is left alone (a test's log capture lives there); each logger
    # that speaks in production gets the one handler, so Django's warnings and the
    # server's lines come out in the same format as the chat's events.
    "loggers": {
        "chat": {"handlers": ["console"], "level": CHAT_LOG_LEVEL},
        "django": {"handlers": ["console"], "level": "INFO"},
        # LOG_FORMAT=json only: otherwise uvicorn installs its own (chatsite/server.py).
        "uvicorn": {"handlers": ["console"], "level": "INFO"},
        "asyncio": {"handlers": ["console"], "level": "WARNING"},
        # Failed logins and lockouts (usernames and addresses masked by axes).
        "axes": {"handlers": ["console"], "level": "WARNING", "propagate": False},
    },
}
