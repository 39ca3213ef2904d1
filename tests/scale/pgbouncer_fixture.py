"""A real PgBouncer (transaction mode) in front of the test database, on a free port."""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings

from tests.scale.helpers import ROOT, free_port


def pgbouncer_module():
    spec = importlib.util.spec_from_file_location("nexus_pgbouncer", ROOT / "scripts" / "pgbouncer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def running_pgbouncer(*, pool_size: int) -> Iterator[tuple[int, object]]:
    """(port, process); stopped when the block ends."""
    pgbouncer = pgbouncer_module()
    binary = pgbouncer.pgbouncer_binary()
    if binary is None:
        pytest.skip("pgbouncer is not installed (apt-get install -y pgbouncer)")
    server = settings.DATABASES["default"]
    roles = {settings.DATABASES[alias]["USER"]: settings.DATABASES[alias]["PASSWORD"] for alias in ("default", "system", "auth")}
    port = free_port()
    directory = Path(tempfile.mkdtemp(prefix="nexus-pgbouncer-"))  # under /tmp: readable by the pooler's user
    ini = pgbouncer.write_config(
        directory, server_host=server["HOST"] or "127.0.0.1", server_port=server["PORT"] or 5432,
        listen_port=port, roles=roles, pool_size=pool_size,
    )
    process = pgbouncer.start(binary, ini, port=port, log=directory / "pgbouncer.log")
    try:
        yield port, process
    finally:
        pgbouncer.stop(process)
        shutil.rmtree(directory, ignore_errors=True)
