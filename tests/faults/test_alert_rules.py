"""The Prometheus alert rules (deploy/prometheus/alerts.yml) parse, are complete, and name only metrics the
code exports; the scrape-time gauges they rely on show what the shared state says."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY, generate_latest

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"
# PromQL words that look like metric names in an expression.
PROMQL = {
    "max", "min", "sum", "avg", "count", "by", "without", "rate", "increase", "deriv", "histogram_quantile",
    "or", "and", "unless", "on", "ignoring", "group_left", "group_right", "le", "bool", "offset",
}
NOT_EXPORTED_BY_US = {"up"}  # Prometheus's own, per scrape target


def exported_names() -> set[str]:
    """Every sample name the processes' registries can export (the feed's, the web's, django-prometheus's)."""
    from django_prometheus.middleware import Metrics

    import marketdata.metrics  # noqa: F401 - the feed's and the hub's metrics

    Metrics.get_instance()
    names = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(f"{family.name}_total")
        if family.type == "histogram":
            names.update(f"{family.name}_{suffix}" for suffix in ("bucket", "count", "sum"))
    return names


def metric_names(expr: str) -> set[str]:
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\([^()]*?\bby\b", "(", expr)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))
    grouped = set(re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr))
    labels = {label.strip() for group in grouped for label in group.split(",")}
    return {w for w in words if w not in PROMQL and w not in labels and not w.isdigit()}


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_every_rule_is_complete_and_names_exported_metrics(db):
    exported = exported_names()
    seen_alerts = set()
    for rule in rules():
        assert {"alert", "expr", "labels", "annotations"} <= set(rule), rule
        assert rule["labels"]["severity"] in {"page", "ticket"}
        assert rule["annotations"]["runbook"].startswith("docs/runbook.md#")
        assert rule["alert"] not in seen_alerts
        seen_alerts.add(rule["alert"])
        unknown = metric_names(rule["expr"]) - exported - NOT_EXPORTED_BY_US
        assert not unknown, f"{rule['alert']}: not exported by the code: {unknown}"
    # What the issue asks to be alerted on.
    assert {"MarketFeedSymbolStale", "CeleryQueueBacklog", "StripeWebhookBacklog", "VenueBreakerOpen",
            "HighErrorRate"} <= seen_alerts


def test_runbook_anchors_exist():
    runbook = (RULES.parents[2] / "docs" / "runbook.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in runbook.splitlines() if line.startswith("## ")
    }
    for rule in rules():
        assert rule["annotations"]["runbook"].split("#", 1)[1] in anchors, rule["alert"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_rules():
    subprocess.run(["promtool", "check", "rules", str(RULES)], check=True)


def test_the_gauges_show_the_breaker_and_the_webhook_backlog(db, settings):
    from django.utils import timezone

    from billing.models import WebhookEvent
    from core.rls import system_context
    from trading.exchanges.breaker import breaker_record_failure

    for _ in range(settings.TRADING_BREAKER_THRESHOLD):
        breaker_record_failure(venue="binance", http_status=503)
    with system_context(reason="tests: two Stripe events arrive, one is processed"):
        now = timezone.now()
        for n, processed in enumerate([None, now]):
            WebhookEvent.objects.create(
                stripe_id=f"evt_metrics_{n}", type="invoice.paid", event_created=now, payload={},
                received_at=now, processed_at=processed,
            )
    text = generate_latest(REGISTRY).decode()
    assert 'nexus_trading_breaker_open{venue="binance"} 1.0' in text
    assert 'nexus_trading_breaker_open{venue="kraken"} 0.0' in text
    assert "nexus_billing_webhook_backlog 1.0" in text
    assert re.search(r'nexus_celery_queue_length\{queue="[^"]+"\} \d', text)

