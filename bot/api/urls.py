from django.urls import path

from bot.api import views

urlpatterns = [
    path("ask/", views.AskApi.as_view(), name="api-companion-ask"),
    path("conversations/", views.ConversationListApi.as_view(), name="api-companion-conversations"),
    path(
        "conversations/<int:conversation_id>/",
        views.ConversationDetailApi.as_view(),
        name="api-companion-conversation",
    ),
    path(
        "conversations/<int:conversation_id>/confirm/",
        views.ConfirmApi.as_view(),
        name="api-companion-confirm",
    ),
]
