"""The base every handler mixin shares: JSON answers, HAL lists and links, the read shapes
of candidates and pipelines, and webhook events.

`SandboxApp` (app.py) mixes the resource handlers together; each handler runs with the
app's lock held and raises `ApiError` to refuse.
"""

from __future__ import annotations

import json
import math
import threading
from typing import Any

from werkzeug.wrappers import Request, Response

from .delivery import WebhookDeliverer
from .state import ApiError, SandboxState, Site, now

API_PREFIX = "/v3"


class Hal:
    state: SandboxState
    lock: threading.RLock
    deliverer: WebhookDeliverer

    @staticmethod
    def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return Response(
            json.dumps(body) if body is not None else b"",
            status=status,
            headers=headers or {},
            content_type="application/json" if body is not None else None,
        )

    @staticmethod
    def _get(collection: dict[int, dict], item_id: int) -> dict:
        row = collection.get(item_id)
        if row is None:
            raise ApiError(404, "Not found.")
        return row

    @staticmethod
    def _object(body: Any) -> dict:
        if not isinstance(body, dict):
            raise ApiError(400, "Body must be a JSON object.")
        return body

    @staticmethod
    def _flag(request: Request, name: str) -> bool:
        return request.args.get(name, "false").lower() == "true"

    def _href(self, request: Request, site: Site, path: str) -> str:
        if site.config["link_style"] == "relative":
            return API_PREFIX + path
        return request.host_url.rstrip("/") + API_PREFIX + path

    @staticmethod
    def _location(request: Request, path: str) -> dict[str, str]:
        # The notes show Location absolute whatever the link style.
        return {"Location": request.host_url.rstrip("/") + API_PREFIX + path}

    def _hal_list(self, request: Request, site: Site, name: str, rows: list[dict]) -> Response:
        try:
            page = max(1, int(request.args.get("page", 1)))
            per_page = max(1, int(request.args.get("per_page", 25)))
        except ValueError as exc:
            raise ApiError(400, "page and per_page must be integers.") from exc
        per_page = min(per_page, site.config["max_per_page"])
        total = len(rows)
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

    def _emit(
        self,
        request: Request,
        site: Site,
        event: str,
        *,
        path: str,
        embed: tuple[str, dict],
        **ids: Any,
    ) -> None:
        """Queue `event` for each of the site's webhooks that asked for it. Delivery happens on
        the deliverer's thread, after this request's lock is released."""
        hooks = [h for h in site.webhooks.values() if event in h["events"]]
        if not hooks:
            return
        name, record = embed
        payload = {
            "event": event,
            **ids,
            "date": now(),
            "_links": {"self": {"href": self._href(request, site, path)}},
            "_embedded": {name: record},
        }
        body = json.dumps(payload).encode()
        for hook in hooks:
            self.deliverer.enqueue(site.id, hook, event, body)

    # ---------------------------------------------------------------- read shapes and events

    @staticmethod
    def _custom_values(site: Site, cand: dict) -> list[dict]:
        return [
            {"id": field_id, "value": cand["custom_fields"].get(str(field_id))}
            for field_id in site.custom_fields
        ]

    def _candidate_out(self, request: Request, site: Site, cand: dict) -> dict:
        out = {k: v for k, v in cand.items() if k != "custom_fields"}
        out["_links"] = {"self": {"href": self._href(request, site, f"/candidates/{cand['id']}")}}
        out["_embedded"] = {"custom_fields": self._custom_values(site, cand)}
        return out

    @staticmethod
    def _pipeline_out(pipeline: dict) -> dict:
        return {k: v for k, v in pipeline.items() if k != "status_history"}

    def _candidate_event(self, request: Request, site: Site, event: str, cand: dict) -> None:
        self._emit(
            request,
            site,
            event,
            path=f"/candidates/{cand['id']}",
            embed=("candidate", self._candidate_out(request, site, cand)),
            candidate_id=cand["id"],
        )

    def _pipeline_event(
        self, request: Request, site: Site, event: str, pipeline: dict, **extra: Any
    ) -> None:
        self._emit(
            request,
            site,
            event,
            path=f"/pipelines/{pipeline['id']}",
            embed=("pipeline", self._pipeline_out(pipeline)),
            pipeline_id=pipeline["id"],
            candidate_id=pipeline["candidate_id"],
            job_id=pipeline["job_id"],
            status_id=pipeline["status_id"],
            **extra,
        )
