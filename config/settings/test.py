"""The test suite: the same real PostgreSQL and Redis, in a database and key space of their own."""

import os
from urllib.parse import urlsplit, urlunsplit

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-insecure-key-0123456789-abcdefghijklmnop")

from .base import *  # noqa: E402,F403
from .base import API_EVENTS_LAYER, DATABASES, REDIS_URL, STORAGES, collected_static, env, pubsub_layer

DATABASE_NAME_SUFFIX = "_test"
for _alias in DATABASES.values():
    _alias["NAME"] = f"{_alias['NAME']}{DATABASE_NAME_SUFFIX}"
    _alias["CONN_MAX_AGE"] = 0
    # No health checks: a non-transactional test keeps its rows in an open transaction on each connection,
    # and a health check that finds a connection "unusable" would reconnect outside it (the rows vanish).
    _alias["CONN_HEALTH_CHECKS"] = False
    # The runtime roles' connections have lock and statement timeouts (config/database.py); the owner's
    # get a lock timeout too, so a statement waiting on a lock fails instead of hanging the suite.
    _options = _alias.setdefault("OPTIONS", {})
    if "lock_timeout" not in _options.get("options", ""):
        _options["options"] = f"{_options.get('options', '')} -c lock_timeout=20s".strip()

# A Redis database of its own (15 unless REDIS_TEST_DB says otherwise): tests clear their cache freely.
REDIS_URL = urlunsplit(urlsplit(REDIS_URL)._replace(path=f"/{env.int('REDIS_TEST_DB', default=15)}"))
CELERY_BROKER_URL = REDIS_URL
REDIS_KEY_PREFIX = "nexus-test"
CACHES = {
    "default": {
        "BACKEND": "core.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": REDIS_KEY_PREFIX,
    }
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": f"{REDIS_KEY_PREFIX}:asgi", "capacity": 200, "expiry": 30},
    },
    API_EVENTS_LAYER: pubsub_layer(REDIS_URL, REDIS_KEY_PREFIX),
}
CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": f"{REDIS_KEY_PREFIX}:celery:"}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The browser tests' server runs in another process and writes mail to files the test reads.
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.locmem.EmailBackend")
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", default=None)
ACCOUNT_RATE_LIMITS = {"login_failed": "5/5m/key"}

# Static files straight from the app folders (no collectstatic) unless NEXUS_COLLECTED_STATIC names a folder
# that `manage.py collectstatic` filled: then they are served as in production, fingerprinted and compressed
# (whitenoise's CompressedManifestStaticFilesStorage). The browser suite and `make screenshots` do that.
STATIC_ROOT, STORAGES = collected_static(env("NEXUS_COLLECTED_STATIC", default=""), STORAGES)
WHITENOISE_USE_FINDERS = WHITENOISE_AUTOREFRESH = STATIC_ROOT is None
WHITENOISE_KEEP_ONLY_HASHED_FILES = STATIC_ROOT is not None  # the pages ask for fingerprinted names only
# Resend's tracking webhook in tests is signed with this (Svix) secret, as Resend signs it.
ANYMAIL = {**ANYMAIL, "RESEND_SIGNING_SECRET": "whsec_" + "bmV4dXMtdGVzdC1yZXNlbmQtc2lnbmluZy1zZWNyZXQ="}  # noqa: F405
# Tests that measure the throttle set their own rate; the others should not wait for it.
NEWSLETTER_SEND_RATE = env.float("NEWSLETTER_SEND_RATE", default=10_000.0)
NEWSLETTER_SEND_BURST = env.int("NEWSLETTER_SEND_BURST", default=500)
