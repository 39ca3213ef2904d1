"""Collect the static files once per content: into .data/static/<hash of every source file>, then print the folder.

Used by the browser suite and `make screenshots`, whose servers serve the collected files the way production
does (NEXUS_COLLECTED_STATIC, whitenoise's CompressedManifestStaticFilesStorage: fingerprinted names, gzip and
brotli copies). Compressing takes a minute; an unchanged tree is reused at once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles.finders import get_finders
from django.core.management.base import BaseCommand


def sources_digest() -> str:
    digest = hashlib.sha256()
    files = sorted(
        (path, storage.path(path))
        for finder in get_finders()
        for path, storage in finder.list(ignore_patterns=["CVS", ".*", "*~"])
    )
    for path, source in files:
        digest.update(path.encode())
        digest.update(Path(source).read_bytes())
    return digest.hexdigest()[:16]


class Command(BaseCommand):
    help = "Collect and compress the static files into .data/static/<content hash> (reused) and print the folder."

    def handle(self, *args, **options):
        base = Path(settings.BASE_DIR) / ".data" / "static"
        target = base / sources_digest()
        if not (target / "staticfiles.json").exists():
            partial = target.with_name(target.name + f".partial-{os.getpid()}")
            env = {**os.environ, "NEXUS_COLLECTED_STATIC": str(partial)}
            subprocess.run(
                [sys.executable, "manage.py", "collectstatic", "--no-input", "-v", "0"],
                cwd=settings.BASE_DIR, env=env, check=True,
            )
            if (target / "staticfiles.json").exists():  # another process finished first
                shutil.rmtree(partial)
            else:
                shutil.rmtree(target, ignore_errors=True)
                partial.rename(target)
            for old in base.iterdir():  # keep only this tree (and others' work in progress)
                if old != target and ".partial-" not in old.name:
                    shutil.rmtree(old, ignore_errors=True)
        self.stdout.write(str(target))
