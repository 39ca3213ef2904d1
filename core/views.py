"""Health probes, and the notification centre (/notifications/) every app's notifications reach."""

from __future__ import annotations

import redis
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from core.heartbeats import discord_bot_status
from core.notifications import (
    channel_list,
    kind_list,
    notification_list,
    notification_mark_read,
    notification_preference_set,
    notification_preferences,
    notification_unread_count,
)

NOTIFICATIONS_SHOWN = 100


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and answering. No dependencies are checked: that is /readyz."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready for traffic: database reachable, Redis reachable, every migration applied. Also reports the
    Discord bot's heartbeat, which does not decide readiness."""
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
        checks["database"] = "ok"
        checks["migrations"] = "ok" if not pending else f"{len(pending)} pending"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready, reported to the probe
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1).ping()
        checks["redis"] = "ok"
    except redis.RedisError as exc:
        checks["redis"] = f"error: {exc.__class__.__name__}"
    ready = all(value == "ok" for value in checks.values()) and "migrations" in checks
    # Reported, not required: the web serves traffic whether or not the Discord bot runs ("off" without a
    # token, "stale" when its heartbeat is older than 45 s; docs/companion.md).
    checks["discord_bot"] = discord_bot_status()
    response = JsonResponse({"status": "ready" if ready else "not ready", "checks": checks}, status=200 if ready else 503)
    if not ready:  # as every 503 of an outage says when to try again
        response["Retry-After"] = str(settings.DB_UNAVAILABLE_RETRY_AFTER)
    return response


# --- Notification centre --------------------------------------------------------------------------------


@login_required
def notification_list_view(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "core/notification_list.html",
        {
            "notifications": notification_list(user=request.user)[:NOTIFICATIONS_SHOWN],
            "unread": notification_unread_count(user=request.user),
        },
    )


@login_required
@require_POST
def notification_read_view(request: HttpRequest, notification_id: int | None = None) -> HttpResponse:
    notification_mark_read(user=request.user, notification_id=notification_id)
    return redirect("notification_list")


@login_required
def notification_preferences_view(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        chosen = set(request.POST.getlist("on"))
        for row in notification_preferences(user=request.user):
            for channel, enabled in row.channels:
                wanted = f"{row.kind.name}:{channel.name}" in chosen
                if wanted != enabled:
                    notification_preference_set(
                        user=request.user, kind=row.kind.name, channel=channel.name, enabled=wanted
                    )
        messages.success(request, "Notification settings saved.")
        return redirect("notification_preferences")
    return render(
        request,
        "core/notification_preferences.html",
        {
            "rows": notification_preferences(user=request.user),
            "channels": [c for c in channel_list() if c.available(request.user)],
            "kinds": kind_list(),
        },
    )
