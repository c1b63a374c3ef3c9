"""Candidate custom fields: definitions, and values validated by the field's type."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from werkzeug.wrappers import Request, Response

from .hal import Hal
from .state import ApiError, Site, now

DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

RULES = [
    ("/candidates/custom_fields", "GET", "list_candidate_custom_fields"),
    ("/candidates/custom_fields/<int:field_id>", "GET", "get_candidate_custom_field"),
    ("/candidates/<int:id>/custom_fields", "GET", "list_candidate_custom_values"),
    ("/candidates/<int:id>/custom_fields/<int:field_id>", "GET", "get_candidate_custom_value"),
    ("/candidates/<int:id>/custom_fields/<int:field_id>", "PUT", "set_candidate_custom_value"),
]


class FieldsApi(Hal):
    def _validate_custom_value(self, site: Site, field: dict, value: Any) -> Any:
        kind = field["field"]["type"]
        name = field["name"]
        if value is None:
            return None

        def bad(why: str) -> ApiError:
            return ApiError(
                422,
                f'Invalid value for custom field "{name}": {why}',
                errors=[{"field": f"custom_fields.{field['id']}", "message": why}],
            )

        if kind in {"text", "textarea"}:
            if not isinstance(value, str):
                raise bad("expected a string.")
            return value
        if kind == "checkbox":
            if not isinstance(value, bool):
                raise bad("expected true or false.")
            return value
        if kind == "date":
            if not isinstance(value, str) or not DATE_RE.match(value):
                raise bad("expected a date as YYYY-MM-DD.")
            try:
                date.fromisoformat(value)
            except ValueError as exc:
                raise bad("not a real date.") from exc
            return value
        if kind in {"dropdown", "radio"}:
            if value == "":
                return None
            if value not in field["field"].get("selections", []):
                raise bad(f"{value!r} is not one of the field's options.")
            return value
        if kind == "checkboxes":
            options = field["field"].get("selections", [])
            if not isinstance(value, list) or any(v not in options for v in value):
                raise bad("expected a list of the field's options.")
            return value
        if kind == "user":
            if isinstance(value, bool) or not isinstance(value, int) or value not in site.users:
                raise bad("expected the id of a user of this site.")
            return value
        if kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise bad("expected a number.")
            return value
        raise bad(f"unsupported field type {kind}.")

    def api_list_candidate_custom_fields(self, request: Request, site: Site, body: Any) -> Response:
        return self._hal_list(request, site, "custom_fields", list(site.custom_fields.values()))

    def api_get_candidate_custom_field(
        self, request: Request, site: Site, body: Any, field_id: int
    ) -> Response:
        return self._json(self._get(site.custom_fields, field_id))

    def api_list_candidate_custom_values(
        self, request: Request, site: Site, body: Any, id: int
    ) -> Response:
        cand = self._get(site.candidates, id)
        return self._hal_list(request, site, "custom_fields", self._custom_values(site, cand))

    def api_get_candidate_custom_value(
        self, request: Request, site: Site, body: Any, id: int, field_id: int
    ) -> Response:
        cand = self._get(site.candidates, id)
        self._get(site.custom_fields, field_id)
        return self._json({"id": field_id, "value": cand["custom_fields"].get(str(field_id))})

    def api_set_candidate_custom_value(
        self, request: Request, site: Site, body: Any, id: int, field_id: int
    ) -> Response:
        cand = self._get(site.candidates, id)
        field = self._get(site.custom_fields, field_id)
        if not isinstance(body, dict) or "value" not in body:
            raise ApiError(422, "value is required.", errors=[{"field": "value"}])
        cand["custom_fields"][str(field_id)] = self._validate_custom_value(
            site, field, body["value"]
        )
        cand["date_modified"] = now()
        self._candidate_event(request, site, "candidate.updated", cand)
        return self._json(None, 204)
