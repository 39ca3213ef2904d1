from django.urls import path

from research.api import views

urlpatterns = [
    path("notes/", views.NoteListApi.as_view(), name="api-research-notes"),
    path("notes/<int:note_id>/", views.NoteDetailApi.as_view(), name="api-research-note"),
    path("notes/<int:note_id>/revisions/", views.NoteRevisionListApi.as_view(), name="api-research-note-revisions"),
    path("notes/<int:note_id>/publish/", views.NotePublishApi.as_view(), name="api-research-note-publish"),
    path("notes/<int:note_id>/unpublish/", views.NoteUnpublishApi.as_view(), name="api-research-note-unpublish"),
    path("published/", views.PublishedListApi.as_view(), name="api-research-published"),
    path("published/<int:note_id>/", views.PublishedDetailApi.as_view(), name="api-research-published-note"),
    path("search/", views.SearchApi.as_view(), name="api-research-search"),
    path("authors/<int:author_id>/track-record/", views.TrackRecordApi.as_view(), name="api-research-track-record"),
]
