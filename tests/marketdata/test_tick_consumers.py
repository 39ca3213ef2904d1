"""Tick consumers: every published batch reaches each consumer group, survives a consumer dying before it
acknowledged, waits for a consumer that is down, and the process stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

import marketdata.tick_consumers as tick_consumers_module
from marketdata.tick_consumers import TickConsumer, TickConsumerSpec, TickHandler
from marketdata.tickstream import stream_client, tick_stream_key
from marketdata.types import TickEvent
from tests.ticks import pending, publish

ROOT = Path(__file__).resolve().parents[2]
AT = datetime(2026, 3, 2, 9, 15, tzinfo=UTC)


def tick(symbol: str, price: str) -> TickEvent:
    return TickEvent(symbol=symbol, price=Decimal(price), previous_price=None, at=AT)


class Killed(BaseException):
    """The process dies here (SIGKILL, out of memory): nothing after it runs, nothing is acknowledged."""


class Recorder(TickHandler):
    def __init__(self) -> None:
        self.batches: list[list[tuple[str, str]]] = []
        self.die_on: str | None = None
        self.fail_once_on: str | None = None

    def handle(self, ticks: list[TickEvent]) -> None:
        prices = [str(t.price) for t in ticks]
        if self.die_on in prices:
            raise Killed
        if self.fail_once_on in prices:
            self.fail_once_on = None
            raise RuntimeError("the database is away")
        self.batches.append([(t.symbol, str(t.price)) for t in ticks])

    def prices(self) -> list[str]:
        return [price for batch in self.batches for _, price in batch]


def recorder(group: str = "test-recorder", *, consumer: str, latest_only=False, **kwargs) -> TickConsumer:
    spec = TickConsumerSpec(name=group, handler=Recorder, latest_only=latest_only, read_count=10)
    tick_consumer = TickConsumer(spec, consumer=consumer, **kwargs)
    tick_consumer.start()
    return tick_consumer


def test_each_consumer_group_gets_every_batch_once_in_order():
    revaluation, alerts = recorder("test-a", consumer="a-1"), recorder("test-b", consumer="b-1")
    publish([tick("BTC/USDT", "1"), tick("ETH/USDT", "10")], [tick("BTC/USDT", "2")], [tick("BTC/USDT", "3")])

    assert revaluation.run(max_entries=3, timeout=5) == 3
    assert alerts.run(max_entries=3, timeout=5) == 3
    assert revaluation.process(block_ms=0) == 0  # nothing twice
    for consumer in (revaluation, alerts):
        assert consumer.handler.prices() == ["1", "10", "2", "3"]
    assert [symbol for batch in alerts.handler.batches for symbol, _ in batch][:2] == ["BTC/USDT", "ETH/USDT"]
    assert pending("test-a") == pending("test-b") == 0


def test_a_consumer_that_dies_before_acknowledging_has_its_ticks_handled_by_the_next():
    first = recorder(consumer="host-100")
    publish([tick("BTC/USDT", "1")], [tick("BTC/USDT", "2")])
    first.handler.die_on = "2"
    with pytest.raises(Killed):
        first.process(block_ms=0)  # read both entries, died while handling them
    assert first.handler.batches == []
    assert pending("test-recorder") == 2
    publish([tick("BTC/USDT", "3")])

    # The restarted process is a new consumer; what the dead one held is claimed once idle long enough.
    second = recorder(consumer="host-101", claim_idle_ms=0)
    assert second.run(max_entries=3, timeout=5) == 3
    assert second.handler.prices() == ["1", "2", "3"]  # nothing lost, the claimed ones first
    assert pending("test-recorder") == 0


def test_entries_pending_on_a_live_consumer_are_not_claimed_before_they_are_idle():
    first = recorder(consumer="host-100")
    publish([tick("BTC/USDT", "1")])
    first.handler.die_on = "1"
    with pytest.raises(Killed):
        first.process(block_ms=0)
    second = recorder(consumer="host-101")  # the default: claimed after 30 s pending
    assert second.process(block_ms=0) == 0
    assert second.handler.batches == [] and pending("test-recorder") == 1


def test_ticks_published_while_the_consumer_was_down_are_handled_when_it_starts():
    recorder(consumer="host-100")  # ran once, then stopped: its group keeps its place in the stream
    publish([tick("BTC/USDT", "1")], [tick("BTC/USDT", "2")])
    restarted = recorder(consumer="host-101")
    assert restarted.run(max_entries=2, timeout=5) == 2
    assert restarted.handler.prices() == ["1", "2"]


def test_a_consumer_that_never_ran_starts_from_the_newest_entry():
    publish([tick("BTC/USDT", "1")])
    first_ever = recorder(consumer="host-100")
    publish([tick("BTC/USDT", "2")])
    assert first_ever.run(max_entries=1, timeout=5) == 1
    assert first_ever.process(block_ms=0) == 0
    assert first_ever.handler.prices() == ["2"]


def test_a_latest_only_consumer_skips_the_backlog_when_it_starts():
    recorder(consumer="host-100", latest_only=True)
    publish([tick("BTC/USDT", "1")], [tick("BTC/USDT", "2")])  # while it was down
    restarted = recorder(consumer="host-101", latest_only=True)
    assert restarted.process(block_ms=0) == 0
    publish([tick("BTC/USDT", "3")])
    assert restarted.run(max_entries=1, timeout=5) == 1
    assert restarted.handler.prices() == ["3"]


def test_a_failed_batch_is_handled_again_by_the_same_consumer_then_acknowledged():
    consumer = recorder(consumer="host-100")
    consumer.handler.fail_once_on = "1"
    publish([tick("BTC/USDT", "1")], [tick("BTC/USDT", "2")])
    assert consumer.process(block_ms=0) == 0
    assert (consumer.failures, pending("test-recorder")) == (1, 2)
    publish([tick("BTC/USDT", "3")])
    assert consumer.process(block_ms=0) == 2  # its own pending entries first
    assert consumer.process(block_ms=0) == 1
    assert consumer.handler.prices() == ["1", "2", "3"]
    assert (consumer.failures, pending("test-recorder")) == (0, 0)


def test_a_failed_connection_close_does_not_stop_the_consumer(monkeypatch):
    def failing_close():
        raise RuntimeError("database unreachable")

    monkeypatch.setattr(tick_consumers_module, "close_old_connections", failing_close)
    consumer = recorder(consumer="host-100")
    publish([tick("BTC/USDT", "1")])
    assert consumer.process(block_ms=0) == 1
    publish([tick("ETH/USDT", "2")])
    assert consumer.process(block_ms=0) == 1
    assert consumer.handler.batches == [[("BTC/USDT", "1")], [("ETH/USDT", "2")]]


def test_an_entry_the_feed_did_not_write_is_acknowledged_not_retried_forever():
    consumer = recorder(consumer="host-100")
    stream_client().xadd(tick_stream_key(), {"something": "else"})
    publish([tick("BTC/USDT", "1")])
    assert consumer.run(max_entries=2, timeout=5) == 2
    assert consumer.handler.prices() == ["1"]
    assert pending("test-recorder") == 0


def test_when_redis_lost_the_stream_the_group_starts_again_from_its_beginning():
    consumer = recorder(consumer="host-100")
    stream_client().delete(tick_stream_key())  # a Redis restarted without its data
    publish([tick("BTC/USDT", "1")])  # the feed's next publish creates the stream again
    assert consumer.run(max_entries=1, timeout=5) == 1
    assert consumer.handler.prices() == ["1"]


def _group(name: str) -> dict | None:
    groups = {g["name"].decode(): g for g in stream_client().xinfo_groups(tick_stream_key())}
    return groups.get(name)


def test_the_command_runs_a_registered_consumer_and_stops_cleanly_on_sigterm(db):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_tick_consumer", "revaluation", "--consumer", "command-test"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while not (stream_client().exists(tick_stream_key()) and _group("revaluation")):
            assert process.poll() is None, process.stdout.read().decode()
            assert time.monotonic() < deadline, "the consumer did not join its group"
            time.sleep(0.05)
        publish([tick("BTC/USDT", "1")])
        [(entry_id, _)] = stream_client().xrange(tick_stream_key())
        while not (_group("revaluation")["last-delivered-id"] == entry_id and pending("revaluation") == 0):
            assert process.poll() is None, process.stdout.read().decode()
            assert time.monotonic() < deadline, "the consumer did not handle the batch"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        output = process.stdout.read().decode()
        assert "tick_consumer.stopped" in output and "Traceback" not in output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
