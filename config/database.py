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
    pooler_url: str | None = None,
    pool_size: int = 0,
    lock_timeout: str = "15s",
    statement_timeout: str = "30s",
) -> dict[str, dict[str, Any]]:
    """`identities`: alias -> (full URL or None, role, password).

    Every runtime connection waits at most `lock_timeout` for a lock and runs no statement longer than
    `statement_timeout` (PostgreSQL cancels it: a slow or locked database fails a request instead of
    hanging it; bench/faults/slow_database.py). Sent as a connection option when connecting straight to
    PostgreSQL; db_bootstrap also makes them the runtime roles' defaults, which is what applies through
    PgBouncer.

    `pooler_url`: a PgBouncer in transaction mode (docs/scale-out.md). The runtime aliases connect to its
    host and port (same database, roles and passwords); migrations and db_bootstrap still go straight to
    PostgreSQL. Under transaction pooling a client's next transaction may run on another server
    connection, so nothing may outlive a transaction: no server-side cursors (DISABLE_SERVER_SIDE_CURSORS),
    no session settings (the tenant is `set_config(..., true)`), no `options` startup parameter (PgBouncer
    refuses it; the timeouts are the roles' defaults instead).

    `pool_size`: Django's own connection pool (psycopg_pool) per runtime alias and process, up to this
    many connections. Daphne runs each request in a thread of its own, so without it every request opens
    (and closes) a connection per alias it uses; with it they are borrowed and given back. 0: off.
    """
    base = _from_url(admin_url)
    databases = {}
    for alias, (url, role, password) in identities.items():
        databases[alias] = _from_url(url) if url else {**base, "USER": role, "PASSWORD": password}
    pooler = _from_url(pooler_url) if pooler_url else None
    for alias in RUNTIME_ALIASES:
        # 0: under ASGI each request runs in its own thread, so a kept connection is never reused (Django's
        # advice); a pool (pool_size) is how web processes reuse connections.
        options: dict[str, Any] = {}
        if pooler is None:
            options["options"] = f"-c lock_timeout={lock_timeout} -c statement_timeout={statement_timeout}"
        else:
            databases[alias].update({"HOST": pooler["HOST"], "PORT": pooler["PORT"]})
            databases[alias]["DISABLE_SERVER_SIDE_CURSORS"] = True
        if pool_size > 0:
            options["pool"] = {"min_size": 0, "max_size": pool_size, "timeout": 10, "max_idle": 300}
        # With a pool, Django's health check is psycopg_pool's: an empty query on every checkout, a round
        # trip per request. Without it, a connection the server dropped while idle fails its first request
        # (a 503, core/unavailable.py), which then has the pool check all its idle ones at once.
        databases[alias].update({"CONN_MAX_AGE": 0, "CONN_HEALTH_CHECKS": pool_size <= 0, "OPTIONS": options})
    return databases
