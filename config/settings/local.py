"""Development: `make run`. Safe defaults so a newcomer needs no configuration."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "dev-only-insecure-key-change-me-in-production-0123456789")
os.environ.setdefault("DJANGO_DEBUG", "true")

from .base import *  # noqa: E402,F403
from .base import STORAGES, collected_static, env  # noqa: E402

# Static files straight from the app folders (no collectstatic) unless NEXUS_COLLECTED_STATIC names a folder
# that `manage.py collectstatic` filled: then they are served as in production, fingerprinted and compressed
# (whitenoise's CompressedManifestStaticFilesStorage). The browser suite and `make screenshots` do that.
STATIC_ROOT, STORAGES = collected_static(env("NEXUS_COLLECTED_STATIC", default=""), STORAGES)
WHITENOISE_USE_FINDERS = WHITENOISE_AUTOREFRESH = STATIC_ROOT is None
WHITENOISE_KEEP_ONLY_HASHED_FILES = STATIC_ROOT is not None  # the pages ask for fingerprinted names only
