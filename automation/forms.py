"""The rule form: trigger, conditions and actions in one plain form (works without JavaScript).

Field names follow the services' error fields ("trigger_price", "actions-0_quantity"), so a DomainError lands
under the field it names. Condition and action slots with no kind chosen are left out.
"""

from __future__ import annotations

import json

from django import forms

from alerts.choices import WINDOW_CHOICES
from alerts.selectors import alert_list
from automation.choices import ActionKind, Comparison, ConditionKind, PriceDirection, TriggerKind
from automation.models import Rule
from portfolios.selectors import portfolio_list, watchlist_list
from trading.bots.selectors import bot_list
from trading.choices import OrderType, Regime
from trading.connections.selectors import connection_list

CONDITION_SLOTS = 3
ACTION_SLOTS = 3
DAY_CHOICES = [(0, "Mon"), (1, "Tue"), (2, "Wed"), (3, "Thu"), (4, "Fri"), (5, "Sat"), (6, "Sun")]
BLANK = [("", "—")]


def _char(label: str, help_text: str = "", **kwargs) -> forms.CharField:
    return forms.CharField(label=label, required=False, help_text=help_text, **kwargs)


def _choice(label: str, choices, help_text: str = "") -> forms.ChoiceField:
    return forms.ChoiceField(label=label, required=False, choices=BLANK + list(choices), help_text=help_text)


