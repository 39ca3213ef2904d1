"""Settings shared by every environment. Values come from the environment (django-environ)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import environ
from celery.schedules import crontab
from kombu import Queue

from config.database import database_settings

BASE_DIR = Path(__file__).resolve().parents[2]
env = environ.Env()

SECRET_KEY = env("DJANGO_SECRET_KEY")
SECRET_KEY_FALLBACKS = env.list("DJANGO_SECRET_KEY_FALLBACKS", default=[])
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

DJANGO_APPS = [
    "daphne",
    "core.apps.NexusAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
]
THIRD_PARTY_APPS = [
    "channels",
    "django_htmx",
    "django_prometheus",
    "django_structlog",
    "csp",
    "rest_framework",
    "django_filters",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.google",
    "allauth.socialaccount.providers.discord",
    "allauth.mfa",
    "djstripe",
]
LOCAL_APPS = [
    "core",
    "accounts",
    "marketdata",
    "portfolios",
    "trading",
    "billing",
    "alerts",
    "automation",
    "research",
    "bot",
    "newsletter",
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # A database outage anywhere below answers 503 with Retry-After, not 500 (core/unavailable.py).
    "core.unavailable.DatabaseUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "core.rls.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_structlog.middlewares.RequestMiddleware",
    # Last: opens the request's transaction and sets app.user_id before the view runs.
    "core.rls.TenantMiddleware",
    # Inside the request's transaction: Idempotency-Key on unsafe /api/v1/ requests; RateLimit-* headers.
    "core.idempotency.IdempotencyMiddleware",
    "core.api.RateLimitHeadersMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

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
                "csp.context_processors.nonce",
            ],
        },
    },
]

# --- Database: see config/database.py for the four identities and docs/security.md -----------------------
DB_APP_ROLE = env("DB_APP_ROLE", default="nexus_app")
DB_OWNER_ROLE = env("DB_OWNER_ROLE", default="nexus_owner")
# BYPASSRLS, its own login and connection: only code inside core.rls.system_context() reaches it.
DB_SYSTEM_ROLE = env("DB_SYSTEM_ROLE", default="nexus_system")
# The identity tables for sign-in before anyone is signed in: core.rls.auth_context() only.
DB_AUTH_ROLE = env("DB_AUTH_ROLE", default="nexus_auth")
DATABASE_URL = env("DATABASE_URL")
DATABASE_NAME_SUFFIX = ""
# PgBouncer in transaction mode for the runtime roles (docs/scale-out.md); `make run` starts one when the
# binary is installed. Its prepared statements (PgBouncer 1.21+ with max_prepared_statements) let the
# fan-out's pipeline keep preparing its statements; without them it sends them unprepared.
DATABASE_POOLER_URL = env("DATABASE_POOLER_URL", default="")
DATABASE_POOLER_PREPARED_STATEMENTS = env.bool("DATABASE_POOLER_PREPARED_STATEMENTS", default=False)
DATABASE_PREPARED_STATEMENTS = not DATABASE_POOLER_URL or DATABASE_POOLER_PREPARED_STATEMENTS
DB_POOL_SIZE = env.int("DB_POOL_SIZE", default=0)
# Batches of incoming automation webhooks a web process writes at once (automation/intake.py), each on a
# connection of its own: added to the pool below, so requests admitted into Django still never wait for one.
AUTOMATION_INTAKE_WRITERS = max(1, env.int("AUTOMATION_INTAKE_WRITERS", default=2))
# HTTP requests a web process runs inside Django at once, the rest queued in order (core/asgi_limit.py):
# a few, since they share one GIL. One still inside after WEB_HTTP_STALL_MS stops counting (it waits on a
# lock or an upstream) and lets the next in, up to WEB_HTTP_MAX_INSIDE at once: by default the pool's size,
# so an admitted request never waits for a connection. 0: no limit.
WEB_HTTP_MAX_INSIDE = env.int("WEB_HTTP_MAX_INSIDE", default=DB_POOL_SIZE)
WEB_HTTP_CONCURRENCY = env.int("WEB_HTTP_CONCURRENCY", default=min(3, WEB_HTTP_MAX_INSIDE))
WEB_HTTP_STALL_MS = env.int("WEB_HTTP_STALL_MS", default=250)
# Paths whose requests act as no one even with a signed-in session (core.rls.TenantMiddleware): endpoints
# for other systems, whose services open each owner's tenant themselves (incoming automation webhooks).
SESSIONLESS_PATH_PREFIXES = ("/automation/hooks/",)
# PostgreSQL durations ("15s", "500ms") for the runtime roles; the owner (migrations) has neither.
DB_LOCK_TIMEOUT = env("DB_LOCK_TIMEOUT", default="15s")
DB_STATEMENT_TIMEOUT = env("DB_STATEMENT_TIMEOUT", default="30s")
DATABASES = database_settings(
    admin_url=DATABASE_URL,
    pooler_url=DATABASE_POOLER_URL or None,
    pool_size=DB_POOL_SIZE + AUTOMATION_INTAKE_WRITERS if DB_POOL_SIZE > 0 else 0,
    identities={
        "default": (env("DATABASE_APP_URL", default=None), DB_APP_ROLE, env("DB_APP_PASSWORD", default="")),
        "owner": (env("DATABASE_OWNER_URL", default=None), DB_OWNER_ROLE, env("DB_OWNER_PASSWORD", default="")),
        "system": (
            env("DATABASE_SYSTEM_URL", default=None), DB_SYSTEM_ROLE, env("DB_SYSTEM_PASSWORD", default="")
        ),
        "auth": (env("DATABASE_AUTH_URL", default=None), DB_AUTH_ROLE, env("DB_AUTH_PASSWORD", default="")),
    },
    lock_timeout=DB_LOCK_TIMEOUT,
    statement_timeout=DB_STATEMENT_TIMEOUT,
)
# Under ASGI each request runs in a thread of its own, so a persistent connection is never reused and
# stays open until garbage-collected: a busy daphne can exhaust max_connections. Django's advice for
# ASGI is 0 (bench/webhooks.py runs its daphne with DB_CONN_MAX_AGE=0); DB_POOL_SIZE is the way to reuse
# connections there (a pool cannot be combined with a kept connection).
if not DB_POOL_SIZE:
    for _alias in ("default", "system", "auth"):
        DATABASES[_alias]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=DATABASES[_alias]["CONN_MAX_AGE"])
# Seconds a 503 asks the client to wait while the database is unreachable (core/unavailable.py).
DB_UNAVAILABLE_RETRY_AFTER = env.int("DB_UNAVAILABLE_RETRY_AFTER", default=5)
DATABASE_ROUTERS = ["core.db_router.OwnerMigratesRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, channel layer, Celery broker -------------------------------------------------------
REDIS_URL = env("REDIS_URL")
REDIS_KEY_PREFIX = env("REDIS_KEY_PREFIX", default="nexus")
CACHES = {
    "default": {
        "BACKEND": "core.cache.RedisCache",  # one connection pool per process (core/cache.py)
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": REDIS_KEY_PREFIX,
    }
}
# Open dashboards are revalued and re-rendered at most once in this many seconds, however often prices move
# (portfolios/live.py, TickRevaluation).
PORTFOLIO_REVALUATION_INTERVAL = env.float("PORTFOLIO_REVALUATION_INTERVAL", default=1.0)
CHANNEL_LAYER_SOCKET_TIMEOUT = env.float("CHANNEL_LAYER_SOCKET_TIMEOUT", default=20.0)
API_EVENTS_LAYER = "events"


def pubsub_layer(redis_url: str, key_prefix: str) -> dict:
    """channels-redis' pub/sub layer on `redis_url`. Pub/sub channels belong to the whole Redis server, not
    to one of its databases: the prefix names the database too, so two deployments (or test runs) sharing
    a server on different databases never hear each other's events."""
    database = urlsplit(redis_url).path.lstrip("/") or "0"
    return {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {
            "hosts": [{"address": redis_url, "socket_timeout": CHANNEL_LAYER_SOCKET_TIMEOUT}],
            "prefix": f"{key_prefix}:db{database}:events:",
        },
    }


CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py's asyncio pool refuses a connection past max_connections (default 100) instead of
            # waiting: a thousand sockets joining their groups at once on one web process got "Too many
            # connections". Idle pooled connections cost Redis little (maxclients is 10,000 by default).
            # socket_timeout: a consumer waits for its messages with BZPOPMIN, which Redis answers after 5 s
            # (channels-redis' brpop_timeout) when none came; redis-py's default read timeout is 5 s as well,
            # so on a busy event loop the client's timer could fire before the reply was read: TimeoutError,
            # the consumer died and its socket closed with 1011. The read timeout must outlast the block.
            "hosts": [{"address": REDIS_URL,
                       "max_connections": env.int("CHANNEL_LAYER_MAX_CONNECTIONS", default=1000),
                       "socket_timeout": CHANNEL_LAYER_SOCKET_TIMEOUT}],
            "prefix": f"{REDIS_KEY_PREFIX}:asgi",
            # A slow client's queue is bounded; messages past it are dropped, not buffered forever.
            "capacity": 200,
            "expiry": 30,
        },
    },
    # The programs' socket (/ws/v1/) gets its users' events through Redis pub/sub (channels-redis' own
    # pub/sub layer): Redis pushes each message to the processes subscribed to its group. Through the
    # layer above, every message for a process's consumers is popped one at a time, three round trips
    # each, by one receiver per process: behind a busy event loop that receiver fell far behind
    # (bench/api.py, 200 clients and 2,000 sockets: fill events p50 10 s, one in seven later than 10 s;
    # through pub/sub p50 1.6 s, none later, about as late as the order's own answer). Nothing waits in Redis:
    # a process that is not subscribed when an event is sent does not get it, which is what a program
    # reconnecting after a restart gets either way (it reads what it missed from the REST API).
    API_EVENTS_LAYER: pubsub_layer(REDIS_URL, REDIS_KEY_PREFIX),
}
# Sessions live only in Redis: the database runtime role cannot read or forge them (there is no
# django_session table). "Log out everywhere" does not need to find them: it changes the user's session
# auth hash (accounts.models.User.session_generation), which Django checks on every request.
SESSION_ENGINE = "django.contrib.sessions.backends.cache"

CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": f"{REDIS_KEY_PREFIX}:celery:"}
# Queues (docs/scale-out.md): a burst of fan-out chunks never delays a Stripe event or an email, and each
# queue gets its own workers where the machine has room (Procfile's worker-<queue>, compose.yaml).
# Anything not routed below (sweeps, snapshots, a manual order's submission) goes to `default`.
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_QUEUE_NAMES = ("default", "fanout", "billing", "notifications")
# Declared, so a worker started without -Q consumes all four (make run on a small machine, the tests).
CELERY_TASK_QUEUES = [Queue(name, routing_key=name) for name in CELERY_QUEUE_NAMES]
CELERY_TASK_ROUTES = {
    "trading.signals_compute": {"queue": "fanout"},
    "trading.signal_fan_out": {"queue": "fanout"},
    "trading.plans_execute": {"queue": "fanout"},
    "trading.blocked_notify": {"queue": "notifications"},
    "billing.*": {"queue": "billing"},
    "core.notifications.*": {"queue": "notifications"},
}
CELERY_BEAT_SCHEDULE: dict[str, dict] = {}
# Portfolios: each portfolio's value at the close of the UTC day, for the equity curve (docs/portfolio-math.md).
CELERY_BEAT_SCHEDULE["portfolios-daily-snapshot"] = {
    "task": "portfolios.snapshot_all",
    "schedule": crontab(hour=0, minute=1),
}

