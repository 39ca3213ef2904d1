from django.urls import path

from portfolios.api import extra_views, views

urlpatterns = [
    path("", views.PortfolioListApi.as_view(), name="api-portfolios"),
    path("<int:pk>/", views.PortfolioDetailApi.as_view(), name="api-portfolio"),
    path("<int:pk>/positions/", views.PositionListApi.as_view(), name="api-portfolio-positions"),
    path("<int:pk>/transactions/", views.TransactionListApi.as_view(), name="api-portfolio-transactions"),
    path("<int:pk>/performance/", views.PerformanceApi.as_view(), name="api-portfolio-performance"),
    path(
        "<int:pk>/transactions/import/",
        extra_views.TransactionImportApi.as_view(),
        name="api-portfolio-transactions-import",
    ),
    path(
        "<int:pk>/transactions/<int:txn_id>/",
        extra_views.TransactionDetailApi.as_view(),
        name="api-portfolio-transaction",
    ),
    path("<int:pk>/snapshots/", extra_views.SnapshotListApi.as_view(), name="api-portfolio-snapshots"),
    path(
        "<int:pk>/performance/<str:period>/",
        extra_views.PeriodPerformanceApi.as_view(),
        name="api-portfolio-performance-period",
    ),
]

# Mounted at /api/v1/watchlists/ (config/urls.py).
watchlist_urlpatterns = [
    path("", extra_views.WatchlistListApi.as_view(), name="api-watchlists"),
    path("<int:pk>/", extra_views.WatchlistDetailApi.as_view(), name="api-watchlist"),
    path("<int:pk>/items/", extra_views.WatchlistItemListApi.as_view(), name="api-watchlist-items"),
    path(
        "<int:pk>/items/<int:instrument_id>/",
        extra_views.WatchlistItemDetailApi.as_view(),
        name="api-watchlist-item",
    ),
]
