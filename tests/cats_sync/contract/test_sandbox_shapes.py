"""The sandbox answers in the recorded shapes: for each recording, the same request made to the
sandbox gets the same status, the recorded headers and a body with the recorded keys and kinds
of value (not the same values). With test_client_replay.py, this keeps the client, the
recordings and the sandbox from drifting apart without a test noticing.

The sandbox runs as the notes answer their open questions (its defaults); a recording of
another answer (the paging pages) sets the site to that answer first.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from tests.support.recordings import (
    headers_drift,
    load,
    recording_names,
    response_drift,
    route,
    shape,
    shape_drift,
)
from tests.support.sandbox import Api, SandboxHelper, SiteHandle

# A difference the sandbox is known to have, with why it is left: the test fails when it goes
# away, so that this list stays true.
KNOWN_DRIFT: dict[str, dict[str, str]] = {}


def person(i: int, primary: str, secondary: str | None = None) -> dict:
    return {
        "first_name": f"P{i}",
        "last_name": "Person",
        "title": "Engineer",
        "current_employer": "Analytical Engines",
        "emails": {"primary": primary, "secondary": secondary},
        "custom_fields": {"Sequence Title": "Backend engineers", "Bounced": False},
    }


@dataclass
class World:
    """A site of the demo seed holding what the recordings talk about."""

    sandbox: SandboxHelper
    site: SiteHandle
    api: Api
    candidate: int
    pipeline: int

    @classmethod
    def build(cls, sandbox: SandboxHelper) -> World:
        site = sandbox.create_site(
            candidates=[
                person(1, "Ada@Example.com"),
                person(2, "ada.king@example.com", "ADA@example.com"),
            ]
        )
        api = Api(sandbox.url, site.api_key)
        fields = site.custom_fields
        candidate = api.new_candidate(
            "grace@example.com",
            title="Engineer",
            current_employer="Navy",
            custom_fields=[
                {"id": fields["Sequence Title"], "value": "Backend engineers"},
                {"id": fields["Bounced"], "value": False},
                {"id": fields["First messaged at"], "value": "2024-03-01"},
            ],
        )
        pipeline = api.new_pipeline(candidate, site.jobs["Senior Backend Engineer"])
        answer = api(
            "POST",
            f"/candidates/{candidate}/activities",
            {
                "type": "email",
                "regarding_id": site.jobs["Senior Backend Engineer"],
                "notes": "Email sent: Hello",
                "date": "2024-03-01T09:30:00+00:00",
            },
        )
        assert answer.status_code == 201, answer.text
        return cls(sandbox, site, api, candidate, pipeline)

    def page(self, query: str, **config) -> requests.Response:
        """GET /candidates on a site of five people that serves two a page, as `config` says."""
        site = self.sandbox.create_site(
            candidates=[person(i, f"p{i}@example.com") for i in range(5)],
            max_per_page=2,
            **config,
        )
        return Api(self.sandbox.url, site.api_key)("GET", f"/candidates?{query}")


def _rate_limited(w: World) -> requests.Response:
    w.sandbox.configure(w.site.id, rate_limit=1)  # building the world spent more than that
    return w.api("GET", "/jobs")


# The request to the sandbox that matches each recording.
SANDBOX_REQUESTS: dict[str, Callable[[World], requests.Response]] = {
    "site": lambda w: w.api("GET", "/site"),
    "unauthorized": lambda w: Api(w.sandbox.url, "not-a-key")("GET", "/site"),
    "unsupported_content_type": lambda w: w.api(
        "POST", "/candidates", data="x", headers={"Content-Type": "text/plain"}
    ),
    "rate_limited": _rate_limited,
    "not_found": lambda w: w.api("GET", "/users/current"),
    "candidates_page_1": lambda w: w.page("per_page=100"),
    "candidates_page_2": lambda w: w.page(
        "page=2&per_page=2", total_style="string", link_style="relative"
    ),
    "candidates_page_3": lambda w: w.page("page=3&per_page=2", total_style="null"),
    "candidate_search": lambda w: w.api(
        "POST",
        "/candidates/search?per_page=100",
        {
            "or": [
                {"field": f"emails.{f}", "filter": "contains", "value": "ada@example.com"}
                for f in ("primary", "secondary")
            ]
        },
    ),
    "candidate": lambda w: w.api("GET", f"/candidates/{w.candidate}"),
    "candidate_created": lambda w: w.api(
        "POST",
        "/candidates?check_duplicate=false",
        {"first_name": "Ada", "last_name": "Lovelace", "emails": [{"email": "new@example.com"}]},
    ),
    "candidate_duplicate": lambda w: w.api(
        "POST",
        "/candidates?check_duplicate=true",
        {"first_name": "G", "last_name": "H", "emails": [{"email": "grace@example.com"}]},
    ),
    "candidate_updated": lambda w: w.api(
        "PUT", f"/candidates/{w.candidate}", {"first_name": "Grace", "last_name": "Hopper"}
    ),
    "custom_fields": lambda w: w.api("GET", "/candidates/custom_fields"),
    "candidate_custom_fields": lambda w: w.api("GET", f"/candidates/{w.candidate}/custom_fields"),
    "custom_field_value_set": lambda w: w.api(
        "PUT",
        f"/candidates/{w.candidate}/custom_fields/{w.site.custom_fields['Responded at']}",
        {"value": "2024-05-02"},
    ),
    "pipeline_created": lambda w: w.api(
        "POST",
        "/pipelines",
        {"candidate_id": w.candidate, "job_id": w.site.jobs["Product Designer"]},
    ),
    "pipeline_duplicate": lambda w: w.api(
        "POST",
        "/pipelines",
        {"candidate_id": w.candidate, "job_id": w.site.jobs["Senior Backend Engineer"]},
    ),
    "candidate_pipelines": lambda w: w.api("GET", f"/candidates/{w.candidate}/pipelines"),
    "pipeline": lambda w: w.api("GET", f"/pipelines/{w.pipeline}"),
    "workflows": lambda w: w.api("GET", "/pipelines/workflows"),
    "workflow_statuses": lambda w: w.api(
        "GET", f"/pipelines/workflows/{w.site.workflows['General']['id']}/statuses"
    ),
    "status_changed": lambda w: w.api(
        "POST",
        f"/pipelines/{w.pipeline}/status?create_activity=false",
        {
            "status_id": w.site.status_id("Interested"),
            "triggers": [{"id": t, "fire": False} for t in w.site.trigger_ids("Interested")],
        },
    ),
    "jobs": lambda w: w.api("GET", "/jobs"),
    "job_statuses": lambda w: w.api("GET", "/jobs/statuses"),
    "activity_created": lambda w: w.api(
        "POST",
        f"/candidates/{w.candidate}/activities",
        {"type": "email", "regarding_id": None, "notes": "Hi", "date": "2024-03-02T10:00:00Z"},
    ),
    "activities": lambda w: w.api("GET", f"/candidates/{w.candidate}/activities"),
}

RESPONSE_RECORDINGS = [n for n in recording_names() if "response" in load(n)]


@pytest.mark.parametrize("name", RESPONSE_RECORDINGS)
def test_the_sandbox_answers_in_the_recorded_shape(cats_sandbox, name):
    assert name in SANDBOX_REQUESTS, f"say how to ask the sandbox what {name}.json records"
    recorded = load(name)["request"]
    world = World.build(cats_sandbox)

    answer = SANDBOX_REQUESTS[name](world)

    # The same request: method, route (ids aside) and the query values the recording names.
    asked = urlsplit(answer.request.url)
    assert (answer.request.method, route(asked.path)) == (
        recorded["method"],
        route(recorded["path"]),
    )
    assert recorded.get("query", {}).items() <= dict(parse_qsl(asked.query)).items()
    known = KNOWN_DRIFT.get(name, {})
    assert sorted(response_drift(name, answer)) == sorted(known)


def test_a_webhook_delivery_has_the_recorded_headers_payload_and_signature(cats_sandbox, receiver):
    recording = load("webhook_delivery")
    hook, delivery = recording["webhook"], recording["delivery"]
    world = World.build(cats_sandbox)
    registered = world.api(
        "POST",
        "/webhooks",
        {"events": hook["events"], "target_url": receiver.url, "secret": hook["secret"]},
    )
    assert registered.status_code == 201, registered.text

    SANDBOX_REQUESTS["status_changed"](world)
    [got] = receiver.wait_for(1)

    assert headers_drift(delivery["headers"], dict(got["headers"])) == []
    recorded_body = json.loads(delivery["raw_body"])
    assert shape_drift(shape(recorded_body), shape(json.loads(got["body"]))) == []
    for headers, raw in (
        (delivery["headers"], delivery["raw_body"].encode()),
        (got["headers"], got["body"]),
    ):
        digest = hmac.new(
            hook["secret"].encode(), raw + headers["X-Request-Id"].encode(), hashlib.sha256
        ).hexdigest()
        assert headers["X-Signature"] == f"HMAC-SHA256 {digest}"