class RuleForm(forms.Form):
    name = forms.CharField(max_length=100)
    trigger_kind = forms.ChoiceField(label="When", choices=TriggerKind.choices)
    dry_run = forms.BooleanField(label="Dry run: record what would happen, do nothing", required=False)
    max_runs_per_hour = forms.IntegerField(label="Runs per hour, at most", min_value=1, max_value=120, initial=10)
    daily_order_cap = _char("Daily order cap", "Most order value per UTC day, in the quote currency. Needed for orders.")

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        alerts = [(a.pk, str(a)) for a in alert_list(user=user)]
        bots = [(b.pk, b.name) for b in bot_list(user=user)]
        portfolios = [(p.pk, p.name) for p in portfolio_list(user=user)]
        connections = [(c.pk, c.label) for c in connection_list(user=user)]
        watchlists = [(w.pk, w.name) for w in watchlist_list(user=user)]
        fields = self.fields
        fields["trigger_symbol"] = _char("Market", "Price, percent-move and regime triggers; optional for fills.")
        fields["trigger_direction"] = _choice("Direction", PriceDirection.choices, "Price triggers.")
        fields["trigger_price"] = _char("Price level", "Price triggers.")
        fields["trigger_percent"] = _char("Move (%)", "Percent-move triggers, e.g. -5 for a 5% fall.")
        fields["trigger_window_minutes"] = _choice("Over", WINDOW_CHOICES, "Percent-move triggers.")
        fields["trigger_cooldown_minutes"] = _char("Minutes between triggers", "Price and percent-move triggers.")
        fields["trigger_regime"] = _choice("Becomes", Regime.choices, "Regime triggers (empty: any change).")
        fields["trigger_alert"] = _choice("Alert", alerts, "Alert triggers (empty: any of your alerts).")
        fields["trigger_bot"] = _choice("Bot", bots, "Bot-blocked triggers (empty: any bot).")
        fields["trigger_cron"] = _char("Cron expression", "Schedules, in your time zone: e.g. 0 9 * * 1-5.")
        fields["webhook_template"] = _char(
            "Webhook template", 'Webhooks: the JSON TradingView sends, e.g. {"ticker": "{{ticker}}"}.',
            widget=forms.Textarea(attrs={"rows": 4}),
        )
        for i in range(CONDITION_SLOTS):
            p = f"conditions-{i}_"
            fields[p + "kind"] = _choice(f"Condition {i + 1}", ConditionKind.choices)
            fields[p + "portfolio"] = _choice("Portfolio", portfolios, "Position size and portfolio value.")
            fields[p + "symbol"] = _char("Market", "Position size and regime.")
            fields[p + "op"] = _choice("Comparison", Comparison.choices)
            fields[p + "value"] = _char("Value")
            fields[p + "start"] = _char("From (HH:MM)", "Time of day, your time zone.")
            fields[p + "end"] = _char("Until (HH:MM)")
            fields[p + "days"] = forms.TypedMultipleChoiceField(
                label="Days", required=False, choices=DAY_CHOICES, coerce=int, widget=forms.CheckboxSelectMultiple
            )
            fields[p + "regime"] = _choice("Regime", Regime.choices)
        for i in range(ACTION_SLOTS):
            p = f"actions-{i}_"
            fields[p + "kind"] = _choice(f"Action {i + 1}", ActionKind.choices)
            fields[p + "message"] = _char("Message", "Notify, Discord and webhooks; may use {{variables}}.")
            fields[p + "connection"] = _choice("Exchange connection", connections, "Orders (paper or real).")
            fields[p + "portfolio"] = _choice("Portfolio", portfolios, "Orders.")
            fields[p + "symbol"] = _char("Market", "Orders and watchlists, e.g. BTC/USDT or {{ticker}}.")
            fields[p + "side"] = _char("Side", "buy, sell or {{strategy.order.action}}.")
            fields[p + "order_type"] = _choice("Order type", [(OrderType.MARKET, "Market"), (OrderType.LIMIT, "Limit")])
            fields[p + "quantity"] = _char("Quantity", "e.g. 0.01 or {{strategy.order.contracts}}.")
            fields[p + "price"] = _char("Limit price", "Limit orders.")
            fields[p + "bot"] = _choice("Bot", bots, "Pause or resume a bot.")
            fields[p + "watchlist"] = _choice("Watchlist", watchlists)
            fields[p + "channel_id"] = _char("Discord channel id")
            fields[p + "url"] = _char("Webhook URL", "Called with a signed POST.")

    @classmethod
    def for_rule(cls, rule: Rule, data=None, *, user) -> RuleForm:
        trigger = rule.trigger
        initial = {
            "name": rule.name, "trigger_kind": rule.trigger_kind, "dry_run": rule.dry_run,
            "max_runs_per_hour": rule.max_runs_per_hour, "daily_order_cap": rule.daily_order_cap or "",
            "trigger_symbol": trigger.get("symbol", ""), "trigger_direction": trigger.get("direction", ""),
            "trigger_price": trigger.get("price", ""), "trigger_percent": trigger.get("percent", ""),
            "trigger_window_minutes": trigger.get("window_minutes", ""),
            "trigger_cooldown_minutes": trigger.get("cooldown_minutes", ""),
            "trigger_regime": trigger.get("regime", ""), "trigger_alert": trigger.get("alert_id") or "",
            "trigger_bot": trigger.get("bot_id") or "", "trigger_cron": trigger.get("cron", ""),
            "webhook_template": json.dumps(trigger["template"], indent=2) if "template" in trigger else "",
        }
        for i, condition in enumerate(rule.conditions[:CONDITION_SLOTS]):
            p = f"conditions-{i}_"
            initial.update({p + "kind": condition["kind"], p + "portfolio": condition.get("portfolio_id", ""),
                            p + "symbol": condition.get("symbol", ""), p + "op": condition.get("op", ""),
                            p + "value": condition.get("value", ""), p + "start": condition.get("start", ""),
                            p + "end": condition.get("end", ""), p + "days": condition.get("days", []),
                            p + "regime": condition.get("regime", "")})
        for i, action in enumerate(rule.actions[:ACTION_SLOTS]):
            p = f"actions-{i}_"
            initial.update({p + "kind": action["kind"], p + "message": action.get("message", ""),
                            p + "connection": action.get("connection_id", ""), p + "portfolio": action.get("portfolio_id", ""),
                            p + "symbol": action.get("symbol", ""), p + "side": action.get("side", ""),
                            p + "order_type": action.get("order_type", ""), p + "quantity": action.get("quantity", ""),
                            p + "price": action.get("price", ""), p + "bot": action.get("bot_id", ""),
                            p + "watchlist": action.get("watchlist_id", ""), p + "channel_id": action.get("channel_id", ""),
                            p + "url": action.get("url", "")})
        return cls(data, initial=initial, user=user)

    # --- layout helpers for the template ---------------------------------------------------------------

    def general_fields(self):
        return [self[name] for name in ("name", "trigger_kind")]

    def trigger_fields(self):
        return [self[name] for name in self.fields if name.startswith(("trigger_", "webhook_")) and name != "trigger_kind"]

    def limit_fields(self):
        return [self[name] for name in ("dry_run", "max_runs_per_hour", "daily_order_cap")]

    def condition_slots(self):
        return [[self[n] for n in self.fields if n.startswith(f"conditions-{i}_")] for i in range(CONDITION_SLOTS)]

    def action_slots(self):
        return [[self[n] for n in self.fields if n.startswith(f"actions-{i}_")] for i in range(ACTION_SLOTS)]

    # --- to the services -------------------------------------------------------------------------------

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        trigger = {
            "symbol": data["trigger_symbol"], "direction": data["trigger_direction"], "price": data["trigger_price"],
            "percent": data["trigger_percent"], "window_minutes": data["trigger_window_minutes"],
            "cooldown_minutes": data["trigger_cooldown_minutes"], "regime": data["trigger_regime"],
            "alert_id": data["trigger_alert"] or None, "bot_id": data["trigger_bot"] or None,
            "cron": data["trigger_cron"], "template": data["webhook_template"],
        }
        conditions = []
        for i in range(CONDITION_SLOTS):
            p = f"conditions-{i}_"
            if data[p + "kind"]:
                conditions.append({"kind": data[p + "kind"], "portfolio_id": data[p + "portfolio"] or None,
                                   "symbol": data[p + "symbol"], "op": data[p + "op"], "value": data[p + "value"],
                                   "start": data[p + "start"], "end": data[p + "end"], "days": data[p + "days"],
                                   "regime": data[p + "regime"]})
        actions = []
        for i in range(ACTION_SLOTS):
            p = f"actions-{i}_"
            if data[p + "kind"]:
                actions.append({"kind": data[p + "kind"], "message": data[p + "message"],
                                "connection_id": data[p + "connection"] or None,
                                "portfolio_id": data[p + "portfolio"] or None, "symbol": data[p + "symbol"],
                                "side": data[p + "side"], "order_type": data[p + "order_type"],
                                "quantity": data[p + "quantity"], "price": data[p + "price"],
                                "bot_id": data[p + "bot"] or None, "watchlist_id": data[p + "watchlist"] or None,
                                "channel_id": data[p + "channel_id"], "url": data[p + "url"]})
        return {
            "name": data["name"], "trigger_kind": data["trigger_kind"], "trigger": trigger,
            "conditions": conditions, "actions": actions, "dry_run": data["dry_run"],
            "max_runs_per_hour": data["max_runs_per_hour"], "daily_order_cap": data["daily_order_cap"] or None,
        }


class TestFireForm(forms.Form):
    sample = forms.CharField(
        label="Sample webhook body (JSON)", required=False, widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Webhook rules: a body as the sender would post it. Empty: a made-up sample event.",
    )

    def sample_event(self) -> dict | None:
        text = self.cleaned_data["sample"].strip()
        if not text:
            return None
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"That is not valid JSON ({exc}).") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("The sample is a JSON object.")
        return value
