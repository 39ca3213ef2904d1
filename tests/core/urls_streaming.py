"""A URLconf for tests/core/test_web_tier.py: a streamed response next to the project's own URLs."""

from django.http import StreamingHttpResponse
from django.urls import path

from config.urls import urlpatterns as project_urlpatterns


def _streamed(request):
    return StreamingHttpResponse(iter([b"one,", b"two,", b"three"]), content_type="text/csv")


urlpatterns = [path("test-streamed/", _streamed), *project_urlpatterns]
