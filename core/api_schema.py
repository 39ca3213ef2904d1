"""The default OpenAPI schema class (drf-spectacular's, plus what every operation of /api/v1 shares).

Apart from core.api because drf_spectacular.openapi imports rest_framework.views, which reads the DRF
settings that name core.api (the parser), so core.api must not import it at module level.
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import AllowAny

from core.api import (
    IDEMPOTENCY_HEADER,
    IDEMPOTENCY_KEY_PATTERN,
    PROBLEM_CONTENT_TYPE,
    PROBLEM_DESCRIPTIONS,
    UNSAFE_METHODS,
    ProblemDetailSerializer,
)

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    name=IDEMPOTENCY_HEADER,
    type={"type": "string", "minLength": 1, "maxLength": 255, "pattern": IDEMPOTENCY_KEY_PATTERN},
    location=OpenApiParameter.HEADER,
    required=False,
    description="Any unique string (a UUID): a retry with the same key and body returns the first answer and "
    "does nothing again, for 24 hours. The same key with another body is a 422.",
)


class ApiAutoSchema(AutoSchema):
    """drf-spectacular's schema, plus the problem answers every operation can give and the Idempotency-Key
    header on unsafe methods (docs/api.md). Views document further errors with `problem_responses`."""

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if self.method in UNSAFE_METHODS and self._is_api_path():
            parameters.append(IDEMPOTENCY_PARAMETER)
        return parameters

    def _is_api_path(self) -> bool:
        return self.path.startswith("/api/v")

    def _default_problem_codes(self, operation: dict) -> list[int]:
        codes = []
        has_query = any(parameter.get("in") == "query" for parameter in operation.get("parameters", []))
        if self.method in UNSAFE_METHODS or has_query:
            codes.append(400)
        if not all(isinstance(permission, AllowAny) for permission in self.view.get_permissions()):
            codes += [401, 403]
        if "{" in self.path:
            codes.append(404)
        if self.method in UNSAFE_METHODS and self._is_api_path():
            codes.append(422)
        if self.view.get_throttles():
            codes.append(429)
        return codes

    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        responses = operation.setdefault("responses", {})
        for code in self._default_problem_codes(operation):
            if str(code) not in responses:
                responses[str(code)] = self._get_response_for_code(
                    OpenApiResponse(response=ProblemDetailSerializer, description=PROBLEM_DESCRIPTIONS[code]),
                    str(code),
                    media_types=[PROBLEM_CONTENT_TYPE],
                )
        return operation

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if isinstance(field, serializers.DecimalField) and "pattern" in schema and field.max_whole_digits:
            schema["pattern"] = decimal_pattern(
                whole_digits=field.max_whole_digits,
                decimal_places=field.decimal_places,
                signed=field.min_value is None or field.min_value < 0,
            )
        return schema


def decimal_pattern(*, whole_digits: int, decimal_places: int, signed: bool) -> str:
    """What DRF's DecimalField takes as a string: digits (at least one) with an optional fraction, and a
    minus sign only where the field allows negative values. drf-spectacular's own pattern also matches ""."""
    sign = "-?" if signed else ""
    if decimal_places:
        number = rf"(?:\d{{1,{whole_digits}}}(?:\.\d{{0,{decimal_places}}})?|\.\d{{1,{decimal_places}}})"
    else:
        number = rf"\d{{1,{whole_digits}}}"
    return rf"^{sign}{number}$"
