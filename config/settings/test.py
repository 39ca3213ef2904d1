"""The test suite: the same real PostgreSQL and Redis, in a database and key space of their own."""

import os
from urllib.parse import urlsplit, urlunsplit

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-insecure-key-0123456789-abcdefghijklmnop")

from .base import *  # noqa: E402,F403
from .base import DATABASES, REDIS_URL, env

DATABASE_NAME_SUFFIX = "_test"
for _alias in DATABASES.values():
    _alias["NAME"] = f"{_alias['NAME']}{DATABASE_NAME_SUFFIX}"
    _alias["CONN_MAX_AGE"] = 0
    # A statement waiting on a lock fails after 20 s instead of hanging the suite (no test needs longer).
    _options = _alias.setdefault("OPTIONS", {})
    _options["options"] = f"{_options.get('options', '')} -c lock_timeout=20s".strip()

# A Redis database of its own (15 unless REDIS_TEST_DB says otherwise): tests clear their cache freely.
REDIS_URL = urlunsplit(urlsplit(REDIS_URL)._replace(path=f"/{env.int('REDIS_TEST_DB', default=15)}"))
CELERY_BROKER_URL = REDIS_URL
REDIS_KEY_PREFIX = "nexus-test"
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": REDIS_KEY_PREFIX,
    }
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": f"{REDIS_KEY_PREFIX}:asgi", "capacity": 200, "expiry": 30},
    }
}
CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": f"{REDIS_KEY_PREFIX}:celery:"}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The browser tests' server runs in another process and writes mail to files the test reads.
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.locmem.EmailBackend")
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", default=None)
ACCOUNT_RATE_LIMITS = {"login_failed": "5/5m/key"}

# Static files straight from the app folders (no collectstatic in tests).
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
