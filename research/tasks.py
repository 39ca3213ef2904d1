from celery import shared_task

from research.selectors import published_open_thesis_ids
from research.services import published_outcome_refresh


@shared_task(name="research.outcomes_refresh")
def outcomes_refresh_task() -> dict[str, int]:
    """Recompute every open published thesis from the stored candles (beat, every few minutes)."""
    counts: dict[str, int] = {}
    for published_id in published_open_thesis_ids():
        outcome = published_outcome_refresh(published_id=published_id)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts
