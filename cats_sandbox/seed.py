"""Seeds for the CATS sandbox: plain dicts, so tests can build sites with custom data quickly.

A seed names things by title; the sandbox gives them ids when it builds the site, and
`POST /_sandbox/sites` answers with a title -> id map so tests never hard-code ids.
"""

from __future__ import annotations

import copy
from typing import Any

DEMO_API_KEY = "demo-sandbox-key-0001"

# Titles a sync maps to; kept as constants so tests and the demo name the same statuses.
STATUS_MESSAGED = "Messaged"
STATUS_REPLIED = "Replied"
STATUS_INTERESTED = "Interested"
STATUS_NOT_INTERESTED = "Not Interested"


def status(
    title: str,
    *,
    mapping: str | None = None,
    prerequisites: list[str] | None = None,
    triggers: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A workflow status; prerequisites and triggers name other things by title."""
    return {
        "title": title,
        "mapping": mapping or title.lower().replace(" ", "_"),
        "prerequisites": prerequisites or [],
        "triggers": triggers or [],
    }


def trigger(title: str, *, fire_by_default: bool = True) -> dict[str, Any]:
    return {"title": title, "fire_by_default": fire_by_default}


def general_workflow_statuses() -> list[dict[str, Any]]:
    """A realistic "General" workflow, in CATS order."""
    return [
        status("No Contact"),
        status("Contacted"),
        status(
            STATUS_MESSAGED, triggers=[trigger("Notify candidate owner", fire_by_default=False)]
        ),
        status(STATUS_REPLIED, triggers=[trigger("Email recruiter about reply")]),
        status(STATUS_INTERESTED, triggers=[trigger("Email recruiter"), trigger("Create task")]),
        status(STATUS_NOT_INTERESTED),
        status("Qualifying"),
        status("Submitted", triggers=[trigger("Email client contact")]),
        status(
            "Interviewing",
            prerequisites=["Submitted"],
            triggers=[trigger("Email interview confirmation")],
        ),
        status("Offered", prerequisites=["Interviewing"]),
        status("Not in Consideration"),
        status("Client Declined"),
        status("Placed", prerequisites=["Offered"], triggers=[trigger("Email placement notice")]),
    ]


def workflow(title: str, statuses: list[dict[str, Any]], *, is_default: bool = False) -> dict:
    return {"title": title, "is_default": is_default, "statuses": statuses}


def job(
    title: str, *, workflow: str = "General", status: str = "Active", location: str = ""
) -> dict[str, Any]:
    return {"title": title, "workflow": workflow, "status": status, "location": location}


def custom_field(
    name: str, type: str, *, options: list[str] | None = None, comment: str = ""
) -> dict[str, Any]:
    field: dict[str, Any] = {"name": name, "type": type, "comment": comment}
    if options is not None:
        field["options"] = options
    return field


# Job statuses as CATS ships them; `mapping` says whether the job takes candidates.
DEFAULT_JOB_STATUSES = [
    {"title": "Active", "mapping": "open"},
    {"title": "Upcoming", "mapping": "open"},
    {"title": "OnHold", "mapping": "closed"},
    {"title": "Full", "mapping": "closed"},
    {"title": "Closed", "mapping": "closed"},
    {"title": "Canceled", "mapping": "closed"},
]

DEMO_CUSTOM_FIELDS = [
    custom_field("Sequence Title", "text"),
    custom_field("Bounced", "checkbox"),
    custom_field("Unsubscribed", "checkbox"),
    custom_field("First messaged at", "date"),
    custom_field("Last messaged at", "date"),
    custom_field("Responded at", "date"),
    custom_field("Lead Temperature", "dropdown", options=["Cold", "Warm", "Hot"]),
]

DEMO_SEED: dict[str, Any] = {
    "subdomain": "demo",
    "api_keys": [DEMO_API_KEY],
    "users": [{"first_name": "Dana", "last_name": "Recruiter", "email": "dana@demo.example"}],
    "job_statuses": DEFAULT_JOB_STATUSES,
    "workflows": [
        workflow("General", general_workflow_statuses(), is_default=True),
        # Lacks "Replied", so a mapping that needs it fails on jobs using this workflow.
        workflow(
            "Executive Search",
            [
                status("No Contact"),
                status("Contacted"),
                status(STATUS_MESSAGED),
                status(STATUS_INTERESTED),
                status(STATUS_NOT_INTERESTED),
                status("Submitted"),
                status("Placed", prerequisites=["Submitted"]),
            ],
        ),
    ],
    "jobs": [
        job("Senior Backend Engineer", location="Berlin"),
        job("Product Designer", location="Remote"),
        job("VP of Engineering", workflow="Executive Search", location="New York"),
        job("Office Manager", status="Closed", location="London"),
    ],
    "custom_fields": DEMO_CUSTOM_FIELDS,
    "candidates": [],
}


def demo_seed() -> dict[str, Any]:
    return copy.deepcopy(DEMO_SEED)


def make_seed(
    *,
    subdomain: str | None = None,
    api_keys: list[str] | None = None,
    jobs: list[dict[str, Any]] | None = None,
    workflows: list[dict[str, Any]] | None = None,
    custom_fields: list[dict[str, Any]] | None = None,
    candidates: list[dict[str, Any]] | None = None,
    **config: Any,
) -> dict[str, Any]:
    """The demo seed with parts replaced; omitted keys get generated (subdomain, api key).

    Extra keyword arguments are per-site config (see config.py), e.g.
    `search_case_sensitive=True`, `duplicate_pipeline_status=422` or `**VARIANTS["opposite"]`.
    """
    seed = demo_seed()
    seed["subdomain"] = subdomain
    seed["api_keys"] = api_keys
    for key, value in (
        ("jobs", jobs),
        ("workflows", workflows),
        ("custom_fields", custom_fields),
        ("candidates", candidates),
    ):
        if value is not None:
            seed[key] = value
    if config:
        seed["config"] = config
    return seed
