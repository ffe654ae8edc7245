# syntax=docker/dockerfile:1
# The chat site as one image: `python -m chatsite.server` (uvicorn, with the 64 KiB
# frame limit that closes with 1009; CHAT_SERVER=daphne in .env switches to daphne) on port 8000, as an unprivileged user.
# docker-compose.yml runs it behind Caddy (HTTPS) and nginx; README.md "Deployment"
# has the commands.

# Build stage: the translations (locale/*/LC_MESSAGES/*.po) compiled into the .mo
# files Django reads, with GNU gettext's msgfmt, run as `manage.py compilemessages`
# runs it; gettext stays out of the final image.
FROM python:3.11-slim-bookworm AS messages
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gettext \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY locale/ locale/
RUN find locale -name '*.po' -exec sh -c 'msgfmt --check-format -o "${1%.po}.mo" "$1"' _ {} \;

FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The user the site runs as; it owns nothing in /app, so the code is read-only to it.
RUN groupadd --system --gid 10001 chat \
    && useradd --system --uid 10001 --gid chat --no-create-home --home-dir /app \
       --shell /usr/sbin/nologin chat

WORKDIR /app

# Dependencies from the pins in pyproject.toml (the only place they are pinned),
# with the S3 client, so one image serves uploads from the media volume or from a
# bucket (CHAT_S3_BUCKET). `pip install .` builds the packages listed in
# [tool.setuptools], so those and the README (the package's long description) come
# first; edits elsewhere keep this layer.
COPY pyproject.toml README.md ./
COPY chat/ chat/
COPY chatsite/ chatsite/
RUN pip install '.[s3]' && rm -rf build ./*.egg-info

# The rest of the tree: manage.py, templates/, static/, deploy/healthcheck.py.
# The server runs from /app, so this copy (which has templates/ and static/ next to
# the packages) is the one Python imports, ahead of the installed one.
COPY . .
# The compiled translations from the build stage, next to their .po files.
COPY --from=messages /src/locale/ locale/

# Static files for nginx: collectstatic needs settings, and settings refuse to load
# without a SECRET_KEY when DEBUG is off; this throwaway one exists for this step
# only and is not kept in the image's environment.
ENV STATIC_ROOT=/app/staticfiles
RUN SECRET_KEY=collectstatic-only-not-a-secret python manage.py collectstatic --noinput -v0

# The mount points of the compose `static` and `media` volumes, writable by the
# site's user (an empty named volume takes this directory's owner when it is first
# mounted). Uploads land in /srv/media unless CHAT_S3_BUCKET names a bucket.
RUN mkdir -p /srv/static /srv/media && chown chat:chat /srv/static /srv/media
ENV MEDIA_ROOT=/srv/media

USER chat

# Listen on every interface of the container; nginx reaches it as web:8000. The
# HEALTHCHECK asks the health listener on 8001 (chatsite/health_listener.py): it
# answers from a thread of its own while a crowd of reconnecting sockets waits on
# 8000, and fails when the server's event loop is stuck.
ENV HOST=0.0.0.0 \
    PORT=8000 \
    CHAT_HEALTH_PORT=8001
EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "deploy/healthcheck.py"]

# Behind nginx: --proxy-headers makes the server take the client's address and scheme
# from X-Forwarded-For / X-Forwarded-Proto, which deploy/nginx.conf sets from what
# Caddy told it. Only nginx can reach port 8000 (compose publishes no port of this
# service).
CMD ["python", "-m", "chatsite.server", "--proxy-headers"]
