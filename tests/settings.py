"""Settings for the test suite: the site's own settings with a throwaway secret key."""

import os

os.environ.setdefault("SECRET_KEY", "test-suite-only-secret-key")

from chatsite.settings import *  # noqa: F403
