"""Events trading sends so other apps (alerts, automation) can react without trading knowing them.

- `orders_filled(fills)`: orders became fully filled; `fills` is a list of dicts with order_id, user_id,
  symbol, side, quantity and price (one per order; a fan-out chunk sends all of its orders at once).
- `executions_blocked(blocks)`: the regime gatekeeper stopped bots' executions; `blocks` is a list of
  dicts with blocked_id, user_id, bot_id, signal_id, regime and reason (one per bot).
- `venue_degraded(venue, retry_after_seconds)`: a venue's circuit breaker opened.
- `regime_changed(symbol, previous, regime, reading_id, as_of)`: the gatekeeper classified a pair
  differently from its previous reading (market-wide, no user).

All are sent after the writing transaction commits.
"""

from django.dispatch import Signal

orders_filled = Signal()
executions_blocked = Signal()
venue_degraded = Signal()
regime_changed = Signal()
