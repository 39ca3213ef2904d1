"""Loading the ASGI application leaves the main thread's context empty of asgiref Locals.

Every request's context is a copy of the main thread's, and asgiref walks a context's variables on each
hop between the event loop and a thread. Reversing a URL at import (automation.intake did, for its route)
fills one asgiref Local per URL resolver, about 120 here, in that context: every request then paid for
them (about 4 ms of CPU, 40 % of a /healthz under daphne)."""

from __future__ import annotations

import subprocess
import sys

from tests.scale.helpers import ROOT, child_env

PROBE = """
import contextvars
import config.asgi
from django.urls import clear_url_caches, reverse
locals_after_import = [v for v in contextvars.copy_context() if v.name == "asgiref.local"]
clear_url_caches()  # the control: the same reverse, on fresh resolvers, in this context fills them
reverse("automation:webhook", args=["TOKEN"])
locals_after_reverse = [v for v in contextvars.copy_context() if v.name == "asgiref.local"]
print(len(locals_after_import), len(locals_after_reverse))
"""


def test_loading_the_asgi_application_leaves_no_asgiref_locals_in_the_main_context():
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    after_import, after_reverse = (int(n) for n in done.stdout.split()[-2:])
    assert after_import == 0
    assert after_reverse > 50, "the control: a reverse() in the main context does fill them"
