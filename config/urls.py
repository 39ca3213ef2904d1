from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts import views as accounts_views
from billing.api.urls import account_usage_urlpatterns
from core import views as core_views
from newsletter.webhook_urls import urlpatterns as newsletter_webhook_urlpatterns
from portfolios.api.urls import watchlist_urlpatterns

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="dashboard", permanent=False)),
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("", include("django_prometheus.urls")),
    path("admin/", admin.site.urls),
    path("accounts/login/", accounts_views.LoginView.as_view(), name="account_login"),
    path("accounts/", include("allauth.urls")),
    path("settings/", include("accounts.urls")),
    path("", include("portfolios.urls")),
    path("", include("core.urls")),
    path("", include("alerts.urls")),
    path("", include("marketdata.urls")),
    path("trading/", include("trading.urls")),
    path("automation/", include("automation.urls")),
    path("", include("billing.urls")),
    path("", include("bot.urls")),
    path("research/", include("research.urls")),
    path("stripe/", include("billing.webhook_urls")),
    path("newsletter/", include("newsletter.urls")),
    *newsletter_webhook_urlpatterns,
    path("api/v1/accounts/me/usage/", include(account_usage_urlpatterns)),
    path("api/v1/accounts/", include("accounts.api.urls")),
    path("api/v1/portfolios/", include("portfolios.api.urls")),
    path("api/v1/trading/", include("trading.api.urls")),
    path("api/v1/markets/", include("marketdata.api.urls")),
    path("api/v1/watchlists/", include(watchlist_urlpatterns)),
    path("api/v1/alerts/", include("alerts.api.urls")),
    path("api/v1/automation/", include("automation.api.urls")),
    path("api/v1/research/", include("research.api.urls")),
    path("api/v1/notifications/", include("core.notifications_api")),
    path("api/v1/billing/", include("billing.api.urls")),
    path("api/v1/companion/", include("bot.api.urls")),
    path("api/v1/newsletter/", include("newsletter.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]

# /api/... paths that match no route answer in problem+json, like the API's own 404s.
handler404 = "core.api.not_found_handler"
