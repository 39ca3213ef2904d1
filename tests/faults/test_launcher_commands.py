"""scripts/nexus.py's procfile_commands: the load test and the drills start the Procfile's own processes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _launcher():
    spec = importlib.util.spec_from_file_location("nexus_launcher_commands", ROOT / "scripts" / "nexus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_procfile_process_runs_from_this_interpreter_on_the_port_asked():
    launcher = _launcher()
    commands = launcher.procfile_commands(port=8123)
    assert list(commands) == launcher.procfile_processes()
    bin_dir = f"{Path(sys.executable).parent}/"
    assert all(".venv/bin/" not in command or command.startswith(bin_dir) for command in commands.values())
    assert "8123" in commands["web"] and "8000" not in commands["web"]
    assert "8000" in launcher.procfile_commands()["web"]
