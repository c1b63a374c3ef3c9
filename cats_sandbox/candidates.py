"""Candidates: create (with the duplicate check), read, update, delete, and both searches."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Request, Response

from .fields import FieldsApi
from .state import ApiError, Site, new_candidate, now

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE_TYPES = {"mobile", "home", "work", "fax", "main", "other"}

RULES = [
    ("/candidates", "GET", "list_candidates"),
    ("/candidates", "POST", "create_candidate"),
    ("/candidates/search", "GET", "search_candidates_text"),
    ("/candidates/search", "POST", "search_candidates"),
    ("/candidates/<int:id>", "GET", "get_candidate"),
    ("/candidates/<int:id>", "PUT", "update_candidate"),
    ("/candidates/<int:id>", "DELETE", "delete_candidate"),
]

SEARCHABLE: dict[str, Callable[[dict], Any]] = {
    "emails.primary": lambda c: c["emails"]["primary"],
    "emails.secondary": lambda c: c["emails"]["secondary"],
    "first_name": lambda c: c["first_name"],
    "last_name": lambda c: c["last_name"],
    "title": lambda c: c["title"],
    "current_employer": lambda c: c["current_employer"],
    "id": lambda c: c["id"],
}


class CandidatesApi(FieldsApi):
    def _apply_candidate_fields(
        self, site: Site, cand: dict, body: dict, *, creating: bool
    ) -> None:
        body = self._object(body)
        errors = []
        for name in ("first_name", "last_name"):
            value = body.get(name)
            if not isinstance(value, str) or not value.strip():
                errors.append({"field": name, "message": f"{name} is required."})
        emails = body.get("emails")
        new_emails = None
        if emails is not None:
            new_emails = {"primary": None, "secondary": None}
            if not isinstance(emails, list):
                errors.append({"field": "emails", "message": "emails must be a list."})
                emails = []
            ordered = sorted(
                (e for e in emails if isinstance(e, dict)), key=lambda e: not e.get("is_primary")
            )
            for slot, item in zip(("primary", "secondary"), ordered, strict=False):
                address = item.get("email")
                if not isinstance(address, str) or not EMAIL_RE.match(address.strip()):
                    errors.append({"field": "emails", "message": f"Invalid email: {address!r}."})
                else:
                    new_emails[slot] = address.strip()
        phones = body.get("phones")
        new_phones = None
        if phones is not None:
            new_phones = []
            for item in phones if isinstance(phones, list) else [None]:
                if not isinstance(item, dict) or not isinstance(item.get("number"), str):
                    errors.append({"field": "phones", "message": "Each phone needs a number."})
                    continue
                kind = item.get("type", "other")
                if kind not in PHONE_TYPES:
                    errors.append({"field": "phones", "message": f"Invalid phone type {kind!r}."})
                    continue
                new_phones.append(
                    {"id": self.state.new_id(), "number": item["number"], "type": kind}
                )
        if errors:
            raise ApiError(422, "; ".join(e["message"] for e in errors), errors=errors)

        new_custom: dict[str, Any] = {}
        for item in body.get("custom_fields") or []:
            field_id = item.get("id") if isinstance(item, dict) else None
            field = site.custom_fields.get(field_id) if isinstance(field_id, int) else None
            if field is None:
                raise ApiError(
                    422,
                    f"Unknown custom field {field_id!r}.",
                    errors=[{"field": "custom_fields", "message": "Unknown custom field."}],
                )
            new_custom[str(field_id)] = self._validate_custom_value(site, field, item.get("value"))

        cand["first_name"] = body["first_name"].strip()
        cand["last_name"] = body["last_name"].strip()
        for name in ("title", "current_employer", "source", "notes", "website", "middle_name"):
            if name in body:
                cand[name] = body[name]
        if "owner_id" in body:
            cand["owner_id"] = body["owner_id"]
        if new_emails is not None:
            cand["emails"] = new_emails
        if new_phones is not None:
            cand["phones"] = new_phones
        cand["custom_fields"].update(new_custom)
        if not creating:
            cand["date_modified"] = now()

    @staticmethod
    def _find_duplicate(site: Site, body: dict) -> dict | None:
        wanted = {
            e.get("email", "").strip().lower()
            for e in body.get("emails") or []
            if isinstance(e, dict) and isinstance(e.get("email"), str)
        }
        first = str(body.get("first_name", "")).strip().lower()
        last = str(body.get("last_name", "")).strip().lower()
        numbers = {p.get("number") for p in body.get("phones") or [] if isinstance(p, dict)}
        for cand in site.candidates.values():
            theirs = {(v or "").lower() for v in cand["emails"].values() if v}
            if wanted & theirs:
                return cand
            same_name = cand["first_name"].lower() == first and cand["last_name"].lower() == last
            if same_name and numbers & {p["number"] for p in cand["phones"]}:
                return cand
        return None

    def api_list_candidates(self, request: Request, site: Site, body: Any) -> Response:
        rows = [self._candidate_out(request, site, c) for c in site.candidates.values()]
        return self._hal_list(request, site, "candidates", rows)

    def api_create_candidate(self, request: Request, site: Site, body: Any) -> Response:
        if self._flag(request, "check_duplicate") and isinstance(body, dict):
            existing = self._find_duplicate(site, body)
            if existing is not None:
                raise ApiError(
                    site.config["duplicate_candidate_status"],
                    "A duplicate candidate already exists.",
                    duplicate_id=existing["id"],
                )
        cand = new_candidate(self.state, site)
        self._apply_candidate_fields(site, cand, body, creating=True)
        site.candidates[cand["id"]] = cand
        self._candidate_event(request, site, "candidate.created", cand)
        return self._json(None, 201, self._location(request, f"/candidates/{cand['id']}"))

    def api_get_candidate(self, request: Request, site: Site, body: Any, id: int) -> Response:
        return self._json(self._candidate_out(request, site, self._get(site.candidates, id)))

    def api_update_candidate(self, request: Request, site: Site, body: Any, id: int) -> Response:
        cand = self._get(site.candidates, id)
        self._apply_candidate_fields(site, cand, body, creating=False)
        self._candidate_event(request, site, "candidate.updated", cand)
        return self._json(None, 204)

    def api_delete_candidate(self, request: Request, site: Site, body: Any, id: int) -> Response:
        self._delete_candidate(request, site, id)
        return self._json(None, 204)

    def _delete_candidate(self, request: Request, site: Site, id: int) -> None:
        """Through the API or by hand: the candidate's pipelines go with it."""
        cand = self._get(site.candidates, id)
        for pid in [p for p, row in site.pipelines.items() if row["candidate_id"] == id]:
            self._pipeline_event(request, site, "pipeline.deleted", site.pipelines.pop(pid))
        self._candidate_event(request, site, "candidate.deleted", cand)
        del site.candidates[id]

    def api_search_candidates_text(self, request: Request, site: Site, body: Any) -> Response:
        # Free text, as CATS: an unknown parameter means no filter at all, so everyone matches.
        query = (request.args.get("query") or "").strip().lower()
        rows = []
        for cand in site.candidates.values():
            haystack = " ".join(
                str(v or "")
                for v in (
                    cand["first_name"],
                    cand["last_name"],
                    cand["emails"]["primary"],
                    cand["emails"]["secondary"],
                )
            ).lower()
            if query in haystack:
                rows.append(self._candidate_out(request, site, cand))
        return self._hal_list(request, site, "candidates", rows)

    def api_search_candidates(self, request: Request, site: Site, body: Any) -> Response:
        if not isinstance(body, dict) or not body:
            raise ApiError(400, "A filter is required.")
        matcher = _compile_filter(site, body)
        rows = [
            self._candidate_out(request, site, c) for c in site.candidates.values() if matcher(c)
        ]
        return self._hal_list(request, site, "candidates", rows)


