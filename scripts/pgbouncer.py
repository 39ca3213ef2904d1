"""A local PgBouncer in transaction mode in front of PostgreSQL, for `make run` and the tests.

Standard library only (scripts/nexus.py loads it before Django). `pgbouncer_binary()` finds Debian's
`pgbouncer` (apt-get install -y pgbouncer); `write_config()` writes pgbouncer.ini and userlist.txt into a
directory (`.data/pgbouncer` for `make run`); `start()` runs it in the foreground of a child process and
waits until it accepts connections. The runtime roles log in with the passwords Nexus has for them; roles
without a password (the embedded pgserver trusts local connections) are trusted by the pooler too, which
listens on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

CANDIDATES = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", "/usr/local/bin/pgbouncer")


def pgbouncer_binary() -> str | None:
    found = shutil.which("pgbouncer")
    if found:
        return found
    return next((path for path in CANDIDATES if os.access(path, os.X_OK)), None)


def pgbouncer_version(binary: str) -> tuple[int, int]:
    output = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout
    match = re.search(r"PgBouncer (\d+)\.(\d+)", output)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def supports_prepared_statements(binary: str) -> bool:
    """PgBouncer 1.21 tracks protocol-level prepared statements in transaction mode (max_prepared_statements)."""
    return pgbouncer_version(binary) >= (1, 21)


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def write_config(
    directory: Path,
    *,
    server_host: str,
    server_port: int | str,
    listen_port: int,
    roles: dict[str, str],
    listen_addr: str = "127.0.0.1",
    pool_size: int = 20,
    max_client_conn: int = 2000,
    prepared_statements: bool = False,
) -> Path:
    """pgbouncer.ini and userlist.txt in `directory`; returns the ini. Every database name is passed through
    to the same server (`* =`), so the test database works as well as the real one."""
    directory.mkdir(parents=True, exist_ok=True)
    userlist = directory / "userlist.txt"
    userlist.write_text("".join(f"{_quote(role)} {_quote(password)}\n" for role, password in sorted(roles.items())))
    userlist.chmod(0o600)
    trusted = any(not password for password in roles.values())
    server = f"host={server_host}" + (f" port={server_port}" if server_port else "")
    lines = [
        "[databases]",
        f"* = {server}",
        "",
        "[pgbouncer]",
        f"listen_addr = {listen_addr}",
        f"listen_port = {listen_port}",
        "unix_socket_dir =",
        # Trust only when a role has no password (the embedded server trusts local connections anyway;
        # the compose service always has passwords).
        f"auth_type = {'trust' if trusted else 'scram-sha-256'}",
        f"auth_file = {userlist}",
        "pool_mode = transaction",
        f"default_pool_size = {pool_size}",
        "min_pool_size = 0",
        "reserve_pool_size = 5",
        f"max_client_conn = {max_client_conn}",
        # psycopg sends none of these, but other clients (psql, drivers) do: harmless to ignore.
        "ignore_startup_parameters = extra_float_digits,options",
        "server_reset_query =",
        "server_check_query = select 1",
        "server_login_retry = 1",
        "query_wait_timeout = 30",
        "log_connections = 0",
        "log_disconnections = 0",
    ]
    if prepared_statements:
        lines.append("max_prepared_statements = 200")
    ini = directory / "pgbouncer.ini"
    ini.write_text("\n".join(lines) + "\n")
    return ini


def _server_socket_directory(ini: Path) -> Path | None:
    """The server's unix-socket directory when the pooler's [databases] line points at one (the embedded
    pgserver listens only there), else None (a TCP host)."""
    for line in ini.read_text().splitlines():
        match = re.match(r"\*\s*=\s*host=(\S+)", line)
        if match and match.group(1).startswith("/"):
            return Path(match.group(1))
    return None


def _run_as(ini: Path) -> list[str]:
    """PgBouncer refuses to run as root: as root, drop to a user who can reach the server and must read the
    files. A unix socket in a private directory (pgserver's data directory, mode 0700) is reachable by its
    owner only, so that owner; otherwise postgres (or nobody)."""
    if os.geteuid() != 0:
        return []
    socket_directory = _server_socket_directory(ini)
    if socket_directory is not None and socket_directory.exists():
        owner = socket_directory.stat().st_uid
        if owner != 0:
            return ["-u", pwd.getpwuid(owner).pw_name]
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        return ["-u", user]
    return []


def _make_readable(ini: Path, user: list[str]) -> None:
    if not user:
        return
    account = pwd.getpwnam(user[1])
    for path in (ini.parent, ini, ini.parent / "userlist.txt"):
        os.chown(path, account.pw_uid, account.pw_gid)


def accepting(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def start(binary: str, ini: Path, *, port: int, log: Path | None = None, timeout: float = 15.0) -> subprocess.Popen:
    """Run PgBouncer with `ini` (not daemonised: stopping the process stops it) and wait until it listens."""
    user = _run_as(ini)
    _make_readable(ini, user)
    output = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - the child keeps it
    process = subprocess.Popen([binary, *user, str(ini)], stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited with {process.returncode}" + (f"; see {log}" if log else ""))
        if accepting(port):
            return process
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"pgbouncer did not listen on port {port} within {timeout}s")


def stop(process: subprocess.Popen, timeout: float = 10.0) -> None:
    if process.poll() is None:
        process.terminate()  # SIGTERM: immediate shutdown
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


def main(argv: list[str] | None = None) -> None:
    """The compose service: pgbouncer.ini from the environment Nexus reads (DATABASE_URL's host and port,
    the DB_*_ROLE / DB_*_PASSWORD of the three runtime roles), then PgBouncer in the foreground."""
    import argparse
    from urllib.parse import urlsplit

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--listen-addr", default="0.0.0.0")  # noqa: S104 - a container's service port
    parser.add_argument("--port", type=int, default=6432)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/pgbouncer"))  # noqa: S108 - the container's own
    parser.add_argument("--pool-size", type=int, default=int(os.environ.get("PGBOUNCER_POOL_SIZE", "20")))
    args = parser.parse_args(argv)
    binary = pgbouncer_binary()
    if binary is None:
        raise SystemExit("pgbouncer is not installed")
    server = urlsplit(os.environ["DATABASE_URL"])
    roles = {
        os.environ.get(f"DB_{name}_ROLE", f"nexus_{name.lower()}"): os.environ.get(f"DB_{name}_PASSWORD", "")
        for name in ("APP", "SYSTEM", "AUTH")
    }
    ini = write_config(
        args.dir,
        server_host=server.hostname or "127.0.0.1",
        server_port=server.port or 5432,
        listen_port=args.port,
        listen_addr=args.listen_addr,
        roles=roles,
        pool_size=args.pool_size,
        prepared_statements=supports_prepared_statements(binary),
    )
    user = _run_as(ini)
    _make_readable(ini, user)
    os.execv(binary, [binary, *user, str(ini)])  # noqa: S606 - the pooler replaces this process


if __name__ == "__main__":
    main()
