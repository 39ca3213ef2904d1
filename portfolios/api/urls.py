from django.urls import path

from portfolios.api import views

urlpatterns = [
    path("", views.PortfolioListApi.as_view(), name="api-portfolios"),
    path("<int:pk>/", views.PortfolioDetailApi.as_view(), name="api-portfolio"),
    path("<int:pk>/positions/", views.PositionListApi.as_view(), name="api-portfolio-positions"),
    path("<int:pk>/transactions/", views.TransactionListApi.as_view(), name="api-portfolio-transactions"),
    path("<int:pk>/performance/", views.PerformanceApi.as_view(), name="api-portfolio-performance"),
]
