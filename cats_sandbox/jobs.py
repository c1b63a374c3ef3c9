"""Job orders, their statuses, and the pipeline workflows with their statuses."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request, Response

from .hal import Hal
from .state import Site

RULES = [
    ("/jobs", "GET", "list_jobs"),
    ("/jobs/statuses", "GET", "list_job_statuses"),
    ("/jobs/<int:id>", "GET", "get_job"),
    ("/jobs/<int:id>/pipelines", "GET", "list_job_pipelines"),
    ("/pipelines/workflows", "GET", "list_workflows"),
    ("/pipelines/workflows/<int:id>", "GET", "get_workflow"),
    ("/pipelines/workflows/<int:id>/statuses", "GET", "list_workflow_statuses"),
]


def workflow_statuses(site: Site, workflow_id: int) -> list[dict]:
    """A workflow's statuses in workflow order."""
    return sorted(
        (s for s in site.statuses.values() if s["workflow_id"] == workflow_id),
        key=lambda s: s["position"],
    )


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


class JobsApi(Hal):
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

    def api_list_workflow_statuses(
        self, request: Request, site: Site, body: Any, id: int
    ) -> Response:
        self._get(site.workflows, id)
        rows = [_status_out(s) for s in workflow_statuses(site, id)]
        return self._hal_list(request, site, "statuses", rows)
