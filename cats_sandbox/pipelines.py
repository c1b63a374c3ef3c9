"""Pipelines (a candidate on a job): add, read, delete, and status changes with triggers."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request, Response

from .activities import ActivitiesApi
from .jobs import workflow_statuses
from .state import ApiError, Site, now

RULES = [
    ("/pipelines", "POST", "create_pipeline"),
    ("/pipelines/<int:id>", "GET", "get_pipeline"),
    ("/pipelines/<int:id>", "DELETE", "delete_pipeline"),
    ("/pipelines/<int:id>/status", "POST", "change_pipeline_status"),
    ("/candidates/<int:id>/pipelines", "GET", "list_candidate_pipelines"),
]


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


class PipelinesApi(ActivitiesApi):
    def api_create_pipeline(self, request: Request, site: Site, body: Any) -> Response:
        body = self._object(body)
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
        statuses = workflow_statuses(site, job["workflow_id"])
        first = statuses[0] if statuses else None
        stamp = now()
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
        self._pipeline_event(request, site, "pipeline.created", pipeline)
        if self._flag(request, "create_activity"):
            notes = f"Added to pipeline: {job['title']}"
            self._record_activity(request, site, candidate_id, "other", job_id, notes, stamp)
        return self._json(None, 201, self._location(request, f"/pipelines/{pipeline['id']}"))

    def api_get_pipeline(self, request: Request, site: Site, body: Any, id: int) -> Response:
        return self._json(self._pipeline_out(self._get(site.pipelines, id)))

    def api_delete_pipeline(self, request: Request, site: Site, body: Any, id: int) -> Response:
        self._delete_pipeline(request, site, id)
        return self._json(None, 204)

    def _delete_pipeline(self, request: Request, site: Site, id: int) -> None:
        self._get(site.pipelines, id)
        self._pipeline_event(request, site, "pipeline.deleted", site.pipelines.pop(id))

    def api_list_candidate_pipelines(
        self, request: Request, site: Site, body: Any, id: int
    ) -> Response:
        self._get(site.candidates, id)
        rows = [self._pipeline_out(p) for p in site.pipelines.values() if p["candidate_id"] == id]
        return self._hal_list(request, site, "pipelines", rows)

    def _workflow_status(self, site: Site, pipeline: dict, status_id: Any) -> dict:
        status = site.statuses.get(status_id) if isinstance(status_id, int) else None
        if status is None or status["workflow_id"] != pipeline["workflow_id"]:
            raise ApiError(
                422,
                f"Status {status_id!r} is not part of this pipeline's workflow.",
                errors=[{"field": "status_id", "message": "Not in workflow."}],
            )
        return status

    def _set_status(
        self,
        request: Request,
        site: Site,
        pipeline: dict,
        status: dict,
        *,
        source: str,
        fired: list[dict],
    ) -> None:
        """Move the pipeline, through the API ("api") or by a recruiter in CATS ("ui")."""
        previous = pipeline["status_id"]
        stamp = now()
        pipeline["status_id"] = status["id"]
        pipeline["date_modified"] = stamp
        pipeline["status_history"].append(
            {
                "status_id": status["id"],
                "title": status["title"],
                "date": stamp,
                "source": source,
                "triggers": fired,
            }
        )
        self._pipeline_event(
            request, site, "pipeline.status_changed", pipeline, previous_status_id=previous
        )

    def api_change_pipeline_status(
        self, request: Request, site: Site, body: Any, id: int
    ) -> Response:
        pipeline = self._get(site.pipelines, id)
        body = self._object(body)
        status = self._workflow_status(site, pipeline, body.get("status_id"))
        reached = {h["status_id"] for h in pipeline["status_history"]}
        missing = [p for p in status["prerequisites"] if p not in reached]
        if missing:
            titles = ", ".join(site.statuses[p]["title"] for p in missing)
            raise ApiError(
                422,
                f'Status "{status["title"]}" requires the pipeline to have been at: {titles}.',
                errors=[{"field": "status_id", "message": "Prerequisites not met."}],
            )
        fired = _resolve_triggers(status, body.get("triggers"))
        self._set_status(request, site, pipeline, status, source="api", fired=fired)
        if self._flag(request, "create_activity"):
            self._record_activity(
                request,
                site,
                pipeline["candidate_id"],
                "other",
                pipeline["job_id"],
                f"Status changed to {status['title']}",
                pipeline["date_modified"],
            )
        code = site.config["status_change_code"]
        if code == 204:
            return self._json(None, 204)
        return self._json(self._pipeline_out(pipeline), code)