# --- Auth and accounts (django-allauth) ---------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "accounts.validators.MaximumLengthValidator", "OPTIONS": {"max_length": 1024}},
]
LOGIN_URL = "account_login"
# allauth's pages run in core.rls.auth_context (identity lookups before sign-in, secrets after).
AUTH_CONTEXT_PATH_PREFIXES = ("/accounts/",)
LOGIN_REDIRECT_URL = "dashboard"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = env("ACCOUNT_EMAIL_VERIFICATION", default="mandatory")
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Nexus] "
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
# allauth's email fields take 320 characters; these hold them to what the columns store (254).
ACCOUNT_FORMS = {"signup": "accounts.forms.SignupForm", "add_email": "accounts.forms.AddEmailForm"}
ACCOUNT_RATE_LIMITS = {
    "login_failed": "10/m/ip,5/5m/key",
    "signup": "20/m/ip",
    "reset_password": "20/m/ip,5/m/key",
    "confirm_email": "1/3m/key",
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Nexus"
GOOGLE_CLIENT_ID = env("GOOGLE_CLIENT_ID", default="")
GOOGLE_CLIENT_SECRET = env("GOOGLE_CLIENT_SECRET", default="")
SOCIALACCOUNT_PROVIDERS: dict[str, dict] = (
    {
        "google": {
            "APPS": [{"client_id": GOOGLE_CLIENT_ID, "secret": GOOGLE_CLIENT_SECRET, "key": ""}],
            "SCOPE": ["profile", "email"],
        }
    }
    if GOOGLE_CLIENT_ID
    else {}
)
# Discord (docs/companion.md): "Connect with Discord" on /settings/ links a member's Discord account
# (allauth's connect flow; redirect URL <SITE_URL>/accounts/discord/login/callback/). Without these the
# one-time link code is the way to link.
DISCORD_CLIENT_ID = env("DISCORD_CLIENT_ID", default="")
DISCORD_CLIENT_SECRET = env("DISCORD_CLIENT_SECRET", default="")
if DISCORD_CLIENT_ID and DISCORD_CLIENT_SECRET:
    SOCIALACCOUNT_PROVIDERS["discord"] = {
        "APPS": [{"client_id": DISCORD_CLIENT_ID, "secret": DISCORD_CLIENT_SECRET, "key": ""}],
        "SCOPE": ["identify"],
        # Connecting only: a Discord account never signs anyone up or in by email.
        "EMAIL_AUTHENTICATION": False,
        "VERIFIED_EMAIL": False,
    }
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_ADAPTER = "accounts.adapters.SocialAccountAdapter"

# --- Email ---------------------------------------------------------------------------------------------
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
# Where django.core.mail.backends.filebased.EmailBackend writes (bench/newsletter.py, tests).
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", default=None)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Nexus <no-reply@nexus.local>")
ANYMAIL = {
    "RESEND_API_KEY": env("RESEND_API_KEY", default=""),
    # The tracking webhook (/anymail/resend/tracking/) checks Resend's Svix signature with this secret.
    "RESEND_SIGNING_SECRET": env("RESEND_SIGNING_SECRET", default=None),
}

# --- Newsletter (docs/newsletter.md) ------------------------------------------------------------------
NEWSLETTER_FROM_EMAIL = env("NEWSLETTER_FROM_EMAIL", default=DEFAULT_FROM_EMAIL)
# The email provider's sending rate, shared by every send worker (a token bucket in Redis). Resend's
# default API limit is 2 requests a second.
NEWSLETTER_SEND_RATE = env.float("NEWSLETTER_SEND_RATE", default=2.0)
NEWSLETTER_SEND_BURST = env.int("NEWSLETTER_SEND_BURST", default=2)
NEWSLETTER_BATCH_SIZE = env.int("NEWSLETTER_BATCH_SIZE", default=100)
# Emails the provider accepted are recorded sent together, this many at a time (and at the end of every
# throttle burst); after a crash at most this many are sent again, and the provider drops them by their
# idempotency key (core/email_backends.py).
NEWSLETTER_RECORD_EVERY = env.int("NEWSLETTER_RECORD_EVERY", default=50)
NEWSLETTER_UNSUBSCRIBE_MAILTO = env("NEWSLETTER_UNSUBSCRIBE_MAILTO", default="")
NEWSLETTER_DISCORD_CHANNEL_ID = env("NEWSLETTER_DISCORD_CHANNEL_ID", default="")
# Links in emails (notifications) point here.
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000")

# A WebSocket client whose connection has had more than 64 KiB waiting for it for this long is closed
# with 4429 (core.ws_backpressure).
WEBSOCKET_SLOW_CLIENT_SECONDS = env.float("WEBSOCKET_SLOW_CLIENT_SECONDS", default=10.0)

# --- Discord bot (docs/companion.md) -----------------------------------------------------------
# Without a token `manage.py runbot` exits, the `discord` notification channel is unavailable and /readyz
# reports the bot "off".
DISCORD_BOT_TOKEN = env("DISCORD_BOT_TOKEN", default="")
DISCORD_API_BASE = env("DISCORD_API_BASE", default="https://discord.com/api/v10")
DISCORD_BOT_METRICS_PORT = env.int("DISCORD_BOT_METRICS_PORT", default=9109)
# Threads that run the bot's database work (each holds its own database connections).
DISCORD_BOT_WORKERS = env.int("DISCORD_BOT_WORKERS", default=8)

# --- API ----------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.api_auth.TenantTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Signed in, and an API token must carry the operation's scope (read / trade; docs/api.md).
    "DEFAULT_PERMISSION_CLASSES": ["core.api.TokenScopePermission"],
    # drf-spectacular's, plus the problem answers and the Idempotency-Key header every operation shares.
    "DEFAULT_SCHEMA_CLASS": "core.api_schema.ApiAutoSchema",
    "EXCEPTION_HANDLER": "core.api.problem_exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "core.api.DepthLimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "core.api.CursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "core.api.OrderingFilter",
    ],
    # Per-plan requests per minute (docs/billing.md).
    "DEFAULT_THROTTLE_CLASSES": ["billing.api.PlanRateThrottle"],
}
# API tokens (docs/api.md): django-rest-knox stores only a SHA-512 digest; our model adds a name and the
# last use, and lives in accounts under row-level security.
KNOX_TOKEN_MODEL = "accounts.ApiToken"  # noqa: S105 - a model name, not a secret
REST_KNOX = {"TOKEN_PREFIX": "nexus_"}
# knox's own migrations create its default token table even when the model is swapped out; we never use it.
MIGRATION_MODULES = {"knox": None}
SPECTACULAR_SETTINGS = {
    "TITLE": "Nexus API",
    "DESCRIPTION": "Portfolios, orders, bots, alerts and market data for Nexus traders.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "AlertKindEnum": "alerts.choices.AlertKind",
        "PlanCodeEnum": "billing.choices.PlanCode",
        "NewsletterIssueStatusEnum": "newsletter.choices.IssueStatus",
        "NewsletterAudienceEnum": "newsletter.choices.Audience",
        "NewsletterDiscordStatusEnum": "newsletter.choices.DiscordStatus",
        "ResearchAudienceEnum": "research.choices.Audience",
        # marketdata's candle intervals, which research's chart intervals are.
        "IntervalEnum": "research.choices.ChartInterval",
        "ReplaySourceEnum": "trading.choices.ReplaySource",
        "OrderSourceEnum": "trading.choices.OrderSource",
        "ThesisDirectionEnum": "research.choices.Direction",
        "PriceDirectionEnum": "automation.choices.PriceDirection",
    },
}

# --- Internationalisation -----------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files -------------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}


def collected_static(root: str, storages: dict) -> tuple[Path | None, dict]:
    """(STATIC_ROOT, STORAGES) serving what collectstatic put in `root`, fingerprinted and compressed as in
    production; (None, storages) unchanged when `root` is empty (files straight from the app folders)."""
    if not root:
        return None, storages
    return Path(root), {
        **storages,
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }

# --- Security -----------------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # HTMX reads the token from the page, not the cookie, but JS clients may.
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'", "ws:", "wss:"],
        "font-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'", "https://checkout.stripe.com", "https://billing.stripe.com"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}

# --- Logging (structlog through django-structlog) -----------------------------------------------------
LOG_JSON = env.bool("LOG_JSON", default=False)
LOG_LEVEL = env("LOG_LEVEL", default="INFO")


def configure_logging(*, json: bool, level: str) -> dict:
    import structlog

    processors = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.filter_by_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        structlog.processors.UnicodeDecoder(),
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ]
    import logging

    structlog.configure(
        processors=processors,
        logger_factory=structlog.stdlib.LoggerFactory(),
        # Calls below the level return at once: without it every request's request_started/finished
        # went through the context merge and the processors before filter_by_level dropped it.
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        cache_logger_on_first_use=True,
    )
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {"()": structlog.stdlib.ProcessorFormatter, "processor": renderer},
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            "daphne": {"level": "WARNING"},
            "django_structlog": {"level": level},
        },
    }


LOGGING = configure_logging(json=LOG_JSON, level=LOG_LEVEL)
DJANGO_STRUCTLOG_CELERY_ENABLED = True

# --- Nexus --------------------------------------------------------------------------------------------
SHARED_DATA_DIR = Path(env("NEXUS_SHARED_DATA_DIR", default=str(BASE_DIR.parent / "shared" / "data")))

from decimal import Decimal  # noqa: E402

