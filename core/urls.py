from django.urls import path

from core import views

urlpatterns = [
    path("notifications/", views.notification_list_view, name="notification_list"),
    path("notifications/read/", views.notification_read_view, name="notification_read_all"),
    path("notifications/<int:notification_id>/read/", views.notification_read_view, name="notification_read"),
    path("notifications/settings/", views.notification_preferences_view, name="notification_preferences"),
]
