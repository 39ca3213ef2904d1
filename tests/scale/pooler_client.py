"""A client process for tests/scale/test_pooler.py: alternates between users through the pooler (the
settings' DATABASE_POOLER_URL) and reports every time it saw another tenant's setting or rows.

python -m tests.scale.pooler_client <user ids, comma-separated> <rounds>
"""

from __future__ import annotations

import json
import sys

import django


def main() -> None:
    users = [int(u) for u in sys.argv[1].split(",")]
    rounds = int(sys.argv[2])
    django.setup()
    from django.conf import settings
    from django.db import connection

    from core.rls import current_tenant_id, tenant
    from portfolios.models import Portfolio

    backends: set[int] = set()
    errors: list[str] = []
    for i in range(rounds):
        user_id = users[i % len(users)]
        with tenant(user_id):
            seen = current_tenant_id()
            names = sorted(Portfolio.objects.values_list("name", flat=True))
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                backends.add(cursor.fetchone()[0])
        if seen != user_id:
            errors.append(f"round {i}: acting as {seen}, wanted {user_id}")
        if names != [f"portfolio of {user_id}"]:
            errors.append(f"round {i}: user {user_id} saw {names}")
        # Between transactions (autocommit) the connection acts as nobody, whatever the other client did.
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('app.user_id', true), count(*) FROM portfolios_portfolio")
            leftover, visible = cursor.fetchone()
        if leftover or visible:
            errors.append(f"round {i}: outside a transaction app.user_id={leftover!r}, {visible} rows visible")
    print(json.dumps({
        "port": settings.DATABASES["default"]["PORT"],
        "backends": sorted(backends),
        "errors": errors[:20],
        "rounds": rounds,
    }))


if __name__ == "__main__":
    main()
