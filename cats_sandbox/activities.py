"""Activities logged on candidates: email, meeting, calls, text message, other."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from werkzeug.wrappers import Request, Response

from .hal import Hal
from .state import ApiError, Site, now

ACTIVITY_TYPES = {
    "email",
    "meeting",
    "call_talked",
    "call_lvm",
    "call_missed",
    "text_message",
    "other",
}

RULES = [
    ("/candidates/<int:id>/activities", "GET", "list_candidate_activities"),
    ("/candidates/<int:id>/activities", "POST", "create_candidate_activity"),
    ("/activities/<int:id>", "GET", "get_activity"),
]


def is_rfc3339(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return parsed.tzinfo is not None


class ActivitiesApi(Hal):
    def _record_activity(
        self,
        request: Request,
        site: Site,
        candidate_id: int,
        kind: str,
        regarding_id: int | None,
        notes: str,
        when: str,
    ) -> dict:
        stamp = now()
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
        self._emit(
            request,
            site,
            "activity.created",
            path=f"/activities/{activity['id']}",
            embed=("activity", dict(activity)),
            activity_id=activity["id"],
            candidate_id=candidate_id,
            regarding_id=regarding_id,
        )
        return activity

    def api_create_candidate_activity(
        self, request: Request, site: Site, body: Any, id: int
    ) -> Response:
        self._get(site.candidates, id)
        body = self._object(body)
        kind = body.get("type")
        if kind not in ACTIVITY_TYPES:
            raise ApiError(
                422,
                f"type must be one of {', '.join(sorted(ACTIVITY_TYPES))}.",
                errors=[{"field": "type"}],
            )
        regarding_id = body.get("regarding_id")
        if regarding_id is not None and (
            not isinstance(regarding_id, int) or regarding_id not in site.jobs
        ):
            raise ApiError(422, "regarding_id must name a job of this site.")
        when = body.get("date", now())
        if not is_rfc3339(when):
            raise ApiError(422, "date must be an RFC 3339 date-time.", errors=[{"field": "date"}])
        notes = body.get("notes") or ""
        if not isinstance(notes, str):
            raise ApiError(422, "notes must be a string.")
        activity = self._record_activity(request, site, id, kind, regarding_id, notes, when)
        return self._json(None, 201, self._location(request, f"/activities/{activity['id']}"))

    def api_list_candidate_activities(
        self, request: Request, site: Site, body: Any, id: int
    ) -> Response:
        self._get(site.candidates, id)
        rows = [a for a in site.activities.values() if a["data_item"]["id"] == id]
        return self._hal_list(request, site, "activities", rows)

    def api_get_activity(self, request: Request, site: Site, body: Any, id: int) -> Response:
        return self._json(self._get(site.activities, id))
