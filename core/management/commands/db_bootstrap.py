"""Create the roles, the database and the grants from the admin connection (DATABASE_URL). Idempotent.

Roles:
- owner  (LOGIN, NOSUPERUSER, NOBYPASSRLS): owns the schema, runs migrations;
- app    (LOGIN, NOSUPERUSER, NOBYPASSRLS, owns nothing): web, workers, consumers, the bot;
- system (NOLOGIN, BYPASSRLS): only reachable by the app role through `SET LOCAL ROLE` in
  core.rls.system_context(), the one reviewed path for cross-tenant work.
Attributes are re-asserted on every run, so a role someone widened by hand is narrowed again.
"""

from __future__ import annotations

import psycopg
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from psycopg import sql

from config.database import admin_conninfo


class Command(BaseCommand):
    help = "Create or repair the PostgreSQL roles, database and grants Nexus needs (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--recreate", action="store_true", help="Drop and recreate the database first.")
        parser.add_argument(
            "--test-grants",
            action="store_true",
            help="Also grant TRUNCATE to the app role, which the test suite's flush between tests needs. "
            "Never in production: TRUNCATE ignores row-level security.",
        )

    def handle(self, *args, recreate: bool = False, test_grants: bool = False, **options):
        database = settings.DATABASES["default"]["NAME"]
        owner, app, system = settings.DB_OWNER_ROLE, settings.DB_APP_ROLE, settings.DB_SYSTEM_ROLE
        passwords = {
            owner: settings.DATABASES["owner"]["PASSWORD"] or None,
            app: settings.DATABASES["default"]["PASSWORD"] or None,
        }
        try:
            maintenance = psycopg.connect(**admin_conninfo(settings.DATABASE_URL, dbname="postgres"), autocommit=True)
        except psycopg.OperationalError as exc:
            raise CommandError(f"Cannot reach PostgreSQL with DATABASE_URL: {exc}") from exc
        with maintenance:
            self._roles(maintenance, owner=owner, app=app, system=system, passwords=passwords)
            exists = maintenance.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
            if exists and recreate:
                maintenance.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(database)))
                exists = None
            if not exists:
                maintenance.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(owner))
                )
                self.stdout.write(f"created database {database}")
        with psycopg.connect(**admin_conninfo(settings.DATABASE_URL, dbname=database), autocommit=True) as conn:
            self._grants(conn, database=database, owner=owner, app=app, system=system, test_grants=test_grants)
        self.stdout.write(self.style.SUCCESS(f"database {database} ready: owner {owner}, runtime {app}"))

    def _roles(self, conn, *, owner: str, app: str, system: str, passwords: dict) -> None:
        wanted = {
            owner: "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS",
            app: "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOINHERIT",
            system: "NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE BYPASSRLS",
        }
        for role, attributes in wanted.items():
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
                conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
                self.stdout.write(f"created role {role}")
            conn.execute(sql.SQL("ALTER ROLE {} " + attributes).format(sql.Identifier(role)))
            if passwords.get(role):
                conn.execute(
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(passwords[role]))
                )
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(system), sql.Identifier(app)))

    def _grants(self, conn, *, database: str, owner: str, app: str, system: str, test_grants: bool) -> None:
        ident = sql.Identifier
        statements = [
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(ident(database), ident(owner)),
            sql.SQL("ALTER SCHEMA public OWNER TO {}").format(ident(owner)),
            sql.SQL("REVOKE CREATE ON SCHEMA public FROM PUBLIC"),
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(ident(database), ident(app)),
            sql.SQL("GRANT USAGE ON SCHEMA public TO {}, {}").format(ident(app), ident(system)),
            sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}, {}").format(
                ident(app), ident(system)
            ),
            sql.SQL("GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {}, {}").format(
                ident(app), ident(system)
            ),
            sql.SQL(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public "
                "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {}, {}"
            ).format(ident(owner), ident(app), ident(system)),
            sql.SQL(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {}, {}"
            ).format(ident(owner), ident(app), ident(system)),
            sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public GRANT EXECUTE ON FUNCTIONS TO {}, {}").format(
                ident(owner), ident(app), ident(system)
            ),
        ]
        if test_grants:
            statements += [
                sql.SQL("GRANT TRUNCATE ON ALL TABLES IN SCHEMA public TO {}").format(ident(app)),
                sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public GRANT TRUNCATE ON TABLES TO {}").format(
                    ident(owner), ident(app)
                ),
            ]
        for statement in statements:
            conn.execute(statement)
