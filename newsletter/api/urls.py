from django.urls import path

from newsletter.api import views

urlpatterns = [
    path("issues/", views.IssueListApi.as_view(), name="api-newsletter-issues"),
    path("issues/draft/", views.IssueDraftApi.as_view(), name="api-newsletter-draft"),
    path("issues/<int:issue_id>/", views.IssueDetailApi.as_view(), name="api-newsletter-issue"),
    path("issues/<int:issue_id>/preview/", views.IssuePreviewApi.as_view(), name="api-newsletter-preview"),
    path("issues/<int:issue_id>/send/", views.IssueSendApi.as_view(), name="api-newsletter-send"),
    path("issues/<int:issue_id>/schedule/", views.IssueScheduleApi.as_view(), name="api-newsletter-schedule"),
    path("issues/<int:issue_id>/stats/", views.IssueStatsApi.as_view(), name="api-newsletter-stats"),
]
