"""Property-based tests of every /api/v1 operation from the schema the app serves (issue 14).

schemathesis loads /api/schema/ from the app itself (in-process WSGI), generates requests from it and
sends them as a seeded trader with an API token. Every answer must: not be a 5xx, have a documented status
code and content type, and match the documented response schema. Operations added to the API are tested
here without any change. For operations with an id in the path, each generated request is also sent with
the id of one of the trader's own objects (SEEDED_IDS), so real answers are checked, not only 404s.
"""

from __future__ import annotations

from decimal import Decimal

import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation import GenerationMode

from tests.api.conftest import Trader

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Generated requests shared by all operations (positive, negative), so the run stays near a minute however
# many operations there are; each operation gets at least the floor.
TOTAL_EXAMPLES = {GenerationMode.POSITIVE: 160, GenerationMode.NEGATIVE: 64}
MIN_EXAMPLES = {GenerationMode.POSITIVE: 3, GenerationMode.NEGATIVE: 1}


def seeded_ids(trader: Trader) -> dict[str, dict[str, object]]:
    """Path prefix -> path parameters naming one of the trader's objects. Longest prefix wins."""
    bot, blocked = _bot_seed(trader)
    return {
        "/api/v1/portfolios/{id}/": {"id": trader.portfolio.pk},
        "/api/v1/trading/orders/{id}/": {"id": trader.order_id},
        "/api/v1/markets/instruments/{symbol}/": {"symbol": "BTC-USDT"},
        "/api/v1/trading/regimes/{symbol}/": {"symbol": "BTC-USDT"},
        "/api/v1/trading/connections/{id}/": {"id": trader.connection.pk},
        "/api/v1/trading/bots/{id}/": {"id": bot},
        "/api/v1/trading/blocked-executions/{id}/": {"id": blocked},
        "/api/v1/trading/tracker/{kind}/{key}/": {"kind": "bot", "key": str(bot)},
        "/api/v1/trading/tracker/replays/{id}/": {"id": _replay_seed(trader)},
        **_more_seed(trader),
        **_research_seed(trader),
    }


def _research_seed(trader: Trader) -> dict[str, dict[str, object]]:
    """A published research note of the trader; made again when an operation before deleted or
    unpublished it."""
    from core.rls import tenant
    from research.models import Note
    from research.services import NoteInput, note_create, note_publish

    with tenant(trader.user.pk):
        note = Note.objects.filter(published_at__isnull=False).first()
        if note is None:
            note = note_create(
                user=trader.user, data=NoteInput(title="Seeded note", body="**Support** held.", symbols=["BTC/USDT"])
            )
            note_publish(user=trader.user, note=note, audience="members")
    return {
        "/api/v1/research/notes/{note_id}/": {"note_id": note.pk},
        "/api/v1/research/published/{note_id}/": {"note_id": note.pk},
        "/api/v1/research/authors/{author_id}/": {"author_id": trader.user.pk},
    }


def _more_seed(trader: Trader) -> dict[str, dict[str, object]]:
    """An alert that fired, a watchlist with BTC/USDT, a notification, an invoice, a companion conversation,
    a transaction and a draft newsletter issue of the trader; each made again when an operation before
    deleted it (or sent the issue)."""
    from alerts.models import Alert
    from billing.models import Invoice
    from bot.models import Conversation
    from core.models import Notification
    from core.rls import tenant
    from marketdata.selectors import instrument_get
    from newsletter.models import Issue
    from portfolios.models import Watchlist
    from portfolios.selectors import transaction_list
    from tests.factories import (
        AlertFactory,
        AlertFiringFactory,
        InvoiceFactory,
        IssueFactory,
        NotificationFactory,
        WatchlistFactory,
        WatchlistItemFactory,
    )
    from tests.factories.bot import MessageFactory

    user = trader.user
    btc = instrument_get(symbol="BTC/USDT")
    with tenant(user.pk):
        alert = Alert.objects.first()
        if alert is None:
            alert = AlertFactory(user=user, instrument=btc, threshold=Decimal("90000"))
            AlertFiringFactory(user=user, alert=alert)
        watchlist = Watchlist.objects.first()
        if watchlist is None:
            watchlist = WatchlistFactory(user=user)
        if not watchlist.items.exists():
            WatchlistItemFactory(user=user, watchlist=watchlist, instrument=btc)
        notification = Notification.objects.first() or NotificationFactory(user=user)
        invoice = Invoice.objects.first() or InvoiceFactory(user=user)
        conversation = Conversation.objects.first() or MessageFactory(user=user).conversation
        txn = transaction_list(portfolio=trader.portfolio).first()
        issue = Issue.objects.filter(status="draft").first() or IssueFactory(user=user)
    seeded = {
        "/api/v1/newsletter/issues/{issue_id}/": {"issue_id": issue.pk},
        "/api/v1/alerts/{alert_id}/": {"alert_id": alert.pk},
        "/api/v1/watchlists/{id}/": {"id": watchlist.pk},
        "/api/v1/watchlists/{id}/items/{instrument_id}/": {"id": watchlist.pk, "instrument_id": btc.pk},
        "/api/v1/notifications/{notification_id}/": {"notification_id": notification.pk},
        "/api/v1/billing/invoices/{invoice_id}/": {"invoice_id": invoice.pk},
        "/api/v1/companion/conversations/{conversation_id}/": {"conversation_id": conversation.pk},
    }
    seeded.update(_automation_seed(trader))
    if txn is not None:
        seeded["/api/v1/portfolios/{id}/transactions/{txn_id}/"] = {
            "id": trader.portfolio.pk,
            "txn_id": txn.pk,
        }
    return seeded


