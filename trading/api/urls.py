from django.urls import path

from trading.api import tracker, views

urlpatterns = [
    path("orders/", views.OrderListApi.as_view(), name="api_orders"),
    path("orders/check/", views.OrderCheckApi.as_view(), name="api_order_check"),
    path("orders/<uuid:pk>/", views.OrderDetailApi.as_view(), name="api_order"),
    path("orders/<uuid:pk>/cancel/", views.OrderCancelApi.as_view(), name="api_order_cancel"),
    path("orders/<uuid:pk>/fills/", views.OrderFillsApi.as_view(), name="api_order_fills"),
    path("connections/", views.ConnectionListApi.as_view(), name="api_connections"),
    path("connections/<int:pk>/", views.ConnectionDetailApi.as_view(), name="api_connection"),
    path("strategies/", views.StrategyListApi.as_view(), name="api_strategies"),
    path("bots/", views.BotListApi.as_view(), name="api_bots"),
    path("bots/<int:pk>/", views.BotDetailApi.as_view(), name="api_bot"),
    path("bots/<int:pk>/pause/", views.BotPauseApi.as_view(), name="api_bot_pause"),
    path("bots/<int:pk>/resume/", views.BotResumeApi.as_view(), name="api_bot_resume"),
    path("bots/<int:pk>/orders/", views.BotOrdersApi.as_view(), name="api_bot_orders"),
    path("bots/<int:pk>/plans/", views.BotPlansApi.as_view(), name="api_bot_plans"),
    path(
        "bots/<int:pk>/blocked-executions/", views.BotBlockedExecutionsApi.as_view(), name="api_bot_blocked"
    ),
    path("blocked-executions/", views.BlockedExecutionListApi.as_view(), name="api_blocked_executions"),
    path(
        "blocked-executions/<int:pk>/",
        views.BlockedExecutionDetailApi.as_view(),
        name="api_blocked_execution",
    ),
    path("regimes/", views.RegimeLatestListApi.as_view(), name="api_regimes"),
    path("regimes/<str:symbol>/", views.RegimeLatestApi.as_view(), name="api_regime"),
    path("regimes/<str:symbol>/history/", views.RegimeHistoryApi.as_view(), name="api_regime_history"),
    path("tracker/", tracker.SubjectListApi.as_view(), name="api_tracker"),
    path("tracker/gate/", tracker.GateApi.as_view(), name="api_tracker_gate"),
    path("tracker/replays/", tracker.ReplayListApi.as_view(), name="api_tracker_replays"),
    path("tracker/replays/<int:pk>/", tracker.ReplayDetailApi.as_view(), name="api_tracker_replay"),
    path("tracker/<str:kind>/<str:key>/stats/", tracker.StatsApi.as_view(), name="api_tracker_stats"),
    path("tracker/<str:kind>/<str:key>/journal/", tracker.JournalApi.as_view(), name="api_tracker_journal"),
]