def _compile_filter(site: Site, node: Any) -> Callable[[dict], bool]:
    if not isinstance(node, dict):
        raise ApiError(400, "Each filter must be an object.")
    for combinator in ("and", "or"):
        if combinator in node:
            parts = node[combinator]
            if not isinstance(parts, list) or not parts:
                raise ApiError(400, f'"{combinator}" needs a non-empty list.')
            compiled = [_compile_filter(site, p) for p in parts]
            if combinator == "and":
                return lambda c: all(m(c) for m in compiled)
            return lambda c: any(m(c) for m in compiled)
    if "not" in node:
        inner = node["not"]
        parts = inner if isinstance(inner, list) else [inner]
        compiled = [_compile_filter(site, p) for p in parts]
        return lambda c: not any(m(c) for m in compiled)

    field, kind, value = node.get("field"), node.get("filter"), node.get("value")
    getter = SEARCHABLE.get(field) if isinstance(field, str) else None
    if getter is None:
        raise ApiError(400, f"Unknown search field {field!r}.")
    # Case handling on emails is an open question: each filter answers as the site says.
    email = field.startswith("emails.")
    sensitive_key = "contains_case_sensitive" if kind == "contains" else "search_case_sensitive"
    fold = email and not site.config[sensitive_key]

    def norm(v: Any) -> Any:
        return v.lower() if fold and isinstance(v, str) else v

    if kind == "exactly":
        return lambda c: getter(c) is not None and norm(getter(c)) == norm(value)
    if kind == "contains":
        if not isinstance(value, str):
            raise ApiError(400, "contains needs a string value.")
        return lambda c: isinstance(getter(c), str) and norm(value) in norm(getter(c))
    if kind == "is_empty":
        wanted = value is not False
        return lambda c: (getter(c) in (None, "")) == wanted
    if kind == "greater_than":
        return lambda c: getter(c) is not None and getter(c) > value
    if kind == "less_than":
        return lambda c: getter(c) is not None and getter(c) < value
    if kind == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise ApiError(400, "between needs a [low, high] value.")
        low, high = value
        return lambda c: getter(c) is not None and low <= getter(c) <= high
    raise ApiError(400, f"Unknown filter {kind!r}.")
