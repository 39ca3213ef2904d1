from django.urls import path

from research import views

app_name = "research"

urlpatterns = [
    path("", views.note_list_view, name="note_list"),
    path("new/", views.note_create_view, name="note_create"),
    path("preview/", views.note_preview_view, name="note_preview"),
    path("notes/<int:note_id>/", views.note_detail_view, name="note_detail"),
    path("notes/<int:note_id>/edit/", views.note_edit_view, name="note_edit"),
    path("notes/<int:note_id>/revisions/", views.note_revisions_view, name="note_revisions"),
    path("notes/<int:note_id>/publish/", views.note_publish_view, name="note_publish"),
    path("notes/<int:note_id>/unpublish/", views.note_unpublish_view, name="note_unpublish"),
    path("notes/<int:note_id>/delete/", views.note_delete_view, name="note_delete"),
    path("community/", views.community_view, name="community"),
    path("community/<int:note_id>/", views.published_detail_view, name="published_detail"),
    path("search/", views.search_view, name="search"),
    path("authors/<int:author_id>/", views.author_view, name="author"),
    path("on/<str:slug>/", views.market_notes_view, name="market_notes"),
]
