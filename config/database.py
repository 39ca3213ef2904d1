"""Three PostgreSQL identities, derived from one server address.

- admin (DATABASE_URL): a superuser or CREATEROLE/CREATEDB role; used only by `manage.py db_bootstrap`
  to create the roles, the database and the grants.
- owner (`owner` alias): owns the schema and runs migrations.
- app (`default` alias): what web, workers, consumers and the bot use. NOSUPERUSER NOBYPASSRLS, owns
  nothing, so row-level security applies to it.

In production the owner and app connections may be given in full (DATABASE_OWNER_URL,
DATABASE_APP_URL); otherwise they reuse DATABASE_URL's host, port and database with their own role.
"""

from __future__ import annotations

from typing import Any

from psycopg.conninfo import conninfo_to_dict


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
    app_url: str | None,
    owner_url: str | None,
    app_role: str,
    app_password: str,
    owner_role: str,
    owner_password: str,
    name_suffix: str = "",
) -> dict[str, dict[str, Any]]:
    base = _from_url(admin_url)
    base["NAME"] = f"{base['NAME']}{name_suffix}"
    default = _from_url(app_url) if app_url else {**base, "USER": app_role, "PASSWORD": app_password}
    owner = _from_url(owner_url) if owner_url else {**base, "USER": owner_role, "PASSWORD": owner_password}
    # 0: under ASGI each request runs in its own thread, so a kept connection is never reused (Django's advice).
    default.update({"CONN_MAX_AGE": 0, "CONN_HEALTH_CHECKS": True})
    return {"default": default, "owner": owner}


def admin_conninfo(admin_url: str, *, dbname: str) -> dict[str, Any]:
    params = conninfo_to_dict(admin_url)
    params["dbname"] = dbname
    return params
