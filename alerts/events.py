"""Events alerts send so apps above them (automation) can react without alerts knowing them.

- `alert_fired(firing)`: an alert went off; `firing` is a dict with firing_id, alert_id, user_id, kind,
  symbol ("" for alerts without an instrument), value, previous_value (Decimal or None) and message.
  Sent after the firing's transaction commits, once per firing (the firing is unique per occurrence).
"""

from django.dispatch import Signal

alert_fired = Signal()
