"""The question set (tests/bot/question_set.py) against the offline provider on seeded data: all must pass.

With COMPANION_QUESTION_SET_PROVIDER=openai (`python -m tests.bot.question_set --provider openai`) the
configured OpenAI-compatible server answers instead, and the count is reported rather than required.
"""

from __future__ import annotations

import os

from django.test import override_settings

from billing.choices import PlanCode
from tests.bot import question_set
from tests.factories import SubscriptionFactory


def test_the_question_set_passes_on_seeded_data(seeded_a, user_a):
    assert len(question_set.QUESTIONS) >= 50
    SubscriptionFactory(user=user_a, plan=PlanCode.ENTERPRISE)  # unlimited AI queries for the whole set
    provider = os.environ.get(question_set.PROVIDER_ENV, "offline")
    if provider == "offline":
        with override_settings(OPENAI_API_KEY=""):
            outcomes = question_set.run(user=user_a, portfolio=seeded_a.portfolio)
    else:
        outcomes = question_set.run(user=user_a, portfolio=seeded_a.portfolio)
    print("\n" + question_set.report(outcomes))
    if provider == "offline":
        assert all(o.passed for o in outcomes), question_set.report(outcomes)
