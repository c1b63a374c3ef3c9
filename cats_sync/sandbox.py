"""A CATS API v3 sandbox: an in-memory, multi-site stand-in for api.catsone.com/v3.

It follows /work/shared/spec/cats-api-v3.md. Where the spec marks a fact as a guess, the
sandbox picks the stated behaviour and lets a site be configured to answer the other plausible
ways (see SITE_CONFIG_DEFAULTS), so client code can be tested against each.

Pure Python plus werkzeug: no Django settings or database, so tests, benchmarks and the
management command can all use it.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import os
import re
import secrets
import socket
import threading
import time
import uuid
from collections import Counter, deque
from datetime import UTC, date, datetime
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from . import sandbox_seed

logger = logging.getLogger(__name__)

API_PREFIX = "/v3"
CONTROL_PREFIX = "/_sandbox"

SITE_CONFIG_DEFAULTS: dict[str, Any] = {
    # Whether `exactly` on emails compares case-sensitively (undocumented in CATS).
    "search_case_sensitive": False,
    # Answer to a second add of the same candidate to the same job (undocumented; 409 guessed).
    # 200 means "answer with the existing pipeline" instead of refusing.
    "duplicate_pipeline_status": 409,
    # Success code of POST /pipelines/{id}/status (undocumented; 204 guessed). 200 and 201
    # answer with the pipeline as body.
    "status_change_code": 204,
    # How list `total` is written: "int", "string" or "null" (all seen).
    "total_style": "int",
    # Whether `_links` hrefs are "absolute" or "relative" (both seen).
    "link_style": "absolute",
    # Requests per window per API key; None uses the server default.
    "rate_limit": None,
}

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ACTIVITY_TYPES = {
    "email",
    "meeting",
    "call_talked",
    "call_lvm",
    "call_missed",
    "text_message",
    "other",
}
PHONE_TYPES = {"mobile", "home", "work", "fax", "main", "other"}
CUSTOM_FIELD_TYPES = {
    "text",
    "textarea",
    "checkbox",
    "date",
    "dropdown",
    "radio",
    "checkboxes",
    "user",
    "number",
}
FAULT_ACTIONS = {"error_500", "error_503", "hang", "rate_limit", "drop_after_write"}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def _parse_rfc3339(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return value


class Site:
    """One CATS account. Holds plain dicts so a snapshot is a straight JSON dump."""

    def __init__(self, site_id: int, subdomain: str, config: dict[str, Any]) -> None:
        self.id = site_id
        self.subdomain = subdomain
        self.config = {**SITE_CONFIG_DEFAULTS, **config}
        self.api_keys: list[str] = []
        self.users: dict[int, dict] = {}
        self.job_statuses: dict[int, dict] = {}
        self.workflows: dict[int, dict] = {}
        self.statuses: dict[int, dict] = {}  # status id -> status, with its workflow_id
        self.jobs: dict[int, dict] = {}
        self.custom_fields: dict[int, dict] = {}
        self.candidates: dict[int, dict] = {}
        self.pipelines: dict[int, dict] = {}
        self.activities: dict[int, dict] = {}

    # Collections a snapshot carries, in an order that makes files easy to read.
    COLLECTIONS = (
        "users",
        "job_statuses",
        "workflows",
        "statuses",
        "jobs",
        "custom_fields",
        "candidates",
        "pipelines",
        "activities",
    )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "subdomain": self.subdomain,
            "config": self.config,
            "api_keys": list(self.api_keys),
        }
        for name in self.COLLECTIONS:
            data[name] = [copy.deepcopy(row) for row in getattr(self, name).values()]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Site:
        site = cls(data["id"], data["subdomain"], data.get("config", {}))
        site.api_keys = list(data.get("api_keys", []))
        for name in cls.COLLECTIONS:
            setattr(site, name, {row["id"]: row for row in data.get(name, [])})
        return site

    def default_user_id(self) -> int | None:
        return min(self.users) if self.users else None


class SandboxState:
    def __init__(self) -> None:
        self.sites: dict[int, Site] = {}
        self.next_id = 1000
        self.request_counts: Counter[str] = Counter()
        self.site_request_counts: dict[int, Counter[str]] = {}
        self.faults: list[dict[str, Any]] = []
        self.rate_windows: dict[str, deque[float]] = {}

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def site_for_key(self, key: str) -> Site | None:
        for site in self.sites.values():
            if key in site.api_keys:
                return site
        return None


def _route_template(rule: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)


API_RULES = [
    ("/site", "GET", "get_site"),
    ("/candidates", "GET", "list_candidates"),
    ("/candidates", "POST", "create_candidate"),
    ("/candidates/search", "GET", "search_candidates_text"),
    ("/candidates/search", "POST", "search_candidates"),
    ("/candidates/custom_fields", "GET", "list_candidate_custom_fields"),
    ("/candidates/custom_fields/<int:field_id>", "GET", "get_candidate_custom_field"),
    ("/candidates/<int:id>", "GET", "get_candidate"),
    ("/candidates/<int:id>", "PUT", "update_candidate"),
    ("/candidates/<int:id>", "DELETE", "delete_candidate"),
    ("/candidates/<int:id>/pipelines", "GET", "list_candidate_pipelines"),
    ("/candidates/<int:id>/custom_fields", "GET", "list_candidate_custom_values"),
    ("/candidates/<int:id>/custom_fields/<int:field_id>", "GET", "get_candidate_custom_value"),
    ("/candidates/<int:id>/custom_fields/<int:field_id>", "PUT", "set_candidate_custom_value"),
    ("/candidates/<int:id>/activities", "GET", "list_candidate_activities"),
    ("/candidates/<int:id>/activities", "POST", "create_candidate_activity"),
    ("/jobs", "GET", "list_jobs"),
    ("/jobs/statuses", "GET", "list_job_statuses"),
    ("/jobs/<int:id>", "GET", "get_job"),
    ("/jobs/<int:id>/pipelines", "GET", "list_job_pipelines"),
    ("/pipelines", "POST", "create_pipeline"),
    ("/pipelines/workflows", "GET", "list_workflows"),
    ("/pipelines/workflows/<int:id>", "GET", "get_workflow"),
    ("/pipelines/workflows/<int:id>/statuses", "GET", "list_workflow_statuses"),
    ("/pipelines/<int:id>", "GET", "get_pipeline"),
    ("/pipelines/<int:id>", "DELETE", "delete_pipeline"),
    ("/pipelines/<int:id>/status", "POST", "change_pipeline_status"),
    ("/activities/<int:id>", "GET", "get_activity"),
]

CONTROL_RULES = [
    ("/reset", "POST", "ctl_reset"),
    ("/sites", "POST", "ctl_create_site"),
    ("/sites", "GET", "ctl_list_sites"),
    ("/sites/<int:site_id>/snapshot", "GET", "ctl_snapshot"),
    ("/sites/<int:site_id>/config", "PATCH", "ctl_config"),
    ("/sites/<int:site_id>/keys", "POST", "ctl_add_key"),
    ("/sites/<int:site_id>/keys/<key>", "DELETE", "ctl_revoke_key"),
    ("/sites/<int:site_id>/pipelines/<int:pipeline_id>/status", "POST", "ctl_status_by_hand"),
    ("/sites/<int:site_id>/custom_fields/<int:field_id>", "DELETE", "ctl_delete_custom_field"),
    ("/sites/<int:site_id>/jobs/<int:job_id>", "DELETE", "ctl_delete_job"),
    ("/sites/<int:site_id>/candidates", "POST", "ctl_create_candidate"),
    ("/requests", "GET", "ctl_requests"),
    ("/requests", "DELETE", "ctl_reset_requests"),
    ("/faults", "POST", "ctl_add_fault"),
    ("/faults", "GET", "ctl_list_faults"),
    ("/faults", "DELETE", "ctl_clear_faults"),
    ("/save", "POST", "ctl_save"),
]


def _build_map(rules: list[tuple[str, str, str]]) -> Map:
    return Map(
        [Rule(path, methods=[method], endpoint=endpoint) for path, method, endpoint in rules],
        strict_slashes=False,
        merge_slashes=False,
    )


class SandboxApp:
    """The WSGI app. One lock guards all state: the sandbox is about fidelity, not throughput."""

    def __init__(
        self,
        *,
        rate_limit: tuple[int, int] = (500, 3600),
        snapshot_path: str | None = None,
    ) -> None:
        self.default_rate_limit, self.rate_window = rate_limit
        self.snapshot_path = snapshot_path
        self.lock = threading.RLock()
        self.state = SandboxState()
        self.api_map = _build_map(API_RULES)
        self.control_map = _build_map(CONTROL_RULES)
        if snapshot_path:
            self._load_snapshot()

    # ---------------------------------------------------------------- WSGI entry

    def __call__(self, environ: dict, start_response: Any) -> Any:
        request = Request(environ)
        path = request.path
        if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
            response = self._handle_api(request, path[len(API_PREFIX) :] or "/")
        elif path.startswith(CONTROL_PREFIX + "/"):
            response = self._handle_control(request, path[len(CONTROL_PREFIX) :])
        else:
            response = self._json({"message": "Not found."}, 404)
        if response is None:
            # drop_after_write: the write happened; now vanish without an answer.
            self._drop_connection(environ)
            return []
        response.headers["X-Request-Id"] = uuid.uuid4().hex
        return response(environ, start_response)

    @staticmethod
    def _drop_connection(environ: dict) -> None:
        sock = environ.get("werkzeug.socket")
        if sock is None:
            raise ConnectionAbortedError("drop_after_write needs the werkzeug server")
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        # Make werkzeug's attempt to write the (absent) answer fail as a dropped connection.
        raise ConnectionAbortedError("sandbox dropped the connection after the write")

    @staticmethod
    def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return Response(
            json.dumps(body) if body is not None else b"",
            status=status,
            headers=headers or {},
            content_type="application/json" if body is not None else None,
        )

    # ---------------------------------------------------------------- API dispatch

    def _handle_api(self, request: Request, subpath: str) -> Response | None:
        key = self._api_key(request)
        with self.lock:
            site = self.state.site_for_key(key) if key else None
            if site is None:
                return self._json({"message": "Invalid credentials."}, 401)
            adapter = self.api_map.bind("sandbox", path_info=subpath)
            try:
                rule, args = adapter.match(subpath, method=request.method, return_rule=True)
                endpoint, route = rule.endpoint, _route_template(rule.rule)
            except (MethodNotAllowed, NotFound):
                endpoint, args, route = None, {}, subpath
            counted = f"{request.method} {route}"
            self.state.request_counts[counted] += 1
            self.state.site_request_counts.setdefault(site.id, Counter())[counted] += 1

            limit = site.config.get("rate_limit") or self.default_rate_limit
            remaining, retry_after = self._take_rate_slot(key, limit)
            rate_headers = {
                "X-Rate-Limit-Limit": str(limit),
                "X-Rate-Limit-Remaining": str(remaining),
            }
            if retry_after is not None:
                return self._json(
                    {"message": "Too many requests."},
                    429,
                    {**rate_headers, "Retry-After": str(retry_after)},
                )
            fault = self._take_fault(request.method, route, subpath, site.id)

        if fault is not None:
            action = fault["action"]
            if action == "error_500":
                return self._json({"message": "Internal server error."}, 500, rate_headers)
            if action == "error_503":
                return self._json({"message": "Service unavailable."}, 503, rate_headers)
            if action == "rate_limit":
                headers = {**rate_headers, "Retry-After": str(fault.get("retry_after", 30))}
                return self._json({"message": "Too many requests."}, 429, headers)
            if action == "hang":
                # Sleep outside the lock so other requests keep flowing; then answer as normal,
                # which for a write means it happens after the client gave up.
                time.sleep(float(fault.get("hang_seconds", 5)))

        with self.lock:
            # The site may have been reset or the key revoked while hanging.
            if self.state.site_for_key(key) is not site:
                return self._json({"message": "Invalid credentials."}, 401, rate_headers)
            response = self._run_api(request, site, endpoint, args)
            for name, value in rate_headers.items():
                response.headers[name] = value
            if request.method in WRITE_METHODS and response.status_code < 400:
                self._save_snapshot()
        if fault is not None and fault["action"] == "drop_after_write":
            return None
        return response

    def _run_api(
        self, request: Request, site: Site, endpoint: str | None, args: dict[str, Any]
    ) -> Response:
        if endpoint is None:
            return self._json({"message": "Not found."}, 404)
        body: Any = None
        if request.method in {"POST", "PUT", "PATCH"}:
            if request.mimetype != "application/json":
                return self._json({"message": "Unsupported Content-Type."}, 415)
            raw = request.get_data(as_text=True)
            if raw.strip():
                try:
                    body = json.loads(raw)
                except ValueError:
                    return self._json({"message": "Malformed JSON body."}, 400)
            else:
                body = {}
        handler = getattr(self, "api_" + endpoint)
        try:
            return handler(request, site, body, **args)
        except ApiError as exc:
            return self._json({"message": exc.message, **exc.extra}, exc.status)

    @staticmethod
    def _api_key(request: Request) -> str | None:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "token" or not value.strip():
            return None
        return value.strip()

    def _take_rate_slot(self, key: str, limit: int) -> tuple[int, int | None]:
        """Rolling window per key. A refused request does not use a slot."""
        now = time.monotonic()
        window = self.state.rate_windows.setdefault(key, deque())
        while window and window[0] <= now - self.rate_window:
            window.popleft()
        if len(window) >= limit:
            retry_after = max(1, math.ceil(window[0] + self.rate_window - now))
            return 0, retry_after
        window.append(now)
        return limit - len(window), None

    def _take_fault(self, method: str, route: str, subpath: str, site_id: int) -> dict | None:
        for fault in self.state.faults:
            if fault["count"] <= 0:
                continue
            if fault.get("method") not in (None, "*", method):
                continue
            if fault.get("route") not in (None, "*", route, subpath):
                continue
            if fault.get("site_id") not in (None, site_id):
                continue
            fault["count"] -= 1
            fault["fired"] = fault.get("fired", 0) + 1
            return dict(fault)
        return None

    # ---------------------------------------------------------------- HAL helpers

    def _href(self, request: Request, site: Site, path: str) -> str:
        if site.config["link_style"] == "relative":
            return API_PREFIX + path
        return request.host_url.rstrip("/") + API_PREFIX + path

    def _location(self, request: Request, path: str) -> dict[str, str]:
        # The spec shows Location absolute whatever the link style.
        return {"Location": request.host_url.rstrip("/") + API_PREFIX + path}

    def _hal_list(
        self, request: Request, site: Site, name: str, rows: list[dict], *, paged: bool = True
    ) -> Response:
        try:
            page = max(1, int(request.args.get("page", 1)))
            per_page = min(100, max(1, int(request.args.get("per_page", 25))))
        except ValueError as exc:
            raise ApiError(400, "page and per_page must be integers.") from exc
        total = len(rows)
        if not paged:
            page, per_page = 1, max(total, 1)
        start = (page - 1) * per_page
        chunk = rows[start : start + per_page]
        last = max(1, math.ceil(total / per_page))
        base = request.path[len(API_PREFIX) :]

        def link(to_page: int) -> dict[str, str]:
            return {"href": self._href(request, site, f"{base}?page={to_page}&per_page={per_page}")}

        links: dict[str, Any] = {"self": link(page), "first": link(1), "last": link(last)}
        if page > 1:
            links["prev"] = link(page - 1)
        if page < last:
            links["next"] = link(page + 1)
        style = site.config["total_style"]
        total_value: Any = total if style == "int" else str(total) if style == "string" else None
        body = {
            "count": len(chunk),
            "total": total_value,
            "_links": links,
            "_embedded": {name: chunk},
        }
        return self._json(body)

    # ---------------------------------------------------------------- read shapes

    def _candidate_out(self, request: Request, site: Site, cand: dict) -> dict:
        out = {k: v for k, v in cand.items() if k != "custom_fields"}
        out["_links"] = {"self": {"href": self._href(request, site, f"/candidates/{cand['id']}")}}
        out["_embedded"] = {"custom_fields": self._custom_values(site, cand)}
        return out

    @staticmethod
    def _custom_values(site: Site, cand: dict) -> list[dict]:
        return [
            {"id": field_id, "value": cand["custom_fields"].get(str(field_id))}
            for field_id in site.custom_fields
        ]

    @staticmethod
    def _status_out(status: dict) -> dict:
        return {
            "id": status["id"],
            "title": status["title"],
            "mapping": status["mapping"],
            "prerequisites": list(status["prerequisites"]),
            "triggers": [
                {"id": t["id"], "title": t["title"], "fire_by_default": t["fire_by_default"]}
                for t in status["triggers"]
            ],
        }

    @staticmethod
    def _pipeline_out(pipeline: dict) -> dict:
        return {k: v for k, v in pipeline.items() if k != "status_history"}

    @staticmethod
    def _get(collection: dict[int, dict], item_id: int) -> dict:
        row = collection.get(item_id)
        if row is None:
            raise ApiError(404, "Not found.")
        return row

    # ---------------------------------------------------------------- validation

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

    def _apply_candidate_fields(
        self, site: Site, cand: dict, body: dict, *, creating: bool
    ) -> None:
        if not isinstance(body, dict):
            raise ApiError(400, "Body must be a JSON object.")
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
            cand["date_modified"] = _now()

    def _is_duplicate(self, site: Site, body: dict) -> dict | None:
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

    # ---------------------------------------------------------------- API: site, candidates

    def api_get_site(self, request: Request, site: Site, body: Any) -> Response:
        return self._json({"id": site.id, "subdomain": site.subdomain, "mode": "live"})

    def api_list_candidates(self, request: Request, site: Site, body: Any) -> Response:
        rows = [self._candidate_out(request, site, c) for c in site.candidates.values()]
        return self._hal_list(request, site, "candidates", rows)

    def api_create_candidate(self, request: Request, site: Site, body: Any) -> Response:
        if request.args.get("check_duplicate", "false").lower() == "true" and isinstance(
            body, dict
        ):
            existing = self._is_duplicate(site, body)
            if existing is not None:
                raise ApiError(
                    409, "A duplicate candidate already exists.", duplicate_id=existing["id"]
                )
        cand = self._new_candidate(site)
        self._apply_candidate_fields(site, cand, body, creating=True)
        site.candidates[cand["id"]] = cand
        return self._json(None, 201, self._location(request, f"/candidates/{cand['id']}"))

    def _new_candidate(self, site: Site) -> dict:
        stamp = _now()
        return {
            "id": self.state.new_id(),
            "first_name": "",
            "last_name": "",
            "middle_name": None,
            "title": None,
            "current_employer": None,
            "source": None,
            "notes": None,
            "website": None,
            "emails": {"primary": None, "secondary": None},
            "phones": [],
            "owner_id": site.default_user_id(),
            "date_created": stamp,
            "date_modified": stamp,
            "custom_fields": {},
        }

    def api_get_candidate(self, request: Request, site: Site, body: Any, id: int) -> Response:
        return self._json(self._candidate_out(request, site, self._get(site.candidates, id)))

    def api_update_candidate(self, request: Request, site: Site, body: Any, id: int) -> Response:
        cand = self._get(site.candidates, id)
        self._apply_candidate_fields(site, cand, body, creating=False)
        return self._json(None, 204)

    def api_delete_candidate(self, request: Request, site: Site, body: Any, id: int) -> Response:
        self._get(site.candidates, id)
        del site.candidates[id]
        for pid in [p for p, row in site.pipelines.items() if row["candidate_id"] == id]:
            del site.pipelines[pid]
        return self._json(None, 204)

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
        matcher = self._compile_filter(site, body)
        rows = [
            self._candidate_out(request, site, c) for c in site.candidates.values() if matcher(c)
        ]
        return self._hal_list(request, site, "candidates", rows)

    SEARCHABLE = {
        "emails.primary": lambda c: c["emails"]["primary"],
        "emails.secondary": lambda c: c["emails"]["secondary"],
        "first_name": lambda c: c["first_name"],
        "last_name": lambda c: c["last_name"],
        "title": lambda c: c["title"],
        "current_employer": lambda c: c["current_employer"],
        "id": lambda c: c["id"],
    }

    def _compile_filter(self, site: Site, node: Any) -> Any:
        if not isinstance(node, dict):
            raise ApiError(400, "Each filter must be an object.")
        for combinator in ("and", "or"):
            if combinator in node:
                parts = node[combinator]
                if not isinstance(parts, list) or not parts:
                    raise ApiError(400, f'"{combinator}" needs a non-empty list.')
                compiled = [self._compile_filter(site, p) for p in parts]
                if combinator == "and":
                    return lambda c: all(m(c) for m in compiled)
                return lambda c: any(m(c) for m in compiled)
        if "not" in node:
            inner = node["not"]
            parts = inner if isinstance(inner, list) else [inner]
            compiled = [self._compile_filter(site, p) for p in parts]
            return lambda c: not any(m(c) for m in compiled)

        field, kind, value = node.get("field"), node.get("filter"), node.get("value")
        getter = self.SEARCHABLE.get(field)
        if getter is None:
            raise ApiError(400, f"Unknown search field {field!r}.")
        fold = field.startswith("emails.") and not site.config["search_case_sensitive"]

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

    # ---------------------------------------------------------------- API: custom fields

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
        cand["date_modified"] = _now()
        return self._json(None, 204)

    # ---------------------------------------------------------------- API: jobs, workflows

    def _job_out(self, request: Request, site: Site, job: dict) -> dict:
        status = site.job_statuses.get(job["status_id"])
        out = dict(job)
        out["_links"] = {"self": {"href": self._href(request, site, f"/jobs/{job['id']}")}}
        out["_embedded"] = {"status": dict(status) if status else None}
        return out

    def api_list_jobs(self, request: Request, site: Site, body: Any) -> Response:
        rows = [self._job_out(request, site, j) for j in site.jobs.values()]
        return self._hal_list(request, site, "jobs", rows)

    def api_get_job(self, request: Request, site: Site, body: Any, id: int) -> Response:
        return self._json(self._job_out(request, site, self._get(site.jobs, id)))

    def api_list_job_statuses(self, request: Request, site: Site, body: Any) -> Response:
        return self._hal_list(request, site, "statuses", list(site.job_statuses.values()))

    def api_list_job_pipelines(self, request: Request, site: Site, body: Any, id: int) -> Response:
        self._get(site.jobs, id)
        rows = [self._pipeline_out(p) for p in site.pipelines.values() if p["job_id"] == id]
        return self._hal_list(request, site, "pipelines", rows)

    def api_list_workflows(self, request: Request, site: Site, body: Any) -> Response:
        return self._hal_list(request, site, "workflows", list(site.workflows.values()))

    def api_get_workflow(self, request: Request, site: Site, body: Any, id: int) -> Response:
        return self._json(self._get(site.workflows, id))

    def _workflow_statuses(self, site: Site, workflow_id: int) -> list[dict]:
        return sorted(
            (s for s in site.statuses.values() if s["workflow_id"] == workflow_id),
            key=lambda s: s["position"],
        )

    def api_list_workflow_statuses(
        self, request: Request, site: Site, body: Any, id: int
    ) -> Response:
        self._get(site.workflows, id)
        rows = [self._status_out(s) for s in self._workflow_statuses(site, id)]
        return self._hal_list(request, site, "statuses", rows)

    # ---------------------------------------------------------------- API: pipelines

    def api_create_pipeline(self, request: Request, site: Site, body: Any) -> Response:
        if not isinstance(body, dict):
            raise ApiError(400, "Body must be a JSON object.")
        candidate_id, job_id = body.get("candidate_id"), body.get("job_id")
        if not isinstance(candidate_id, int) or candidate_id not in site.candidates:
            raise ApiError(422, "candidate_id must name an existing candidate.")
        if not isinstance(job_id, int) or job_id not in site.jobs:
            raise ApiError(422, "job_id must name an existing job.")
        rating = body.get("rating", 0)
        if not isinstance(rating, int) or not 0 <= rating <= 5:
            raise ApiError(422, "rating must be between 0 and 5.")
        for existing in site.pipelines.values():
            if existing["candidate_id"] == candidate_id and existing["job_id"] == job_id:
                code = site.config["duplicate_pipeline_status"]
                if code in (200, 201):
                    return self._json(
                        self._pipeline_out(existing),
                        code,
                        self._location(request, f"/pipelines/{existing['id']}"),
                    )
                raise ApiError(code, "The candidate is already in this job's pipeline.")
        job = site.jobs[job_id]
        statuses = self._workflow_statuses(site, job["workflow_id"])
        first = statuses[0] if statuses else None
        stamp = _now()
        pipeline = {
            "id": self.state.new_id(),
            "candidate_id": candidate_id,
            "job_id": job_id,
            "rating": rating,
            "workflow_id": job["workflow_id"],
            "status_id": first["id"] if first else None,
            "date_created": stamp,
            "date_modified": stamp,
            "status_history": [
                {
                    "status_id": first["id"] if first else None,
                    "title": first["title"] if first else None,
                    "date": stamp,
                    "source": "api",
                    "triggers": [],
                }
            ],
        }
        site.pipelines[pipeline["id"]] = pipeline
        if request.args.get("create_activity", "false").lower() == "true":
            self._record_activity(
                site, candidate_id, "other", job_id, f"Added to pipeline: {job['title']}", stamp
            )
        return self._json(None, 201, self._location(request, f"/pipelines/{pipeline['id']}"))

    def api_get_pipeline(self, request: Request, site: Site, body: Any, id: int) -> Response:
        return self._json(self._pipeline_out(self._get(site.pipelines, id)))

    def api_delete_pipeline(self, request: Request, site: Site, body: Any, id: int) -> Response:
        self._get(site.pipelines, id)
        del site.pipelines[id]
        return self._json(None, 204)

    def api_list_candidate_pipelines(
        self, request: Request, site: Site, body: Any, id: int
    ) -> Response:
        self._get(site.candidates, id)
        rows = [self._pipeline_out(p) for p in site.pipelines.values() if p["candidate_id"] == id]
        return self._hal_list(request, site, "pipelines", rows)

    def api_change_pipeline_status(
        self, request: Request, site: Site, body: Any, id: int
    ) -> Response:
        pipeline = self._get(site.pipelines, id)
        if not isinstance(body, dict):
            raise ApiError(400, "Body must be a JSON object.")
        status_id = body.get("status_id")
        status = site.statuses.get(status_id) if isinstance(status_id, int) else None
        if status is None or status["workflow_id"] != pipeline["workflow_id"]:
            raise ApiError(
                422,
                f"Status {status_id!r} is not part of this pipeline's workflow.",
                errors=[{"field": "status_id", "message": "Not in workflow."}],
            )
        reached = {h["status_id"] for h in pipeline["status_history"]}
        missing = [p for p in status["prerequisites"] if p not in reached]
        if missing:
            titles = ", ".join(site.statuses[p]["title"] for p in missing)
            raise ApiError(
                422,
                f'Status "{status["title"]}" requires the pipeline to have been at: {titles}.',
                errors=[{"field": "status_id", "message": "Prerequisites not met."}],
            )
        fired = self._resolve_triggers(status, body.get("triggers"))
        stamp = _now()
        pipeline["status_id"] = status["id"]
        pipeline["date_modified"] = stamp
        pipeline["status_history"].append(
            {
                "status_id": status["id"],
                "title": status["title"],
                "date": stamp,
                "source": "api",
                "triggers": fired,
            }
        )
        if request.args.get("create_activity", "false").lower() == "true":
            self._record_activity(
                site,
                pipeline["candidate_id"],
                "other",
                pipeline["job_id"],
                f"Status changed to {status['title']}",
                stamp,
            )
        code = site.config["status_change_code"]
        if code == 204:
            return self._json(None, 204)
        return self._json(self._pipeline_out(pipeline), code)

    @staticmethod
    def _resolve_triggers(status: dict, requested: Any) -> list[dict]:
        known = {t["id"]: t for t in status["triggers"]}
        if requested is None:
            # Leaving triggers out fires every trigger that is on by default.
            return [{"id": t["id"], "fired": t["fire_by_default"]} for t in status["triggers"]]
        if not isinstance(requested, list):
            raise ApiError(400, "triggers must be a list.")
        named: dict[int, bool] = {}
        for item in requested:
            if not isinstance(item, dict) or item.get("id") not in known:
                raise ApiError(422, f"Unknown trigger {item!r} for this status.")
            named[item["id"]] = bool(item.get("fire", known[item["id"]]["fire_by_default"]))
        if set(named) != set(known):
            raise ApiError(
                422,
                "When naming triggers, every trigger of the status must be named.",
                errors=[{"field": "triggers", "expected": sorted(known)}],
            )
        return [{"id": tid, "fired": named[tid]} for tid in known]

    # ---------------------------------------------------------------- API: activities

    def _record_activity(
        self,
        site: Site,
        candidate_id: int,
        kind: str,
        regarding_id: int | None,
        notes: str,
        when: str,
    ) -> dict:
        stamp = _now()
        activity = {
            "id": self.state.new_id(),
            "data_item": {"id": candidate_id, "type": "candidate"},
            "date": when,
            "regarding_id": regarding_id,
            "type": kind,
            "notes": notes,
            "entered_by_id": site.default_user_id(),
            "date_created": stamp,
            "date_modified": stamp,
        }
        site.activities[activity["id"]] = activity
        return activity

    def api_create_candidate_activity(
        self, request: Request, site: Site, body: Any, id: int
    ) -> Response:
        self._get(site.candidates, id)
        if not isinstance(body, dict):
            raise ApiError(400, "Body must be a JSON object.")
        kind = body.get("type")
        if kind not in ACTIVITY_TYPES:
            raise ApiError(
                422,
                f"type must be one of {', '.join(sorted(ACTIVITY_TYPES))}.",
                errors=[{"field": "type"}],
            )
        regarding_id = body.get("regarding_id")
        if regarding_id is not None and regarding_id not in site.jobs:
            raise ApiError(422, "regarding_id must name a job of this site.")
        when = body.get("date", _now())
        if _parse_rfc3339(when) is None:
            raise ApiError(422, "date must be an RFC 3339 date-time.", errors=[{"field": "date"}])
        notes = body.get("notes") or ""
        if not isinstance(notes, str):
            raise ApiError(422, "notes must be a string.")
        activity = self._record_activity(site, id, kind, regarding_id, notes, when)
        return self._json(None, 201, self._location(request, f"/activities/{activity['id']}"))

    def api_list_candidate_activities(
        self, request: Request, site: Site, body: Any, id: int
    ) -> Response:
        self._get(site.candidates, id)
        rows = [a for a in site.activities.values() if a["data_item"]["id"] == id]
        return self._hal_list(request, site, "activities", rows)

    def api_get_activity(self, request: Request, site: Site, body: Any, id: int) -> Response:
        return self._json(self._get(site.activities, id))

    # ---------------------------------------------------------------- sites from seeds

    def create_site(self, seed: dict[str, Any] | None = None) -> dict[str, Any]:
        """Build a site from a seed (see sandbox_seed); returns ids by title for tests."""
        seed = copy.deepcopy(seed if seed is not None else sandbox_seed.demo_seed())
        with self.lock:
            state = self.state
            site_id = state.new_id()
            subdomain = seed.get("subdomain") or f"site{site_id}"
            if any(s.subdomain == subdomain for s in state.sites.values()):
                raise ApiError(409, f"Subdomain {subdomain!r} is taken.")
            site = Site(site_id, subdomain, seed.get("config") or {})
            keys = seed.get("api_keys") or [f"sandbox-{secrets.token_hex(12)}"]
            for key in keys:
                if state.site_for_key(key) is not None:
                    raise ApiError(409, f"API key {key!r} belongs to another site.")
            site.api_keys = list(keys)

            for user in seed.get("users") or [{"first_name": "Sandbox", "last_name": "User"}]:
                uid = state.new_id()
                site.users[uid] = {"id": uid, **user}
            job_status_ids: dict[str, int] = {}
            for js in seed.get("job_statuses") or sandbox_seed.DEFAULT_JOB_STATUSES:
                jsid = state.new_id()
                site.job_statuses[jsid] = {
                    "id": jsid,
                    "title": js["title"],
                    "mapping": js["mapping"],
                }
                job_status_ids[js["title"]] = jsid

            workflows_out: dict[str, Any] = {}
            for wf in seed.get("workflows") or []:
                wid = state.new_id()
                site.workflows[wid] = {
                    "id": wid,
                    "title": wf["title"],
                    "is_default": bool(wf.get("is_default")),
                }
                status_ids: dict[str, int] = {}
                trigger_ids: dict[str, dict[str, int]] = {}
                for position, st in enumerate(wf["statuses"]):
                    sid = state.new_id()
                    status_ids[st["title"]] = sid
                    triggers = []
                    for tr in st.get("triggers", []):
                        tid = state.new_id()
                        triggers.append(
                            {
                                "id": tid,
                                "title": tr["title"],
                                "fire_by_default": tr.get("fire_by_default", True),
                            }
                        )
                        trigger_ids.setdefault(st["title"], {})[tr["title"]] = tid
                    site.statuses[sid] = {
                        "id": sid,
                        "workflow_id": wid,
                        "position": position,
                        "title": st["title"],
                        "mapping": st.get("mapping") or st["title"].lower(),
                        "prerequisites": st.get("prerequisites", []),
                        "triggers": triggers,
                    }
                for sid in status_ids.values():
                    status = site.statuses[sid]
                    status["prerequisites"] = [status_ids[t] for t in status["prerequisites"]]
                workflows_out[wf["title"]] = {
                    "id": wid,
                    "statuses": status_ids,
                    "triggers": trigger_ids,
                }
            default_wf = next((w for w in site.workflows.values() if w["is_default"]), None)
            if default_wf is None and site.workflows:
                default_wf = next(iter(site.workflows.values()))
                default_wf["is_default"] = True

            jobs_out: dict[str, int] = {}
            for jb in seed.get("jobs") or []:
                jid = state.new_id()
                wf_title = jb.get("workflow")
                wid = workflows_out[wf_title]["id"] if wf_title else default_wf["id"]
                site.jobs[jid] = {
                    "id": jid,
                    "title": jb["title"],
                    "status_id": job_status_ids[jb.get("status", "Active")],
                    "workflow_id": wid,
                    "company_id": None,
                    "location": jb.get("location", ""),
                    "date_created": _now(),
                    "date_modified": _now(),
                }
                jobs_out[jb["title"]] = jid

            fields_out: dict[str, int] = {}
            for cf in seed.get("custom_fields") or []:
                if cf["type"] not in CUSTOM_FIELD_TYPES:
                    raise ApiError(400, f"Unknown custom field type {cf['type']!r}.")
                fid = state.new_id()
                field: dict[str, Any] = {"type": cf["type"]}
                if "options" in cf:
                    field["selections"] = list(cf["options"])
                site.custom_fields[fid] = {
                    "id": fid,
                    "data_item_type": "candidates",
                    "name": cf["name"],
                    "comment": cf.get("comment", ""),
                    "field": field,
                }
                fields_out[cf["name"]] = fid

            state.sites[site_id] = site
            candidates_out = [self._seed_candidate(site, c) for c in seed.get("candidates") or []]
            self._save_snapshot()
            return {
                "id": site_id,
                "subdomain": subdomain,
                "api_key": keys[0],
                "api_keys": list(keys),
                "jobs": jobs_out,
                "workflows": workflows_out,
                "custom_fields": fields_out,
                "candidates": candidates_out,
                "config": site.config,
            }

    def _seed_candidate(self, site: Site, spec: dict[str, Any]) -> int:
        """Candidates as a recruiter would have typed them into CATS: no API rules apply."""
        cand = self._new_candidate(site)
        emails = spec.get("emails") or {}
        if isinstance(emails, str):
            emails = {"primary": emails}
        cand.update(
            {
                k: spec[k]
                for k in ("first_name", "last_name", "title", "current_employer", "source")
                if k in spec
            }
        )
        cand["emails"] = {"primary": emails.get("primary"), "secondary": emails.get("secondary")}
        by_name = {f["name"]: fid for fid, f in site.custom_fields.items()}
        for name, value in (spec.get("custom_fields") or {}).items():
            cand["custom_fields"][str(by_name[name])] = value
        site.candidates[cand["id"]] = cand
        return cand["id"]

    # ---------------------------------------------------------------- control surface

    def _handle_control(self, request: Request, subpath: str) -> Response:
        adapter = self.control_map.bind("sandbox", path_info=subpath)
        try:
            endpoint, args = adapter.match(subpath, method=request.method)
        except HTTPException as exc:
            return self._json({"message": exc.description}, exc.code or 404)
        body: Any = {}
        raw = request.get_data(as_text=True)
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError:
                return self._json({"message": "Malformed JSON body."}, 400)
        try:
            with self.lock:
                return getattr(self, endpoint)(body, **args)
        except ApiError as exc:
            return self._json({"message": exc.message, **exc.extra}, exc.status)

    def _site(self, site_id: int) -> Site:
        site = self.state.sites.get(site_id)
        if site is None:
            raise ApiError(404, f"No sandbox site {site_id}.")
        return site

    def reset(self) -> None:
        with self.lock:
            self.state = SandboxState()
            self._save_snapshot()

    def ctl_reset(self, body: Any) -> Response:
        self.reset()
        return self._json({"ok": True})

    def ctl_create_site(self, body: Any) -> Response:
        if not isinstance(body, dict):
            raise ApiError(400, "Body must be a seed object.")
        if body.get("seed") == "demo":
            seed = sandbox_seed.demo_seed()
            seed.update({k: v for k, v in body.items() if k != "seed"})
        elif isinstance(body.get("seed"), dict):
            seed = body["seed"]
        elif "seed" in body:
            raise ApiError(400, f"Unknown seed {body['seed']!r}.")
        else:
            seed = body
        return self._json(self.create_site(seed), 201)

    def ctl_list_sites(self, body: Any) -> Response:
        return self._json(
            [
                {"id": s.id, "subdomain": s.subdomain, "api_keys": s.api_keys}
                for s in self.state.sites.values()
            ]
        )

    def snapshot(self, site_id: int) -> dict[str, Any]:
        with self.lock:
            site = self._site(site_id)
            data = site.to_json()
            fields = site.custom_fields
            for cand in data["candidates"]:
                # Keyed by field name too, so tests read values without an id lookup.
                cand["custom_fields_by_name"] = {
                    fields[int(fid)]["name"]: value
                    for fid, value in cand["custom_fields"].items()
                    if int(fid) in fields
                }
            titles = {sid: s["title"] for sid, s in site.statuses.items()}
            for pipeline in data["pipelines"]:
                pipeline["status_title"] = titles.get(pipeline["status_id"])
            data["requests"] = dict(self.state.site_request_counts.get(site_id, {}))
            return data

    def ctl_snapshot(self, body: Any, site_id: int) -> Response:
        return self._json(self.snapshot(site_id))

    def ctl_config(self, body: Any, site_id: int) -> Response:
        site = self._site(site_id)
        unknown = set(body) - set(SITE_CONFIG_DEFAULTS)
        if unknown:
            raise ApiError(400, f"Unknown config keys: {sorted(unknown)}.")
        site.config.update(body)
        return self._json(site.config)

    def ctl_add_key(self, body: Any, site_id: int) -> Response:
        site = self._site(site_id)
        key = body.get("key") or f"sandbox-{secrets.token_hex(12)}"
        if self.state.site_for_key(key) is not None:
            raise ApiError(409, "Key in use.")
        if body.get("rotate"):
            site.api_keys = []
        site.api_keys.append(key)
        return self._json({"api_key": key, "api_keys": site.api_keys}, 201)

    def ctl_revoke_key(self, body: Any, site_id: int, key: str) -> Response:
        site = self._site(site_id)
        if key not in site.api_keys:
            raise ApiError(404, "No such key.")
        site.api_keys.remove(key)
        return self._json(None, 204)

    def ctl_status_by_hand(self, body: Any, site_id: int, pipeline_id: int) -> Response:
        """A recruiter moving a card in the CATS UI: no API rules, no triggers asked for."""
        site = self._site(site_id)
        pipeline = self._get(site.pipelines, pipeline_id)
        status = site.statuses.get(body.get("status_id"))
        if status is None or status["workflow_id"] != pipeline["workflow_id"]:
            raise ApiError(422, "Status not in this pipeline's workflow.")
        stamp = _now()
        pipeline["status_id"] = status["id"]
        pipeline["date_modified"] = stamp
        pipeline["status_history"].append(
            {
                "status_id": status["id"],
                "title": status["title"],
                "date": stamp,
                "source": "ui",
                "triggers": [],
            }
        )
        self._save_snapshot()
        return self._json(self._pipeline_out(pipeline))

    def ctl_delete_custom_field(self, body: Any, site_id: int, field_id: int) -> Response:
        site = self._site(site_id)
        self._get(site.custom_fields, field_id)
        del site.custom_fields[field_id]
        for cand in site.candidates.values():
            cand["custom_fields"].pop(str(field_id), None)
        return self._json(None, 204)

    def ctl_delete_job(self, body: Any, site_id: int, job_id: int) -> Response:
        site = self._site(site_id)
        self._get(site.jobs, job_id)
        del site.jobs[job_id]
        for pid in [p for p, row in site.pipelines.items() if row["job_id"] == job_id]:
            del site.pipelines[pid]
        return self._json(None, 204)

    def ctl_create_candidate(self, body: Any, site_id: int) -> Response:
        site = self._site(site_id)
        return self._json({"id": self._seed_candidate(site, body)}, 201)

    def ctl_requests(self, body: Any) -> Response:
        return self._json(
            {
                "total": sum(self.state.request_counts.values()),
                "by_route": dict(self.state.request_counts),
                "sites": {
                    str(sid): {"total": sum(c.values()), "by_route": dict(c)}
                    for sid, c in self.state.site_request_counts.items()
                },
            }
        )

    def ctl_reset_requests(self, body: Any) -> Response:
        self.state.request_counts.clear()
        self.state.site_request_counts.clear()
        return self._json(None, 204)

    def ctl_add_fault(self, body: Any) -> Response:
        if not isinstance(body, dict) or body.get("action") not in FAULT_ACTIONS:
            raise ApiError(400, f"action must be one of {sorted(FAULT_ACTIONS)}.")
        fault = {
            "method": (body.get("method") or "*").upper(),
            "route": body.get("route") or "*",
            "action": body["action"],
            "count": int(body.get("count", 1)),
            "hang_seconds": float(body.get("hang_seconds", 5)),
            "retry_after": int(body.get("retry_after", 30)),
            "site_id": body.get("site_id"),
            "fired": 0,
        }
        self.state.faults.append(fault)
        return self._json(fault, 201)

    def ctl_list_faults(self, body: Any) -> Response:
        return self._json(self.state.faults)

    def ctl_clear_faults(self, body: Any) -> Response:
        self.state.faults.clear()
        return self._json(None, 204)

    def ctl_save(self, body: Any) -> Response:
        if not self.snapshot_path:
            raise ApiError(400, "The sandbox runs without a snapshot file.")
        self._save_snapshot()
        return self._json({"saved": self.snapshot_path})

    # ---------------------------------------------------------------- snapshot file

    def _save_snapshot(self) -> None:
        if not self.snapshot_path:
            return
        data = {
            "next_id": self.state.next_id,
            "sites": [s.to_json() for s in self.state.sites.values()],
        }
        tmp = self.snapshot_path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(data, fh)
        # Atomic rename so a crash mid-write never leaves a half file to load.
        os.replace(tmp, self.snapshot_path)

    def _load_snapshot(self) -> None:
        try:
            with open(self.snapshot_path) as fh:  # type: ignore[arg-type]
                data = json.load(fh)
        except FileNotFoundError:
            return
        self.state.next_id = data.get("next_id", self.state.next_id)
        for raw in data.get("sites", []):
            site = Site.from_json(raw)
            self.state.sites[site.id] = site

    def has_site(self, subdomain: str) -> dict[str, Any] | None:
        with self.lock:
            for site in self.state.sites.values():
                if site.subdomain == subdomain:
                    return {"id": site.id, "subdomain": site.subdomain, "api_keys": site.api_keys}
        return None


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        logger.debug("%s %s %s", self.command, self.path, code)

    def log_error(self, format: str, *args: Any) -> None:
        logger.debug(format, *args)


class SandboxServer:
    """A running sandbox: `.url` is the CATS_API_URL to use; `.stop()` ends it."""

    def __init__(self, app: SandboxApp, server: BaseWSGIServer) -> None:
        self.app = app
        self.server = server
        self.thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return self.server.server_address[0]

    @property
    def port(self) -> int:
        return self.server.server_port

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return self.root_url + API_PREFIX

    def start_in_thread(self) -> SandboxServer:
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="cats-sandbox", daemon=True
        )
        self.thread.start()
        return self

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self.thread is not None:
            self.thread.join(timeout=5)
        with self.app.lock:
            self.app._save_snapshot()


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    rate_limit: tuple[int, int] = (500, 3600),
    snapshot_path: str | None = None,
    quiet: bool = True,
    app: SandboxApp | None = None,
) -> SandboxServer:
    """Bind a threaded sandbox server (port 0 picks a free one); call start_in_thread() or
    serve_forever() on the result."""
    app = app or SandboxApp(rate_limit=rate_limit, snapshot_path=snapshot_path)
    server = make_server(
        host,
        port,
        app,
        threaded=True,
        request_handler=_QuietHandler if quiet else WSGIRequestHandler,
    )
    return SandboxServer(app, server)


def parse_rate_limit(text: str) -> tuple[int, int]:
    """`"500/3600"` -> (500, 3600)."""
    count, _, window = text.partition("/")
    return int(count), int(window or 3600)
