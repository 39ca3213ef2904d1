"""Four PostgreSQL identities, derived from one server address (docs/security.md).

- admin (DATABASE_URL): a superuser or CREATEROLE/CREATEDB role; used only by `manage.py db_bootstrap`
  to create the roles, the database and the grants.
- owner (`owner` alias): owns the schema and runs migrations.
- app (`default` alias): what web, workers, consumers, the feed and the bot use. NOSUPERUSER
  NOBYPASSRLS, owns nothing, member of no role: row-level security and the grants of core/tables.py
  apply to every statement it sends.
- system (`system` alias): BYPASSRLS, logs in on a connection of its own. Code reaches it only through
  `core.rls.system_context(reason=...)`, so no statement sent on a runtime connection can.
- auth (`auth` alias): the identity tables only, for sign-in before anyone is signed in; reached only
  through `core.rls.auth_context(reason=...)`.

In production each may be given in full (DATABASE_APP_URL, DATABASE_OWNER_URL, DATABASE_SYSTEM_URL,
DATABASE_AUTH_URL); otherwise they reuse DATABASE_URL's host, port and database with their own role.
"""

from __future__ import annotations

from typing import Any

from psycopg.conninfo import conninfo_to_dict

# Runtime aliases (everything but the owner, which only migrates).
RUNTIME_ALIASES = ("default", "system", "auth")


def _from_url(url: str) -> dict[str, Any]:
    params = conninfo_to_dict(url)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": params.get("dbname", "nexus"),
        "USER": params.get("user", ""),
        "PASSWORD": params.get("password", ""),
        "HOST": params.get("host", ""),
        "PORT": params.get("port", ""),
    }


def database_settings(
    *,
    admin_url: str,
    identities: dict[str, tuple[str | None, str, str]],
    lock_timeout: str = "15s",
    statement_timeout: str = "30s",
) -> dict[str, dict[str, Any]]:
    """`identities`: alias -> (full URL or None, role, password). Every runtime connection waits at most
    `lock_timeout` for a lock and runs no statement longer than `statement_timeout` (PostgreSQL cancels it:
    a slow or locked database fails a request instead of hanging it; bench/faults/slow_database.py)."""
    base = _from_url(admin_url)
    databases = {}
    for alias, (url, role, password) in identities.items():
        databases[alias] = _from_url(url) if url else {**base, "USER": role, "PASSWORD": password}
    for alias in RUNTIME_ALIASES:
        # 0: under ASGI each request runs in its own thread, so a kept connection is never reused (Django's
        # advice). A wait on a lock held by this same thread's other connection must end, not hang.
        databases[alias].update(
            {
                "CONN_MAX_AGE": 0,
                "CONN_HEALTH_CHECKS": True,
                "OPTIONS": {"options": f"-c lock_timeout={lock_timeout} -c statement_timeout={statement_timeout}"},
            }
        )
    return databases
