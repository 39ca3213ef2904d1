"""dj-stripe is configured through its supported hooks: `manage.py check` (and so every command) is quiet."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_manage_py_check_reports_nothing_about_dj_stripe():
    out, err = StringIO(), StringIO()
    call_command("check", stdout=out, stderr=err)
    assert "djstripe" not in (out.getvalue() + err.getvalue()).lower()
    assert "deprecated" not in (out.getvalue() + err.getvalue()).lower()
