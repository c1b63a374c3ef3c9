"""The WSGI app: auth, routing, the per-account rate limit, faults and the request log.

Handlers live in one mixin per resource (candidates.py, jobs.py, ...), each with its `RULES`;
`SandboxApp` puts them together. One lock guards all state: the sandbox is about fidelity,
not throughput.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import re
import socket
import threading
import time
import uuid
from collections import Counter, deque
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from . import activities, candidates, fields, jobs, pipelines, webhooks
from .control import CONTROL_RULES, ControlApi
from .delivery import WebhookDeliverer
from .hal import API_PREFIX
from .jobs import JobsApi
from .state import ApiError, SandboxState, Site, load_state
from .webhooks import WebhooksApi

CONTROL_PREFIX = "/_sandbox"
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

API_RULES = [
    ("/site", "GET", "get_site"),
    *candidates.RULES,
    *fields.RULES,
    *activities.RULES,
    *jobs.RULES,
    *pipelines.RULES,
    *webhooks.RULES,
]


def _build_map(rules: list[tuple[str, str, str]]) -> Map:
    return Map(
        [Rule(path, methods=[method], endpoint=endpoint) for path, method, endpoint in rules],
        strict_slashes=False,
        merge_slashes=False,
    )


def _route_template(rule: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)


class SandboxApp(ControlApi, WebhooksApi, JobsApi):
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
        self.request_seq = itertools.count(1)
        self.deliverer = WebhookDeliverer(registered=self._has_webhook, gone=self._drop_webhook)
        self.api_map = _build_map(API_RULES)
        self.control_map = _build_map(CONTROL_RULES + webhooks.CONTROL_RULES)
        if snapshot_path:
            load_state(self.state, snapshot_path)

    # ---------------------------------------------------------------- WSGI entry

    def __call__(self, environ: dict, start_response: Any) -> Any:
        request = Request(environ)
        path = request.path
        request_id = uuid.uuid4().hex
        if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
            started = time.monotonic()
            response, site_id, route = self._handle_api(request, path[len(API_PREFIX) :] or "/")
            self._log_request(started, site_id, request.method, route, response, request_id)
        elif path.startswith(CONTROL_PREFIX + "/"):
            response = self._handle_control(request, path[len(CONTROL_PREFIX) :])
        else:
            response = self._json({"message": "Not found."}, 404)
        if response is None:
            # drop_after_write: the write happened; now vanish without an answer.
            self._drop_connection(environ)
            return []
        response.headers["X-Request-Id"] = request_id
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

    def _log_request(
        self,
        started: float,
        site_id: int | None,
        method: str,
        route: str,
        response: Response | None,
        request_id: str,
    ) -> None:
        finished = time.monotonic()
        with self.lock:
            self.state.request_log.append(
                {
                    "seq": next(self.request_seq),
                    "monotonic": started,
                    "time": time.time() - (finished - started),
                    "duration_ms": round((finished - started) * 1000, 3),
                    "site_id": site_id,
                    "method": method,
                    "route": route,
                    # None: the connection was dropped without an answer (a fault).
                    "status": response.status_code if response is not None else None,
                    "request_id": request_id,
                }
            )

    # ---------------------------------------------------------------- API dispatch

    def _handle_api(
        self, request: Request, subpath: str
    ) -> tuple[Response | None, int | None, str]:
        """The answer (None to drop the connection), the site id and the route template."""
        adapter = self.api_map.bind("sandbox", path_info=subpath)
        try:
            rule, args = adapter.match(subpath, method=request.method, return_rule=True)
            endpoint, route = rule.endpoint, _route_template(rule.rule)
        except (MethodNotAllowed, NotFound):
            endpoint, args, route = None, {}, subpath
        key = self._api_key(request)
        with self.lock:
            site = self.state.site_for_key(key) if key else None
            if site is None:
                return self._json({"message": "Invalid credentials."}, 401), None, route
            counted = f"{request.method} {route}"
            self.state.request_counts[counted] += 1
            self.state.site_request_counts.setdefault(site.id, Counter())[counted] += 1

            limit, remaining, retry_after = self._take_rate_slot(site)
            rate_headers = {
                "X-Rate-Limit-Limit": str(limit),
                "X-Rate-Limit-Remaining": str(remaining),
            }
            if retry_after is not None:
                headers = {**rate_headers, "Retry-After": str(retry_after)}
                return self._json({"message": "Too many requests."}, 429, headers), site.id, route
            fault = self._take_fault(request.method, route, subpath, site.id)

        if fault is not None:
            action = fault["action"]
            if action in {"error_500", "error_503", "rate_limit"}:
                return self._fault_answer(fault, rate_headers), site.id, route
            if action == "hang":
                # Sleep outside the lock so other requests keep flowing; then answer as normal,
                # which for a write means it happens after the client gave up.
                time.sleep(float(fault.get("hang_seconds", 5)))

        with self.lock:
            # The site may have been reset or the key revoked while hanging.
            if self.state.site_for_key(key) is not site:
                answer = self._json({"message": "Invalid credentials."}, 401, rate_headers)
                return answer, site.id, route
            response = self._run_api(request, site, endpoint, args)
            for name, value in rate_headers.items():
                response.headers[name] = value
            if request.method in WRITE_METHODS and response.status_code < 400:
                self._save_snapshot()
        if fault is not None and fault["action"] == "drop_after_write":
            return None, site.id, route
        return response, site.id, route

    def _fault_answer(self, fault: dict, rate_headers: dict[str, str]) -> Response:
        if fault["action"] == "error_500":
            return self._json({"message": "Internal server error."}, 500, rate_headers)
        if fault["action"] == "error_503":
            return self._json({"message": "Service unavailable."}, 503, rate_headers)
        headers = {**rate_headers, "Retry-After": str(fault.get("retry_after", 30))}
        return self._json({"message": "Too many requests."}, 429, headers)

    def _body(self, request: Request) -> tuple[Any, Response | None]:
        """The JSON body ({} when empty), or the 400 to answer with."""
        raw = request.get_data(as_text=True)
        if not raw.strip():
            return {}, None
        try:
            return json.loads(raw), None
        except ValueError:
            return None, self._json({"message": "Malformed JSON body."}, 400)

    def _run_api(
        self, request: Request, site: Site, endpoint: str | None, args: dict[str, Any]
    ) -> Response:
        if endpoint is None:
            return self._json({"message": "Not found."}, 404)
        body: Any = None
        if request.method in {"POST", "PUT", "PATCH"}:
            if request.mimetype != "application/json":
                return self._json({"message": "Unsupported Content-Type."}, 415)
            body, refused = self._body(request)
            if refused is not None:
                return refused
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

    def _take_rate_slot(self, site: Site) -> tuple[int, int, int | None]:
        """Rolling window per site (account), shared by its keys; a refused request does not
        use a slot. Returns the limit, what remains, and the wait when refused."""
        limit = site.config["rate_limit"] or self.default_rate_limit
        window_seconds = site.config["rate_window"] or self.rate_window
        now = time.monotonic()
        window = self.state.rate_windows.setdefault(site.id, deque())
        while window and window[0] <= now - window_seconds:
            window.popleft()
        if len(window) >= limit:
            retry_after = max(1, math.ceil(window[0] + window_seconds - now))
            return limit, 0, retry_after
        window.append(now)
        return limit, limit - len(window), None

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
            # `every`: only each n-th matching request misbehaves (1 in 3 failing, say).
            fault["seen"] = fault.get("seen", 0) + 1
            if fault["seen"] % max(int(fault.get("every", 1)), 1):
                continue
            fault["count"] -= 1
            fault["fired"] = fault.get("fired", 0) + 1
            return dict(fault)
        return None

    def api_get_site(self, request: Request, site: Site, body: Any) -> Response:
        return self._json({"id": site.id, "subdomain": site.subdomain, "mode": "live"})

    # ---------------------------------------------------------------- control dispatch

    def _handle_control(self, request: Request, subpath: str) -> Response:
        adapter = self.control_map.bind("sandbox", path_info=subpath)
        try:
            endpoint, args = adapter.match(subpath, method=request.method)
        except HTTPException as exc:
            return self._json({"message": exc.description}, exc.code or 404)
        body, refused = self._body(request)
        if refused is not None:
            return refused
        try:
            with self.lock:
                return getattr(self, endpoint)(request, body, **args)
        except ApiError as exc:
            return self._json({"message": exc.message, **exc.extra}, exc.status)

    # ---------------------------------------------------------------- for the deliverer

    def _has_webhook(self, site_id: int, webhook_id: int) -> bool:
        with self.lock:
            site = self.state.sites.get(site_id)
            return site is not None and webhook_id in site.webhooks

    def _drop_webhook(self, site_id: int, webhook_id: int) -> None:
        """The receiver answered 410 Gone: CATS deletes the webhook."""
        with self.lock:
            site = self.state.sites.get(site_id)
            if site is not None and site.webhooks.pop(webhook_id, None) is not None:
                self._save_snapshot()
