from django.urls import path

from newsletter import feeds, views

app_name = "newsletter"

urlpatterns = [
    path("", views.issue_list_view, name="issue_list"),
    path("new/", views.issue_new_view, name="issue_new"),
    path("draft/", views.issue_draft_view, name="issue_draft"),
    path("<int:issue_id>/", views.issue_detail_view, name="issue_detail"),
    path("<int:issue_id>/edit/", views.issue_edit_view, name="issue_edit"),
    path("<int:issue_id>/email/", views.issue_email_view, name="issue_email"),
    path("<int:issue_id>/send/", views.issue_send_view, name="issue_send"),
    path("<int:issue_id>/schedule/", views.issue_schedule_view, name="issue_schedule"),
    path("<int:issue_id>/unschedule/", views.issue_unschedule_view, name="issue_unschedule"),
    path("<int:issue_id>/delete/", views.issue_delete_view, name="issue_delete"),
    path("archive/", views.archive_view, name="archive"),
    path("archive/<int:issue_id>-<slug:slug>/", views.archive_issue_view, name="archive_issue"),
    path("feed.atom", feeds.atom_view, name="feed_atom"),
    path("feed.rss", feeds.rss_view, name="feed_rss"),
    path("unsubscribe/<str:token>/", views.unsubscribe_view, name="unsubscribe"),
    path("preferences/", views.preferences_view, name="preferences"),
]
