"""Settings for the test suite: the site's own settings with a throwaway secret key."""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("SECRET_KEY", "test-suite-only-secret-key")
# The test client speaks plain HTTP; tests/test_settings_production.py covers HTTPS.
os.environ.setdefault("CHAT_PLAIN_HTTP", "1")

from chatsite.settings import *  # noqa: F403

# Channels runs database calls on a long-lived worker thread; a persistent connection
# there would still be open when the test database is dropped at the end of the run.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405

# Uploads of a test run go to a private directory, never to the checkout's media/.
MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="chat-test-media-"))

# Mail stays in django.core.mail.outbox; a password reset test reads its link there.
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CHAT_EMAIL_ENABLED = True