# --- Trading (docs/trading.md) --------------------------------------------------------------------------
# Fernet keys for exchange API secrets, newest first (MultiFernet); empty derives one from SECRET_KEY.
TRADING_KEY_ENCRYPTION_KEYS = env.list("TRADING_KEY_ENCRYPTION_KEYS", default=[])
TRADING_PAPER_FEE_RATE = Decimal(env.str("TRADING_PAPER_FEE_RATE", default="0.001"))
TRADING_PAPER_SLIPPAGE_RATE = Decimal(env.str("TRADING_PAPER_SLIPPAGE_RATE", default="0.0005"))
TRADING_BOT_MAX_TAKER_FEE = Decimal(env.str("TRADING_BOT_MAX_TAKER_FEE", default="0.0025"))
TRADING_SIGNAL_MAX_LAG_SECONDS = env.int("TRADING_SIGNAL_MAX_LAG_SECONDS", default=120)
TRADING_FANOUT_CHUNK_SIZE = env.int("TRADING_FANOUT_CHUNK_SIZE", default=250)
TRADING_BREAKER_THRESHOLD = env.int("TRADING_BREAKER_THRESHOLD", default=3)
TRADING_BREAKER_WINDOW_SECONDS = env.int("TRADING_BREAKER_WINDOW_SECONDS", default=60)
TRADING_BREAKER_COOLDOWN_SECONDS = env.int("TRADING_BREAKER_COOLDOWN_SECONDS", default=60)
CELERY_BEAT_SCHEDULE["trading-sweep"] = {"task": "trading.sweep", "schedule": 60.0}
# Research: the outcome of every open published thesis, from the stored candles (docs/research.md).
CELERY_BEAT_SCHEDULE["research-outcomes"] = {"task": "research.outcomes_refresh", "schedule": 300.0}

# --- Market data (docs/market-data.md) -------------------------------------------------------------------
MARKET_FEED_SOURCE = env("MARKET_FEED_SOURCE", default="replay")  # replay | simulated | ccxt
MARKET_REPLAY_DIR = Path(env("MARKET_REPLAY_DIR", default=str(SHARED_DATA_DIR / "market")))
MARKET_REPLAY_SPEED = env.float("MARKET_REPLAY_SPEED", default=1.0)
MARKET_TICKS_PER_MINUTE = env.int("MARKET_TICKS_PER_MINUTE", default=60)
MARKET_BACKFILL_MINUTES = env.int("MARKET_BACKFILL_MINUTES", default=7 * 24 * 60)
MARKET_COALESCE_MS = env.int("MARKET_COALESCE_MS", default=250)
MARKET_EXCHANGE = env("MARKET_EXCHANGE", default="binance")
MARKET_CCXT_CONFIG = env.json("MARKET_CCXT_CONFIG", default={})
MARKET_METRICS_PORT = env.int("MARKET_METRICS_PORT", default=9108)
MARKET_TICK_RETENTION_HOURS = env.int("MARKET_TICK_RETENTION_HOURS", default=24)
# The tick stream the tick consumers read keeps about this many published batches (docs/market-data.md).
MARKET_TICK_STREAM_MAXLEN = env.int("MARKET_TICK_STREAM_MAXLEN", default=100_000)
# Feeds elect a leader with a Redis lease of this TTL (marketdata/feed/leader.py): a standby takes over
# within about this long after the leader dies.
MARKET_FEED_LEASE_SECONDS = env.float("MARKET_FEED_LEASE_SECONDS", default=5.0)
CELERY_BEAT_SCHEDULE["marketdata-trim-ticks"] = {"task": "marketdata.trim_ticks", "schedule": 600.0}