def _automation_seed(trader: Trader) -> dict[str, dict[str, object]]:
    """An automation rule of the trader with one run; made again when an operation before deleted it."""
    from automation.models import Rule, RuleRun
    from core.rls import tenant
    from tests.factories import RuleFactory, RuleRunFactory

    with tenant(trader.user.pk):
        rule = Rule.objects.first() or RuleFactory(user=trader.user)
        run = RuleRun.objects.first() or RuleRunFactory(user=trader.user, rule=rule)
    return {
        "/api/v1/automation/rules/{rule_id}/": {"rule_id": rule.pk},
        "/api/v1/automation/runs/{run_id}/": {"run_id": run.pk},
    }
def _replay_seed(trader: Trader) -> int:
    """A finished replay (simulation) of the trader with one simulated fill."""
    from core.rls import tenant
    from tests.factories import ReplayFillFactory
    from trading.models import ReplayRun

    with tenant(trader.user.pk):
        run = ReplayRun.objects.first()
    if run is None:
        run = ReplayFillFactory(user=trader.user).run
    return run.pk


def _bot_seed(trader: Trader) -> tuple[int, int]:
    """A bot of the trader with one blocked execution, and a regime reading of BTC/USDT; made again when an
    operation before (DELETE /bots/{id}/) removed them."""
    from core.rls import tenant
    from tests.factories import BlockedExecutionFactory, RegimeReadingFactory
    from trading.bots.services import bot_create
    from trading.models import BlockedExecution, Bot, RegimeReading

    with tenant(trader.user.pk):
        blocked = BlockedExecution.objects.select_related("bot").first()
        if blocked is not None:
            return blocked.bot_id, blocked.pk
        bot = bot_create(
            user=trader.user,
            name=f"Seeded {Bot.objects.count() + 1}",
            portfolio=trader.portfolio,
            connection=trader.connection,
            symbol="BTC/USDT",
            strategy="dca",
            params={"every": 60},
            allocation="100",
            max_position="1",
            daily_loss_limit="50",
        )
    blocked = BlockedExecutionFactory(user=trader.user, bot=bot)
    if not RegimeReading.objects.exists():
        RegimeReadingFactory(instrument=bot.instrument)
    return bot.pk, blocked.pk


def _seeded_parameters(path: str, trader: Trader) -> dict[str, object] | None:
    ids = seeded_ids(trader)
    matches = [prefix for prefix in ids if path.startswith(prefix)]
    return ids[max(matches, key=len)] if matches else None


def _exercise(operation, trader: Trader, mode: GenerationMode, *, examples: int, statuses: set[int]) -> None:
    headers = {"Authorization": f"Token {trader.token}"}
    own = _seeded_parameters(operation.path, trader)

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    def run(case):
        statuses.add(case.call_and_validate(headers=headers, checks=CHECKS).status_code)
        if own is not None:
            case.path_parameters = {**(case.path_parameters or {}), **own}
            statuses.add(case.call_and_validate(headers=headers, checks=CHECKS).status_code)

    run()


def test_every_operation_answers_as_documented(trader):
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
    operations = [result.ok() for result in schema.include(path_regex=r"^/api/v1/").get_all_operations()]
    assert len(operations) >= 13
    failures = []
    for operation in operations:
        statuses: set[int] = set()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            examples = max(MIN_EXAMPLES[mode], TOTAL_EXAMPLES[mode] // len(operations))
            try:
                _exercise(operation, trader, mode, examples=examples, statuses=statuses)
            except Unsatisfiable:
                # Negative mode for an operation with no input at all: there is nothing to get wrong.
                assert mode is GenerationMode.NEGATIVE, f"{operation.path}: no positive case generated"
            except Exception as error:  # noqa: BLE001 - every operation is tried; all failures are reported
                failures.append(f"{operation.method.upper()} {operation.path} ({mode}): {error}")
        # The token works and the seeded objects are found: reads of the trader's own data succeed.
        if operation.method.upper() == "GET" and 200 not in statuses:
            failures.append(f"GET {operation.path}: never answered 200 (statuses {sorted(statuses)})")
    assert not failures, "\n\n".join(failures)
