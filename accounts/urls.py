from django.urls import path
from django.views.generic import RedirectView

from accounts import views

urlpatterns = [
    path("", views.settings_view, name="account_settings"),
    path("log-out-everywhere/", views.log_out_everywhere_view, name="account_log_out_everywhere"),
    path("api/", views.api_tokens_view, name="account_api_tokens"),
    path("api/<int:token_id>/revoke/", views.api_token_revoke_view, name="account_api_token_revoke"),
    # The page's old address (bookmarks, the docs of earlier releases).
    path("tokens/", RedirectView.as_view(pattern_name="account_api_tokens", permanent=True)),
    path("discord/code/", views.discord_link_code_view, name="account_discord_code"),
    path("discord/unlink/", views.discord_unlink_view, name="account_discord_unlink"),
    path("security-log/", views.security_log_view, name="account_security_log"),
]
