"""Webhooks: the API to register them, and the control surface over their deliveries.

Events are queued by the handlers that make them (`Hal._emit`) and sent by delivery.py.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from werkzeug.wrappers import Request, Response

from .hal import Hal
from .state import ApiError, Site, now

EVENTS = (
    "candidate.created",
    "candidate.updated",
    "candidate.deleted",
    "pipeline.created",
    "pipeline.deleted",
    "pipeline.status_changed",
    "activity.created",
)

RULES = [
    ("/webhooks", "GET", "list_webhooks"),
    ("/webhooks", "POST", "create_webhook"),
    ("/webhooks/<int:id>", "GET", "get_webhook"),
    ("/webhooks/<int:id>", "DELETE", "delete_webhook"),
]

CONTROL_RULES = [
    ("/webhooks/deliveries", "GET", "ctl_deliveries"),
    ("/webhooks/deliveries/<int:n>/replay", "POST", "ctl_replay_delivery"),
    ("/webhooks/drop", "POST", "ctl_drop_deliveries"),
    ("/webhooks/settings", "GET", "ctl_webhook_settings"),
    ("/webhooks/settings", "PATCH", "ctl_webhook_settings"),
]


class WebhooksApi(Hal):
    def _webhook_out(self, request: Request, site: Site, hook: dict) -> dict:
        out = {k: v for k, v in hook.items() if k != "secret"}
        out["_links"] = {"self": {"href": self._href(request, site, f"/webhooks/{hook['id']}")}}
        return out

    def api_create_webhook(self, request: Request, site: Site, body: Any) -> Response:
        body = self._object(body)
        errors = []
        events = body.get("events")
        if (
            not isinstance(events, list)
            or not events
            or any(not isinstance(e, str) or e not in EVENTS for e in events)
        ):
            errors.append({"field": "events", "message": f"events must name some of {EVENTS}."})
        target = body.get("target_url")
        parts = urlsplit(target) if isinstance(target, str) else None
        if parts is None or parts.scheme not in {"http", "https"} or not parts.netloc:
            errors.append({"field": "target_url", "message": "target_url must be an http(s) URL."})
        secret = body.get("secret")
        if not isinstance(secret, str) or not secret:
            errors.append({"field": "secret", "message": "secret is required."})
        if errors:
            raise ApiError(422, " ".join(e["message"] for e in errors), errors=errors)
        hook = {
            "id": self.state.new_id(),
            "events": list(dict.fromkeys(events)),
            "target_url": target,
            "secret": secret,
            "date_created": now(),
        }
        site.webhooks[hook["id"]] = hook
        return self._json(None, 201, self._location(request, f"/webhooks/{hook['id']}"))

    def api_list_webhooks(self, request: Request, site: Site, body: Any) -> Response:
        rows = [self._webhook_out(request, site, h) for h in site.webhooks.values()]
        return self._hal_list(request, site, "webhooks", rows)

    def api_get_webhook(self, request: Request, site: Site, body: Any, id: int) -> Response:
        return self._json(self._webhook_out(request, site, self._get(site.webhooks, id)))

    def api_delete_webhook(self, request: Request, site: Site, body: Any, id: int) -> Response:
        self._get(site.webhooks, id)
        del site.webhooks[id]
        return self._json(None, 204)

    # ---------------------------------------------------------------- control surface

    def ctl_deliveries(self, request: Request, body: Any) -> Response:
        """Every attempt: webhook, event, request id, status or error, time; `?since=n`."""
        try:
            since = int(request.args.get("since", 0))
        except ValueError as exc:
            raise ApiError(400, "since must be an integer.") from exc
        return self._json(self.deliverer.deliveries(since))

    def ctl_replay_delivery(self, request: Request, body: Any, n: int) -> Response:
        """Send attempt `n` again, byte for byte (same body, request id and signature)."""
        entry = self.deliverer.replay(n)
        if entry is None:
            raise ApiError(404, f"No delivery {n}.")
        return self._json(entry, 202)

    def ctl_drop_deliveries(self, request: Request, body: Any) -> Response:
        """Lose the next `count` new deliveries: logged as "dropped", never sent or retried."""
        count = body.get("count", 1) if isinstance(body, dict) else None
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ApiError(400, "count must be a non-negative integer.")
        return self._json({"drop_next": self.deliverer.drop_next(count)})

    def ctl_webhook_settings(self, request: Request, body: Any) -> Response:
        if request.method == "GET":
            return self._json(self.deliverer.configure())
        if not isinstance(body, dict) or set(body) - {"retry_delays", "timeout", "paused"}:
            raise ApiError(400, "Settings are retry_delays, timeout and paused.")
        if not isinstance(body.get("paused", False), bool):
            raise ApiError(400, "paused must be true or false.")
        delays = body.get("retry_delays", [])
        if not isinstance(delays, list) or any(
            isinstance(d, bool) or not isinstance(d, int | float) or d < 0 for d in delays
        ):
            raise ApiError(400, "retry_delays must be a list of seconds.")
        timeout = body.get("timeout", 1)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ApiError(400, "timeout must be a positive number of seconds.")
        return self._json(self.deliverer.configure(**body))