# --- Billing: Stripe through dj-stripe (docs/billing.md) --------------------------------------------------
# Without a secret key the pricing and billing pages work and say that payments are not configured.
STRIPE_LIVE_MODE = env.bool("STRIPE_LIVE_MODE", default=False)
STRIPE_TEST_SECRET_KEY = env("STRIPE_TEST_SECRET_KEY", default="")
STRIPE_LIVE_SECRET_KEY = env("STRIPE_LIVE_SECRET_KEY", default="")
# Signing secret of the local endpoint (`manage.py billing_webhook_endpoint`, `stripe listen`, tests).
# Endpoints created in Stripe (dj-stripe admin) keep their own secret in djstripe_webhookendpoint.
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET", default="whsec_nexus_local_test_secret")
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_WEBHOOK_VALIDATION = "verify_signature"
# dj-stripe verifies and logs the delivery; we store it once and hand it to Celery (billing.webhooks,
# StoredDelivery: its processing step replaces the deprecated DJSTRIPE_WEBHOOK_EVENT_CALLBACK).
BILLING_GRACE_PERIOD_DAYS = env.int("BILLING_GRACE_PERIOD_DAYS", default=7)
BILLING_TRIAL_ENDING_DAYS = env.int("BILLING_TRIAL_ENDING_DAYS", default=3)
CELERY_BEAT_SCHEDULE["billing-report-usage"] = {"task": "billing.report_usage", "schedule": 300.0}
CELERY_BEAT_SCHEDULE["billing-enforce-grace"] = {"task": "billing.enforce_grace_periods", "schedule": 900.0}
CELERY_BEAT_SCHEDULE["billing-requeue-events"] = {"task": "billing.requeue_stale_events", "schedule": 120.0}

# --- The AI companion (docs/companion.md) -----------------------------------------------------------------
# With a key the companion asks an OpenAI-compatible server (any base URL); without one it answers with the
# offline provider, a deterministic planner over the same tools.
OPENAI_API_KEY = env("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env("OPENAI_BASE_URL", default="")
OPENAI_MODEL = env("OPENAI_MODEL", default="gpt-4o-mini")

# --- Alerts and notifications (docs/alerts.md) ----------------------------------------------------------
# Expire alerts and show repeating ones armed again; re-enqueue deliveries whose queue message was lost.
CELERY_BEAT_SCHEDULE["alerts-maintenance"] = {"task": "alerts.maintenance", "schedule": 30.0}
CELERY_BEAT_SCHEDULE["notifications-sweep"] = {"task": "core.notifications.sweep", "schedule": 60.0}
# Idempotency-Key records live 24 hours (core/idempotency.py).
CELERY_BEAT_SCHEDULE["newsletter-send-due"] = {"task": "newsletter.send_due", "schedule": 60.0}
CELERY_BEAT_SCHEDULE["core-idempotency-purge"] = {"task": "core.idempotency_purge", "schedule": 3600.0}

# --- AI companion: the OpenAI provider's patience (docs/companion.md) -------------------------------------
# Per HTTP attempt; the client retries timeouts, 408/409/429/5xx up to OPENAI_MAX_RETRIES times (Retry-After).
OPENAI_TIMEOUT_SECONDS = env.float("OPENAI_TIMEOUT_SECONDS", default=20.0)
OPENAI_MAX_RETRIES = env.int("OPENAI_MAX_RETRIES", default=2)

# --- Automation rules (docs/automation.md) ------------------------------------------------------------------
# Schedule (cron) rules are checked every minute; a rule failing this many runs in a row is paused.
CELERY_BEAT_SCHEDULE["automation-schedules"] = {"task": "automation.schedules_due", "schedule": 60.0}
# Runs done whole in one transaction are carried out by drains, one per slot at a time (services.runs_drain);
# the sweep rings the slots whose pending runs waited over a minute (a lost message).
AUTOMATION_DRAIN_SLOTS = env.int("AUTOMATION_DRAIN_SLOTS", default=4)
CELERY_BEAT_SCHEDULE["automation-runs-sweep"] = {"task": "automation.runs_sweep", "schedule": 60.0}
AUTOMATION_FAILURES_TO_PAUSE = env.int("AUTOMATION_FAILURES_TO_PAUSE", default=3)
# Incoming webhooks: a timestamp further than this from now is refused as a replay.
AUTOMATION_WEBHOOK_WINDOW_SECONDS = env.int("AUTOMATION_WEBHOOK_WINDOW_SECONDS", default=300)
# Outgoing webhooks: attempts, and the first retry's wait (doubled each time).
AUTOMATION_WEBHOOK_MAX_ATTEMPTS = env.int("AUTOMATION_WEBHOOK_MAX_ATTEMPTS", default=6)
AUTOMATION_WEBHOOK_RETRY_BASE_SECONDS = env.int("AUTOMATION_WEBHOOK_RETRY_BASE_SECONDS", default=30)
# Outgoing webhooks to private, loopback and link-local addresses: refused unless allowed (development).
AUTOMATION_WEBHOOK_ALLOW_PRIVATE = env.bool("AUTOMATION_WEBHOOK_ALLOW_PRIVATE", default=DEBUG)
