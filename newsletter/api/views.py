"""REST API for newsletter authors (/api/v1/newsletter/): list, create, get, update, delete, preview,
schedule, send, stats, and a companion draft. The same services as the studio pages."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import DomainError
from newsletter.api.serializers import (
    DraftOutput,
    IssueInput,
    IssueOutput,
    PreviewOutput,
    ScheduleInput,
    StatsOutput,
)
from newsletter.drafting import issue_draft_compose
from newsletter.models import Issue
from newsletter.selectors import issue_get, issue_list, issue_stats, may_author
from newsletter.services import (
    issue_create,
    issue_delete,
    issue_preview,
    issue_schedule,
    issue_send_now,
    issue_update,
)


class MayAuthor(BasePermission):
    message = "Newsletters are part of the Enterprise plan (and open to staff)."

    def has_permission(self, request, view) -> bool:
        return may_author(user=request.user)


def _issue(request: Request, issue_id: int) -> Issue:
    try:
        return issue_get(user=request.user, issue_id=issue_id)
    except DomainError:
        raise exceptions.NotFound("No such issue.") from None


class _AuthorApi(APIView):
    def get_permissions(self):
        return [*super().get_permissions(), MayAuthor()]


class IssueListApi(_AuthorApi, generics.ListAPIView):
    serializer_class = IssueOutput
    ordering = ("-id",)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Issue.objects.none()
        return issue_list(user=self.request.user)

    @extend_schema(summary="List your newsletter issues")
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(summary="Create a draft issue", request=IssueInput, responses={201: IssueOutput})
    def post(self, request: Request) -> Response:
        data = IssueInput(data=request.data)
        data.is_valid(raise_exception=True)
        issue = issue_create(user=request.user, **data.validated_data)
        return Response(IssueOutput(issue).data, status=status.HTTP_201_CREATED)


class IssueDetailApi(_AuthorApi):
    serializer_class = IssueOutput

    @extend_schema(summary="Get an issue", responses={200: IssueOutput})
    def get(self, request: Request, issue_id: int) -> Response:
        return Response(IssueOutput(_issue(request, issue_id)).data)

    @extend_schema(summary="Change a draft or scheduled issue", request=IssueInput, responses={200: IssueOutput})
    def put(self, request: Request, issue_id: int) -> Response:
        _issue(request, issue_id)
        data = IssueInput(data=request.data)
        data.is_valid(raise_exception=True)
        issue = issue_update(user=request.user, issue_id=issue_id, **data.validated_data)
        return Response(IssueOutput(issue).data)

    @extend_schema(summary="Delete a draft or scheduled issue", responses={204: None})
    def delete(self, request: Request, issue_id: int) -> Response:
        issue_delete(user=request.user, issue_id=_issue(request, issue_id).pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class IssuePreviewApi(_AuthorApi):
    serializer_class = PreviewOutput
    required_scopes = {"POST": "read"}  # renders, changes nothing

    @extend_schema(summary="Preview an issue as a recipient gets it", request=None, responses={200: PreviewOutput})
    def post(self, request: Request, issue_id: int) -> Response:
        preview = issue_preview(user=request.user, issue=_issue(request, issue_id))
        return Response(PreviewOutput({"html": preview.email_html, "text": preview.text, "blocks": preview.data}).data)


class IssueSendApi(_AuthorApi):
    serializer_class = IssueOutput

    @extend_schema(
        summary="Send an issue now",
        description="Checks the plan's recipient limit, freezes the issue and starts sending (202).",
        request=None,
        responses={202: IssueOutput},
    )
    def post(self, request: Request, issue_id: int) -> Response:
        issue = issue_send_now(user=request.user, issue_id=_issue(request, issue_id).pk)
        return Response(IssueOutput(issue).data, status=status.HTTP_202_ACCEPTED)


class IssueScheduleApi(_AuthorApi):
    serializer_class = IssueOutput

    @extend_schema(summary="Schedule an issue", request=ScheduleInput, responses={200: IssueOutput})
    def post(self, request: Request, issue_id: int) -> Response:
        data = ScheduleInput(data=request.data)
        data.is_valid(raise_exception=True)
        issue = issue_schedule(
            user=request.user, issue_id=_issue(request, issue_id).pk, at=data.validated_data["scheduled_at"]
        )
        return Response(IssueOutput(issue).data)


class IssueStatsApi(_AuthorApi):
    serializer_class = StatsOutput

    @extend_schema(summary="Delivery counts of an issue", responses={200: StatsOutput})
    def get(self, request: Request, issue_id: int) -> Response:
        issue = _issue(request, issue_id)
        stats = issue_stats(issue=issue)
        return Response(
            StatsOutput(
                {
                    **stats.__dict__,
                    "status": issue.status,
                    "discord_status": issue.discord_status,
                    "discord_detail": issue.discord_detail,
                }
            ).data
        )


class IssueDraftApi(_AuthorApi):
    serializer_class = DraftOutput

    @extend_schema(
        summary="Let the companion draft this week's issue",
        description="A draft written from the week's stored data, every figure grounded. Counts one AI query.",
        request=None,
        responses={201: DraftOutput},
    )
    def post(self, request: Request) -> Response:
        draft = issue_draft_compose(user=request.user)
        issue = issue_create(user=request.user, title=draft.title, body=draft.body)
        return Response({**IssueOutput(issue).data, "source": draft.source}, status=status.HTTP_201_CREATED)
