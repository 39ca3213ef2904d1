"""factory-boy factories for every model, one module per app, all importable from here.

Each writes where the product writes (tests/factories/base.py): tenant rows as their owner inside
`tenant(user.pk)`, shared reference rows and system-only rows inside `system_context(...)`, users on the
system connection. They build rows as stored; where derived state must follow (a portfolio's positions
and cash, an evaluator's index, a bot's book), go through the app's services instead.
"""

from tests.factories.accounts import (
    DEFAULT_PASSWORD,
    ApiTokenFactory,
    DiscordLinkCodeFactory,
    UserFactory,
    api_token_for,
)
from tests.factories.alerts import AlertFactory, AlertFiringFactory
from tests.factories.automation import RuleFactory, RuleRunFactory, RunActionFactory, WebhookDeliveryFactory
from tests.factories.billing import (
    AppliedEventFactory,
    CheckoutSessionFactory,
    InvoiceFactory,
    MeterReportFactory,
    StripePriceFactory,
    SubscriptionFactory,
    UsageRecordFactory,
    WebhookEventFactory,
)
from tests.factories.bot import ConversationFactory, MessageFactory, PendingActionFactory
from tests.factories.core import (
    AuditLogFactory,
    IdempotencyRecordFactory,
    NotificationDeliveryFactory,
    NotificationFactory,
    NotificationPreferenceFactory,
)
from tests.factories.marketdata import CandleFactory, InstrumentFactory, QuoteFactory, TickFactory
from tests.factories.newsletter import (
    ArchivedIssueFactory,
    DeliveryFactory,
    IssueFactory,
    PreferenceFactory,
    SuppressionFactory,
)
from tests.factories.portfolios import (
    CashBalanceFactory,
    LotFactory,
    PortfolioFactory,
    PositionFactory,
    SnapshotFactory,
    TransactionFactory,
    WatchlistFactory,
    WatchlistItemFactory,
)
from tests.factories.research import (
    NoteFactory,
    NoteInstrumentFactory,
    NoteRevisionFactory,
    PublishedNoteFactory,
    PublishedNoteSearchFactory,
)
from tests.factories.trading import (
    BlockedExecutionFactory,
    BotFactory,
    ExchangeConnectionFactory,
    ExecutionPlanFactory,
    FillFactory,
    OrderFactory,
    RegimeReadingFactory,
    ReplayFillFactory,
    ReplayRunFactory,
    SignalFactory,
)

__all__ = [
    "NoteFactory",
    "NoteInstrumentFactory",
    "NoteRevisionFactory",
    "PublishedNoteFactory",
    "PublishedNoteSearchFactory",
    "DEFAULT_PASSWORD",
    "ArchivedIssueFactory",
    "DeliveryFactory",
    "IssueFactory",
    "PreferenceFactory",
    "SuppressionFactory",
    "AlertFactory",
    "AlertFiringFactory",
    "ApiTokenFactory",
    "DiscordLinkCodeFactory",
    "AppliedEventFactory",
    "AuditLogFactory",
    "IdempotencyRecordFactory",
    "BlockedExecutionFactory",
    "BotFactory",
    "CandleFactory",
    "CashBalanceFactory",
    "CheckoutSessionFactory",
    "ConversationFactory",
    "ExchangeConnectionFactory",
    "ExecutionPlanFactory",
    "FillFactory",
    "InstrumentFactory",
    "InvoiceFactory",
    "LotFactory",
    "MessageFactory",
    "MeterReportFactory",
    "NotificationDeliveryFactory",
    "NotificationFactory",
    "NotificationPreferenceFactory",
    "OrderFactory",
    "PendingActionFactory",
    "PortfolioFactory",
    "PositionFactory",
    "QuoteFactory",
    "RegimeReadingFactory",
    "RuleFactory",
    "RuleRunFactory",
    "RunActionFactory",
    "ReplayFillFactory",
    "ReplayRunFactory",
    "SignalFactory",
    "SnapshotFactory",
    "StripePriceFactory",
    "SubscriptionFactory",
    "TickFactory",
    "TransactionFactory",
    "UsageRecordFactory",
    "UserFactory",
    "WatchlistFactory",
    "WatchlistItemFactory",
    "WebhookDeliveryFactory",
    "WebhookEventFactory",
    "api_token_for",
]
