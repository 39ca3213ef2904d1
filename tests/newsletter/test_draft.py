"""The companion's draft of the week's issue: offline, composed from the tool results, every figure in
its prose found in those results (the companion's grounding rule); with a model, an ungrounded draft is
regenerated once, then replaced by the grounded offline one."""

from __future__ import annotations

from bot.companion import grounding
from bot.companion.providers.base import ProviderTurn
from newsletter import drafting
from newsletter.blocks import body_split
from newsletter.drafting import _prose, issue_draft_compose


def test_the_offline_draft_is_grounded_in_the_weeks_data(staff_author, market):
    draft = issue_draft_compose(user=staff_author)

    assert draft.source == "offline"
    assert "**BTC/USDT** moved +5.00% over the week, from 20,000.00 to 21,000.00." in draft.body
    assert "**ETH/USDT** moved −2.00% over the week, from 1,000.00 to 980.00." in draft.body
    assert "- BTC/USDT: Bullish" in draft.body
    allowed = grounding.grounded_numbers(tool_outputs=[r["result"] for r in draft.tool_results])
    assert grounding.numbers_in(_prose(draft.body))
    assert grounding.ungrounded(_prose(draft.body), allowed=allowed) == []
    assert [s.block.name for s in body_split(draft.body) if s.block] == ["market-summary", "movers", "chart"]


class InventingModel:
    """A model that states a figure no tool returned, twice."""

    local = False
    name = "inventing"

    def __init__(self) -> None:
        self.calls = 0

    def complete(self, *, messages, tools):
        self.calls += 1
        return ProviderTurn(text="## Week\n\nBTC/USDT rose 12.5% this week.", tool_calls=[], prompt_tokens=1,
                            completion_tokens=1)


def test_an_ungrounded_model_draft_is_replaced_by_the_grounded_one(staff_author, market, monkeypatch):
    model = InventingModel()
    monkeypatch.setattr(drafting, "provider_get", lambda: model)
    draft = issue_draft_compose(user=staff_author)
    assert model.calls == 2
    assert draft.source == "offline (the model's draft was not grounded)"
    assert "12.5" not in draft.body and "+5.00%" in draft.body
