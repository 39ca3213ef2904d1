"""The evaluator thread outlives a failure to close its database connection."""

import alerts.evaluator as evaluator_module
from alerts.evaluator import EvaluatorThread


def test_a_failed_connection_close_does_not_stop_evaluation(monkeypatch):
    processed = []

    class RecordingEvaluator:
        def process(self, ticks):
            processed.append(ticks)

    def failing_close():
        raise RuntimeError("database unreachable")

    monkeypatch.setattr(evaluator_module, "close_old_connections", failing_close)
    runner = EvaluatorThread()
    runner.evaluator = RecordingEvaluator()
    runner.submit(["first"])
    assert runner.wait_idle(timeout=5)
    runner.submit(["second"])
    assert runner.wait_idle(timeout=5)
    assert processed == [["first"], ["second"]]
