from django.urls import path
from django.views.generic import RedirectView

from trading import tracker_views, views

app_name = "trading"

urlpatterns = [
    path("", views.trade_view, name="trade"),
    path("orders/", views.order_place_view, name="order_place"),
    path("orders/check/", views.order_check_view, name="order_check"),
    path("orders/history/", views.order_history_view, name="order_history"),
    path("orders/<uuid:pk>/cancel/", views.order_cancel_view, name="order_cancel"),
    path("connections/", views.connection_list_view, name="connections"),
    path("connections/<int:pk>/delete/", views.connection_delete_view, name="connection_delete"),
    path("bots/", views.bot_list_view, name="bots"),
    path("bots/<int:pk>/", views.bot_detail_view, name="bot_detail"),
    path("bots/<int:pk>/status/", views.bot_status_view, name="bot_status"),
    path("bots/<int:pk>/delete/", views.bot_delete_view, name="bot_delete"),
    path("blocked/", views.blocked_list_view, name="blocked"),
    path("tracker/", tracker_views.tracker_overview_view, name="tracker"),
    path("tracker/compare/", tracker_views.tracker_compare_view, name="tracker_compare"),
    path("tracker/gate/", tracker_views.tracker_gate_view, name="tracker_gate"),
    path("tracker/replays/", tracker_views.replay_list_view, name="replays"),
    path("tracker/replays/<int:pk>/", tracker_views.replay_detail_view, name="replay_detail"),
    path("tracker/replays/<int:pk>/delete/", tracker_views.replay_delete_view, name="replay_delete"),
    path("tracker/replays/bot/<int:pk>/", tracker_views.replay_bot_view, name="replay_bot"),
    path("tracker/<str:kind>/<str:key>/", tracker_views.tracker_detail_view, name="tracker_detail"),
    # The public /markets page shows each pair's regime too (trading registers it as a market annotation).
    path("markets/", RedirectView.as_view(pattern_name="markets", permanent=True), name="markets"),
]
