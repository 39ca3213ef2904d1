from django.urls import path

from accounts import views

urlpatterns = [
    path("", views.settings_view, name="account_settings"),
    path("security-log/", views.security_log_view, name="account_security_log"),
]
