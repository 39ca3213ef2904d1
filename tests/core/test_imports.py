"""The layers of STYLE.md ("Which app may import which") and no import cycles, checked with every test run.

`make lint` runs the same two checks (`lint-imports`, `scripts/import_cycles.py`); here a broken contract or
a cycle fails the suite with the report that says which import to remove.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _cycle_checker():
    spec = importlib.util.spec_from_file_location("import_cycles", ROOT / "scripts" / "import_cycles.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


# import-linter in an interpreter of its own: once Django and Twisted are loaded, zope.interface's class
# declarations make import-linter's contract classes unreadable to it (AttributeError: __provides__).
LINT = (
    "import sys; from importlinter import configuration; from importlinter.application import use_cases; "
    "configuration.configure(); "
    "sys.exit(0 if use_cases.lint_imports(config_filename='pyproject.toml', cache_dir=None, no_logo=True) else 1)"
)


def test_the_import_contracts_in_pyproject_hold():
    result = subprocess.run([sys.executable, "-c", LINT], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_module_of_the_project_is_part_of_an_import_cycle():
    checker = _cycle_checker()
    cycles = checker.import_cycles()
    assert not cycles, "Import cycles (function-level imports count too):\n" + checker.report(cycles)


def test_the_cycle_check_sees_imports_inside_functions(tmp_path):
    """The check would be worthless if it missed the import a function hides, or counted one that never runs."""
    package = tmp_path / "app"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "services.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from app.views import render\n"
        "def place():\n    from app.tasks import submit\n    submit()\n"
    )
    (package / "tasks.py").write_text("from app import services\n\ndef submit():\n    services.place()\n")
    (package / "views.py").write_text("from app.services import place\n\ndef render():\n    place()\n")
    checker = _cycle_checker()
    [cycle] = checker.import_cycles(tmp_path, ("app",))
    assert cycle.modules == ["app.services", "app.tasks"]
    assert any(edge.function_level and edge.source == "app.services" for edge in cycle.example)
