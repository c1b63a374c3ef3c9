"""The control surface under /_sandbox: what tests and people do to CATS outside the API.

Sites from seeds, snapshots, per-site config, keys, a recruiter's changes by hand (which send
webhooks as CATS would), request counts and log, faults, and saving the snapshot file. The
same operations are methods for in-process use (`create_site`, `snapshot`, `reset`).
"""

from __future__ import annotations

import html
import itertools
import secrets
from typing import Any

from werkzeug.wrappers import Request, Response

from . import seed as seeds
from .candidates import CandidatesApi
from .config import config_errors
from .pipelines import PipelinesApi
from .state import ApiError, SandboxState, Site, build_site, save_state, seed_candidate

FAULT_ACTIONS = {"error_500", "error_503", "hang", "rate_limit", "drop_after_write"}

CONTROL_RULES = [
    ("/reset", "POST", "ctl_reset"),
    ("/sites", "POST", "ctl_create_site"),
    ("/sites", "GET", "ctl_list_sites"),
    ("/sites/<int:site_id>/snapshot", "GET", "ctl_snapshot"),
    ("/sites/<int:site_id>/config", "PATCH", "ctl_config"),
    ("/sites/<int:site_id>/keys", "POST", "ctl_add_key"),
    ("/sites/<int:site_id>/keys/<key>", "DELETE", "ctl_revoke_key"),
    ("/sites/<int:site_id>/pipelines/<int:pipeline_id>/status", "POST", "ctl_status_by_hand"),
    ("/sites/<int:site_id>/pipelines/<int:pipeline_id>", "DELETE", "ctl_delete_pipeline"),
    ("/sites/<int:site_id>/custom_fields/<int:field_id>", "DELETE", "ctl_delete_custom_field"),
    ("/sites/<int:site_id>/jobs/<int:job_id>", "DELETE", "ctl_delete_job"),
    ("/sites/<int:site_id>/candidates", "POST", "ctl_create_candidate"),
    ("/sites/<int:site_id>/candidates/<int:candidate_id>", "DELETE", "ctl_delete_candidate"),
    ("/requests", "GET", "ctl_requests"),
    ("/requests", "DELETE", "ctl_reset_requests"),
    ("/requests/log", "GET", "ctl_request_log"),
    ("/faults", "POST", "ctl_add_fault"),
    ("/faults", "GET", "ctl_list_faults"),
    ("/faults", "DELETE", "ctl_clear_faults"),
    ("/save", "POST", "ctl_save"),
    # What CATS_CANDIDATE_URL opens: a candidate's page in the CATS web app, for links.
    ("/ui/<subdomain>/candidates/<int:candidate_id>", "GET", "ctl_candidate_page"),
]


