"""What a rule can be triggered by, check and do; the states of rules, runs and action results."""

from django.db import models


class TriggerKind(models.TextChoices):
    PRICE = "price", "Price crosses a level"
    PERCENT_MOVE = "percent_move", "Price moves by a percent"
    REGIME_CHANGE = "regime_change", "Regime changes on a pair"
    ALERT_FIRED = "alert_fired", "An alert fires"
    ORDER_FILLED = "order_filled", "An order is filled"
    BOT_BLOCKED = "bot_blocked", "A bot is blocked"
    SCHEDULE = "schedule", "On a schedule (cron)"
    WEBHOOK = "webhook", "Incoming webhook (TradingView)"


# Price and percent-move triggers are an alert the rule owns: the alerts evaluator finds them on each tick.
ALERT_BACKED_TRIGGERS = frozenset({TriggerKind.PRICE, TriggerKind.PERCENT_MOVE})


class PriceDirection(models.TextChoices):
    ABOVE = "above", "rises above"
    BELOW = "below", "falls below"
    CROSS = "cross", "crosses"


class ConditionKind(models.TextChoices):
    POSITION_SIZE = "position_size", "Position size"
    PORTFOLIO_VALUE = "portfolio_value", "Portfolio value"
    TIME_WINDOW = "time_window", "Time of day"
    REGIME = "regime", "Regime of a pair"


class Comparison(models.TextChoices):
    GT = ">", "is above"
    GTE = ">=", "is at least"
    LT = "<", "is below"
    LTE = "<=", "is at most"
    EQ = "==", "equals"


class ActionKind(models.TextChoices):
    NOTIFY = "notify", "Notify me"
    PLACE_ORDER = "place_order", "Place an order"
    PAUSE_BOT = "pause_bot", "Pause a bot"
    RESUME_BOT = "resume_bot", "Resume a bot"
    WATCHLIST_ADD = "watchlist_add", "Add to a watchlist"
    DISCORD_POST = "discord_post", "Post to a Discord channel"
    WEBHOOK_CALL = "webhook_call", "Call a webhook"


class RuleStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"


class RunStatus(models.TextChoices):
    PENDING = "pending", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CONDITIONS_NOT_MET = "conditions_not_met", "Conditions not met"
    SKIPPED = "skipped", "Skipped"
    DRY_RUN = "dry_run", "Dry run"


FINISHED_RUN_STATUSES = frozenset(
    {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CONDITIONS_NOT_MET, RunStatus.SKIPPED, RunStatus.DRY_RUN}
)
# Runs that count against a rule's runs-per-hour limit: the ones that got as far as their conditions (a rule in
# dry-run mode too; "test it" fires are left out by their event id).
COUNTED_RUN_STATUSES = frozenset(
    {RunStatus.PENDING, RunStatus.RUNNING, RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CONDITIONS_NOT_MET,
     RunStatus.DRY_RUN}
)


class ActionStatus(models.TextChoices):
    SENDING = "sending", "Sending"
    QUEUED = "queued", "Queued"
    SUCCEEDED = "succeeded", "Done"
    FAILED = "failed", "Failed"
    WOULD = "would", "Would run (dry run)"
    INTERRUPTED = "interrupted", "Interrupted (not repeated)"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


NOTIFICATION_KIND = "automation.rule"
NOTIFICATION_KIND_PAUSED = "automation.rule_paused"
NOTIFICATION_KINDS = {
    NOTIFICATION_KIND: "Automation rule notifications",
    NOTIFICATION_KIND_PAUSED: "Automation rule paused after failures",
}
