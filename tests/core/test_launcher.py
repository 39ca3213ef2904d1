"""scripts/nexus.py, behind `make run` and `make test`: what a fresh clone needs before the processes start."""

from __future__ import annotations

import importlib.util
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
