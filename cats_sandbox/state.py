"""What the sandbox holds: sites (CATS accounts) as plain dicts, built from seeds."""

from __future__ import annotations

import copy
import json
import os
import secrets
from collections import Counter, deque
from datetime import UTC, datetime
from typing import Any

from . import seed as seeds
from .config import SITE_CONFIG_DEFAULTS, config_errors

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
# Enough for a long benchmark; older entries fall off the front.
REQUEST_LOG_SIZE = 200_000


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


class Site:
    """One CATS account. Holds plain dicts so a snapshot is a straight JSON dump."""

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
        "webhooks",
    )

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
        self.webhooks: dict[int, dict] = {}

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
        self.request_log: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_SIZE)
        self.faults: list[dict[str, Any]] = []
        self.rate_windows: dict[int, deque[float]] = {}  # site id -> request times

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def site_for_key(self, key: str) -> Site | None:
        for site in self.sites.values():
            if key in site.api_keys:
                return site
        return None


def save_state(state: SandboxState, path: str) -> None:
    data = {"next_id": state.next_id, "sites": [s.to_json() for s in state.sites.values()]}
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(data, fh)
    # Atomic rename so a crash mid-write never leaves a half file to load.
    os.replace(tmp, path)


def load_state(state: SandboxState, path: str) -> None:
    try:
        with open(path) as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return
    state.next_id = data.get("next_id", state.next_id)
    for raw in data.get("sites", []):
        site = Site.from_json(raw)
        state.sites[site.id] = site


# ---------------------------------------------------------------- candidates as stored


def new_candidate(state: SandboxState, site: Site) -> dict:
    stamp = now()
    return {
        "id": state.new_id(),
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


def seed_candidate(state: SandboxState, site: Site, spec: dict[str, Any]) -> dict:
    """A candidate as a recruiter would have typed it into CATS: no API rules apply."""
    cand = new_candidate(state, site)
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
        if name not in by_name:
            raise ApiError(400, f"Unknown custom field {name!r}.")
        cand["custom_fields"][str(by_name[name])] = value
    site.candidates[cand["id"]] = cand
    return cand


# ---------------------------------------------------------------- sites from seeds


def build_site(state: SandboxState, seed: dict[str, Any]) -> dict[str, Any]:
    """Add a site built from a seed (see seed.py); returns ids by title for tests."""
    seed = copy.deepcopy(seed)
    site_id = state.new_id()
    subdomain = seed.get("subdomain") or f"site{site_id}"
    if any(s.subdomain == subdomain for s in state.sites.values()):
        raise ApiError(409, f"Subdomain {subdomain!r} is taken.")
    errors = config_errors(seed.get("config") or {})
    if errors:
        raise ApiError(400, " ".join(errors))
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
    for js in seed.get("job_statuses") or seeds.DEFAULT_JOB_STATUSES:
        jsid = state.new_id()
        site.job_statuses[jsid] = {"id": jsid, "title": js["title"], "mapping": js["mapping"]}
        job_status_ids[js["title"]] = jsid

    workflows_out = {
        wf["title"]: _add_workflow(state, site, wf) for wf in seed.get("workflows") or []
    }
    default_wf = next((w for w in site.workflows.values() if w["is_default"]), None)
    if default_wf is None and site.workflows:
        default_wf = next(iter(site.workflows.values()))
        default_wf["is_default"] = True

    jobs_out: dict[str, int] = {}
    # Job orders are a client company's: the site has one, as CATS always names one.
    company_id = state.new_id()
    for jb in seed.get("jobs") or []:
        jid = state.new_id()
        wf_title = jb.get("workflow")
        wid = workflows_out[wf_title]["id"] if wf_title else default_wf["id"]
        site.jobs[jid] = {
            "id": jid,
            "title": jb["title"],
            "status_id": job_status_ids[jb.get("status", "Active")],
            "workflow_id": wid,
            "company_id": company_id,
            "location": jb.get("location", ""),
            "date_created": now(),
            "date_modified": now(),
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

    candidates_out = [seed_candidate(state, site, c)["id"] for c in seed.get("candidates") or []]
    state.sites[site_id] = site
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


def _add_workflow(state: SandboxState, site: Site, wf: dict[str, Any]) -> dict[str, Any]:
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
    return {"id": wid, "statuses": status_ids, "triggers": trigger_ids}
