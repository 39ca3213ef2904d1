"""Create the roles, the database and the grants from the admin connection (DATABASE_URL). Idempotent.

Roles (docs/security.md):
- owner  (LOGIN, NOSUPERUSER, NOBYPASSRLS): owns the schema, runs migrations;
- app    (LOGIN, NOSUPERUSER, NOBYPASSRLS, owns nothing, member of no role): web, workers, consumers,
  the feed, the bot;
- system (LOGIN, BYPASSRLS, owns nothing): its own connection, entered only by core.rls.system_context();
- auth   (LOGIN, NOBYPASSRLS, owns nothing): its own connection, the identity tables only, entered only
  by core.rls.auth_context().
Attributes are re-asserted on every run and role memberships of the runtime roles revoked, so a role
someone widened by hand is narrowed again. Table grants come from core/tables.py (grants_apply), here and
after every migrate; no default privileges, so a new table is reachable by nobody until it is classified.
"""

from __future__ import annotations

import psycopg
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from psycopg import sql

from core.tables import grants_apply


def admin_conninfo(admin_url: str, *, dbname: str) -> dict:
    params = psycopg.conninfo.conninfo_to_dict(admin_url)
    params["dbname"] = dbname
    return params


class Command(BaseCommand):
    help = "Create or repair the PostgreSQL roles, database and grants Nexus needs (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--recreate", action="store_true", help="Drop and recreate the database first.")

    def handle(self, *args, recreate: bool = False, **options):
        database = settings.DATABASES["default"]["NAME"]
        roles = {
            settings.DB_OWNER_ROLE: ("owner", "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS"),
            settings.DB_APP_ROLE: ("default", "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOINHERIT"),
            settings.DB_SYSTEM_ROLE: ("system", "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE BYPASSRLS NOINHERIT"),
            settings.DB_AUTH_ROLE: ("auth", "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOINHERIT"),
        }
        try:
            maintenance = psycopg.connect(**admin_conninfo(settings.DATABASE_URL, dbname="postgres"), autocommit=True)
        except psycopg.OperationalError as exc:
            raise CommandError(f"Cannot reach PostgreSQL with DATABASE_URL: {exc}") from exc
        with maintenance:
            self._roles(maintenance, roles)
            exists = maintenance.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
            if exists and recreate:
                maintenance.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(database)))
                exists = None
            if not exists:
                maintenance.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(database), sql.Identifier(settings.DB_OWNER_ROLE)
                    )
                )
                self.stdout.write(f"created database {database}")
        with psycopg.connect(**admin_conninfo(settings.DATABASE_URL, dbname=database), autocommit=True) as conn:
            self._database_grants(conn, database=database)
        unclassified = grants_apply(connections["owner"])
        connections["owner"].close()
        if unclassified:
            self.stdout.write(self.style.WARNING(
                f"{len(unclassified)} table(s) not classified in core/tables.py (no runtime access): "
                + ", ".join(unclassified)
            ))
        self.stdout.write(self.style.SUCCESS(f"database {database} ready: owner {settings.DB_OWNER_ROLE}, "
                                             f"runtime {settings.DB_APP_ROLE}"))

    def _roles(self, conn, roles: dict[str, tuple[str, str]]) -> None:
        for role, (alias, attributes) in roles.items():
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
                conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
                self.stdout.write(f"created role {role}")
            conn.execute(sql.SQL("ALTER ROLE {} " + attributes).format(sql.Identifier(role)))
            password = settings.DATABASES[alias]["PASSWORD"]
            if password:
                conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
        runtime = [settings.DB_APP_ROLE, settings.DB_SYSTEM_ROLE, settings.DB_AUTH_ROLE]
        for role in runtime:
            # Role defaults, so they hold for connections made through PgBouncer too: the runtime's lock and
            # statement timeouts (a pooler passes no per-connection `options`; config/database.py), and UTC, so Django never
            # changes the time zone with a session-level SET (which transaction pooling would carry over to
            # other clients of the same server connection).
            defaults = (
                ("lock_timeout", settings.DB_LOCK_TIMEOUT),
                ("statement_timeout", settings.DB_STATEMENT_TIMEOUT),
                ("timezone", "UTC"),
            )
            for parameter, value in defaults:
                conn.execute(
                    sql.SQL("ALTER ROLE {} SET {} = {}").format(
                        sql.Identifier(role), sql.Identifier(parameter), sql.Literal(value)
                    )
                )
        memberships = conn.execute(
            """SELECT r.rolname, m.rolname FROM pg_auth_members am
                 JOIN pg_roles r ON r.oid = am.roleid JOIN pg_roles m ON m.oid = am.member
                WHERE m.rolname = ANY(%s)""",
            [runtime],
        ).fetchall()
        for granted, member in memberships:
            conn.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(granted), sql.Identifier(member)))
            self.stdout.write(f"revoked membership of {member} in {granted}")

    def _database_grants(self, conn, *, database: str) -> None:
        ident = sql.Identifier
        owner = settings.DB_OWNER_ROLE
        runtime = sql.SQL(", ").join(ident(r) for r in (settings.DB_APP_ROLE, settings.DB_SYSTEM_ROLE, settings.DB_AUTH_ROLE))
        statements = [
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(ident(database), ident(owner)),
            sql.SQL("ALTER SCHEMA public OWNER TO {}").format(ident(owner)),
            sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(ident(database)),
            sql.SQL("REVOKE ALL ON SCHEMA public FROM PUBLIC"),
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(ident(database), runtime),
            sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(runtime),
            # Earlier versions granted future tables to the runtime roles by default: no longer.
            sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public REVOKE ALL ON TABLES FROM {}").format(
                ident(owner), runtime
            ),
            sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public REVOKE ALL ON SEQUENCES FROM {}").format(
                ident(owner), runtime
            ),
            sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public REVOKE ALL ON FUNCTIONS FROM {}").format(
                ident(owner), runtime
            ),
        ]
        for statement in statements:
            conn.execute(statement)
