"""REST API for the notification centre (under /api/v1/notifications/): list, mark read (one or all),
preferences (read and change). The same functions as /notifications/ (core/notifications.py).

core.api stays the shared API machinery; this module holds core's own operations and their URLs.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import exceptions, generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ETagMixin, StrictCharField
from core.models import Notification
from core.notifications import (
    notification_list,
    notification_mark_read,
    notification_preference_set,
    notification_preferences,
    notification_unread_count,
)
from core.rls import tenant


class NotificationOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField(help_text="Dotted kind, e.g. alert.price or trading.order_filled.")
    message = serializers.CharField()
    link = serializers.CharField(help_text="A page of the web app about it (a path), or empty.")
    created_at = serializers.DateTimeField()
    read_at = serializers.DateTimeField(allow_null=True)


class NotificationFilter(serializers.Serializer):
    unread = serializers.BooleanField(required=False, allow_null=True, default=None, help_text="Only unread.")


class ReadOutput(serializers.Serializer):
    marked = serializers.IntegerField(help_text="How many notifications this marked read.")
    unread = serializers.IntegerField(help_text="Unread notifications left.")


class PreferenceChannelOutput(serializers.Serializer):
    channel = serializers.CharField()
    label = serializers.CharField()
    enabled = serializers.BooleanField()


class PreferenceOutput(serializers.Serializer):
    kind = serializers.CharField()
    label = serializers.CharField()
    channels = PreferenceChannelOutput(many=True)


class PreferenceChange(serializers.Serializer):
    kind = StrictCharField(max_length=64)
    channel = StrictCharField(max_length=32)
    enabled = serializers.BooleanField()


class PreferencesInput(serializers.Serializer):
    preferences = PreferenceChange(many=True, allow_empty=False, max_length=200)


def _preferences_data(user) -> list[dict]:
    return PreferenceOutput(
        [
            {
                "kind": row.kind.name,
                "label": row.kind.label,
                "channels": [
                    {"channel": channel.name, "label": channel.label, "enabled": enabled}
                    for channel, enabled in row.channels
                ],
            }
            for row in notification_preferences(user=user)
        ],
        many=True,
    ).data


class NotificationListApi(generics.ListAPIView):
    serializer_class = NotificationOutput
    ordering = ("-id",)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator's call
            return Notification.objects.none()
        filters = NotificationFilter(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        notifications = notification_list(user=self.request.user)
        unread = filters.validated_data.get("unread")
        if unread is not None:
            notifications = notifications.filter(read_at__isnull=unread)
        return notifications

    @extend_schema(summary="List notifications (newest first)", parameters=[NotificationFilter])
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


class NotificationReadAllApi(APIView):
    # Marking notifications read changes nothing a trade scope protects.
    required_scopes = {"POST": "read"}

    serializer_class = ReadOutput

    @extend_schema(
        operation_id="notifications_read_all",
        summary="Mark every notification read",
        request=None,
        responses={200: ReadOutput},
    )
    def post(self, request: Request) -> Response:
        marked = notification_mark_read(user=request.user)
        return Response(
            ReadOutput({"marked": marked, "unread": notification_unread_count(user=request.user)}).data
        )


class NotificationReadApi(APIView):
    required_scopes = {"POST": "read"}

    serializer_class = ReadOutput

    @extend_schema(
        summary="Mark one notification read",
        description="Marking one already read changes nothing (`marked` is 0).",
        request=None,
        responses={200: ReadOutput},
    )
    def post(self, request: Request, notification_id: int) -> Response:
        if not notification_list(user=request.user).filter(pk=notification_id).exists():
            raise exceptions.NotFound("No such notification.")
        marked = notification_mark_read(user=request.user, notification_id=notification_id)
        return Response(
            ReadOutput({"marked": marked, "unread": notification_unread_count(user=request.user)}).data
        )


class NotificationPreferencesApi(ETagMixin, APIView):
    serializer_class = PreferenceOutput

    @extend_schema(
        summary="Notification preferences",
        description="Every kind of notification with, per channel you can use, whether you get it.",
        responses={200: PreferenceOutput(many=True)},
    )
    def get(self, request: Request) -> Response:
        return Response(_preferences_data(request.user))

    @extend_schema(
        summary="Change notification preferences",
        description="Only the (kind, channel) pairs sent change, all or none. Returns every preference.",
        request=PreferencesInput,
        responses={200: PreferenceOutput(many=True)},
        examples=[
            OpenApiExample(
                "No e-mail for price alerts",
                value={"preferences": [{"kind": "alert.price", "channel": "email", "enabled": False}]},
                request_only=True,
            )
        ],
    )
    def patch(self, request: Request) -> Response:
        data = PreferencesInput(data=request.data)
        data.is_valid(raise_exception=True)
        available = {
            (row.kind.name, channel.name)
            for row in notification_preferences(user=request.user)
            for channel, _ in row.channels
        }
        with tenant(request.user.pk):
            for index, change in enumerate(data.validated_data["preferences"]):
                if (change["kind"], change["channel"]) not in available:
                    raise exceptions.ValidationError(
                        {
                            "preferences": {
                                index: {
                                    "kind": [f"No channel {change['channel']!r} for kind {change['kind']!r}."]
                                }
                            }
                        }
                    )
                notification_preference_set(user=request.user, **change)
        return Response(_preferences_data(request.user))


# Mounted at /api/v1/notifications/ (config/urls.py).
urlpatterns = [
    path("", NotificationListApi.as_view(), name="api-notifications"),
    path("read/", NotificationReadAllApi.as_view(), name="api-notifications-read-all"),
    path("<int:notification_id>/read/", NotificationReadApi.as_view(), name="api-notification-read"),
    path("preferences/", NotificationPreferencesApi.as_view(), name="api-notification-preferences"),
]