class ControlApi(CandidatesApi, PipelinesApi):
    snapshot_path: str | None

    # ---------------------------------------------------------------- in process

    def create_site(self, seed: dict[str, Any] | None = None) -> dict[str, Any]:
        """Build a site from a seed (see seed.py); returns ids by title for tests."""
        with self.lock:
            made = build_site(self.state, seed if seed is not None else seeds.demo_seed())
            self._save_snapshot()
            return made

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

    def reset(self) -> None:
        """Forget every site, count, fault and queued webhook delivery."""
        with self.lock:
            self.state = SandboxState()
            self.deliverer.reset()
            self._save_snapshot()

    def has_site(self, subdomain: str) -> dict[str, Any] | None:
        with self.lock:
            for site in self.state.sites.values():
                if site.subdomain == subdomain:
                    return {"id": site.id, "subdomain": site.subdomain, "api_keys": site.api_keys}
        return None

    def _save_snapshot(self) -> None:
        if self.snapshot_path:
            save_state(self.state, self.snapshot_path)

    def _site(self, site_id: int) -> Site:
        site = self.state.sites.get(site_id)
        if site is None:
            raise ApiError(404, f"No sandbox site {site_id}.")
        return site

    # ---------------------------------------------------------------- sites and keys

    def ctl_reset(self, request: Request, body: Any) -> Response:
        self.reset()
        return self._json({"ok": True})

    def ctl_create_site(self, request: Request, body: Any) -> Response:
        if not isinstance(body, dict):
            raise ApiError(400, "Body must be a seed object.")
        if body.get("seed") == "demo":
            seed = seeds.demo_seed()
            seed.update({k: v for k, v in body.items() if k != "seed"})
        elif isinstance(body.get("seed"), dict):
            seed = body["seed"]
        elif "seed" in body:
            raise ApiError(400, f"Unknown seed {body['seed']!r}.")
        else:
            seed = body
        return self._json(self.create_site(seed), 201)

    def ctl_list_sites(self, request: Request, body: Any) -> Response:
        return self._json(
            [
                {"id": s.id, "subdomain": s.subdomain, "api_keys": s.api_keys}
                for s in self.state.sites.values()
            ]
        )

    def ctl_snapshot(self, request: Request, body: Any, site_id: int) -> Response:
        return self._json(self.snapshot(site_id))

    def ctl_config(self, request: Request, body: Any, site_id: int) -> Response:
        """Change a site's answers to the open questions (config.py documents each key)."""
        site = self._site(site_id)
        errors = config_errors(body)
        if errors:
            raise ApiError(400, " ".join(errors))
        site.config.update(body)
        self._save_snapshot()
        return self._json(site.config)

    def ctl_add_key(self, request: Request, body: Any, site_id: int) -> Response:
        site = self._site(site_id)
        key = body.get("key") or f"sandbox-{secrets.token_hex(12)}"
        if self.state.site_for_key(key) is not None:
            raise ApiError(409, "Key in use.")
        if body.get("rotate"):
            site.api_keys = []
        site.api_keys.append(key)
        self._save_snapshot()
        return self._json({"api_key": key, "api_keys": site.api_keys}, 201)

    def ctl_revoke_key(self, request: Request, body: Any, site_id: int, key: str) -> Response:
        site = self._site(site_id)
        if key not in site.api_keys:
            raise ApiError(404, "No such key.")
        site.api_keys.remove(key)
        self._save_snapshot()
        return self._json(None, 204)

    def ctl_candidate_page(
        self, request: Request, body: Any, subdomain: str, candidate_id: int
    ) -> Response:
        """A candidate's page as the CATS web app shows it (name and emails), so that a link
        from our app can be followed in the demo and in browser tests; 404 like CATS when the
        site or the candidate does not exist."""
        site = next((s for s in self.state.sites.values() if s.subdomain == subdomain), None)
        candidate = site.candidates.get(candidate_id) if site is not None else None
        if candidate is None:
            return Response("<h1>Not found</h1>", status=404, content_type="text/html")
        name = html.escape(f"{candidate['first_name']} {candidate['last_name']}".strip())
        emails = ", ".join(html.escape(e) for e in candidate["emails"].values() if e)
        page = (
            f"<!doctype html><title>{name} - CATS</title>"
            f'<h1 id="candidate-name">{name}</h1>'
            f"<p>Candidate #{candidate_id} on {html.escape(site.subdomain)}</p>"
            f'<p id="candidate-emails">{emails}</p>'
        )
        return Response(page, content_type="text/html")

    # ---------------------------------------------------------------- a recruiter, by hand

    def ctl_status_by_hand(
        self, request: Request, body: Any, site_id: int, pipeline_id: int
    ) -> Response:
        """A recruiter moving a card in the CATS UI: no prerequisites, no triggers asked for."""
        site = self._site(site_id)
        pipeline = self._get(site.pipelines, pipeline_id)
        status = self._workflow_status(site, pipeline, self._object(body).get("status_id"))
        self._set_status(request, site, pipeline, status, source="ui", fired=[])
        self._save_snapshot()
        return self._json(self._pipeline_out(pipeline))

    def ctl_delete_pipeline(
        self, request: Request, body: Any, site_id: int, pipeline_id: int
    ) -> Response:
        self._delete_pipeline(request, self._site(site_id), pipeline_id)
        self._save_snapshot()
        return self._json(None, 204)

    def ctl_create_candidate(self, request: Request, body: Any, site_id: int) -> Response:
        site = self._site(site_id)
        cand = seed_candidate(self.state, site, self._object(body))
        self._candidate_event(request, site, "candidate.created", cand)
        self._save_snapshot()
        return self._json({"id": cand["id"]}, 201)

    def ctl_delete_candidate(
        self, request: Request, body: Any, site_id: int, candidate_id: int
    ) -> Response:
        self._delete_candidate(request, self._site(site_id), candidate_id)
        self._save_snapshot()
        return self._json(None, 204)

    def ctl_delete_custom_field(
        self, request: Request, body: Any, site_id: int, field_id: int
    ) -> Response:
        site = self._site(site_id)
        self._get(site.custom_fields, field_id)
        del site.custom_fields[field_id]
        for cand in site.candidates.values():
            cand["custom_fields"].pop(str(field_id), None)
        self._save_snapshot()
        return self._json(None, 204)

    def ctl_delete_job(self, request: Request, body: Any, site_id: int, job_id: int) -> Response:
        site = self._site(site_id)
        self._get(site.jobs, job_id)
        del site.jobs[job_id]
        for pid in [p for p, row in site.pipelines.items() if row["job_id"] == job_id]:
            self._delete_pipeline(request, site, pid)
        self._save_snapshot()
        return self._json(None, 204)

    # ---------------------------------------------------------------- requests

    def ctl_requests(self, request: Request, body: Any) -> Response:
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

    def ctl_request_log(self, request: Request, body: Any) -> Response:
        """API requests after sequence number `since` (optionally of one `site_id`), oldest
        first, at most `limit`. `next` is the `since` for the following call."""
        try:
            since = int(request.args.get("since", 0))
            limit = int(request.args["limit"]) if "limit" in request.args else None
            site_id = int(request.args["site_id"]) if "site_id" in request.args else None
        except ValueError as exc:
            raise ApiError(400, "since, limit and site_id must be integers.") from exc
        log = self.state.request_log
        # Sequence numbers in the log are consecutive, so skip straight to `since`.
        skip = max(0, since - log[0]["seq"] + 1) if log else 0
        entries = (
            e
            for e in itertools.islice(log, skip, None)
            if site_id is None or e["site_id"] == site_id
        )
        rows = list(itertools.islice(entries, limit))
        return self._json(
            {
                "entries": rows,
                "next": rows[-1]["seq"] if rows else max(since, log[-1]["seq"] if log else 0),
                "oldest": log[0]["seq"] if log else None,
            }
        )

    def ctl_reset_requests(self, request: Request, body: Any) -> Response:
        """Clear the counters and the log (sequence numbers keep counting up)."""
        self.state.request_counts.clear()
        self.state.site_request_counts.clear()
        self.state.request_log.clear()
        return self._json(None, 204)

    # ---------------------------------------------------------------- faults, file

    def ctl_add_fault(self, request: Request, body: Any) -> Response:
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
            "every": max(int(body.get("every", 1)), 1),
            "seen": 0,
            "fired": 0,
        }
        self.state.faults.append(fault)
        return self._json(fault, 201)

    def ctl_list_faults(self, request: Request, body: Any) -> Response:
        return self._json(self.state.faults)

    def ctl_clear_faults(self, request: Request, body: Any) -> Response:
        self.state.faults.clear()
        return self._json(None, 204)

    def ctl_save(self, request: Request, body: Any) -> Response:
        if not self.snapshot_path:
            raise ApiError(400, "The sandbox runs without a snapshot file.")
        self._save_snapshot()
        return self._json({"saved": self.snapshot_path})
