from django.urls import path

from portfolios import views

urlpatterns = [
    path("dashboard/", views.dashboard_view, name="dashboard"),
    path("dashboard/presence/", views.dashboard_presence_view, name="dashboard_presence"),
    path("portfolios/", views.portfolio_list_view, name="portfolios"),
    path("portfolios/<int:pk>/delete/", views.portfolio_delete_view, name="portfolio_delete"),
    path("portfolios/<int:pk>/transactions/", views.transaction_list_view, name="portfolio_transactions"),
    path(
        "portfolios/<int:pk>/transactions/add/", views.transaction_add_view, name="portfolio_transaction_add"
    ),
    path("portfolios/<int:pk>/import/", views.import_view, name="portfolio_import"),
    path(
        "portfolios/<int:pk>/export/transactions.csv",
        views.export_transactions_view,
        name="portfolio_export_transactions",
    ),
    path(
        "portfolios/<int:pk>/export/positions.csv",
        views.export_positions_view,
        name="portfolio_export_positions",
    ),
    path("transactions/<int:pk>/delete/", views.transaction_delete_view, name="transaction_delete"),
    path("watchlists/", views.watchlists_view, name="watchlists"),
    path("watchlists/<int:pk>/add/", views.watchlist_add_view, name="watchlist_add"),
    path(
        "watchlists/<int:pk>/remove/<int:instrument_id>/",
        views.watchlist_remove_view,
        name="watchlist_remove",
    ),
    path("watchlists/<int:pk>/delete/", views.watchlist_delete_view, name="watchlist_delete"),
]
