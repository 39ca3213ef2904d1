from django.urls import path

from bot import views

urlpatterns = [
    path("assistant/", views.assistant_view, name="assistant"),
    path("assistant/new/", views.assistant_new_view, name="assistant_new"),
    path("assistant/ask/", views.assistant_ask_view, name="assistant_ask"),
    path("assistant/<int:pk>/", views.conversation_view, name="assistant_conversation"),
    path("assistant/<int:pk>/confirm/", views.assistant_confirm_view, name="assistant_confirm"),
    path("assistant/<int:pk>/delete/", views.conversation_delete_view, name="assistant_delete"),
]
