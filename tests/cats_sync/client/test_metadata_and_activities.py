"""CatsClient's workflows, jobs, custom fields and activities against the sandbox."""

from __future__ import annotations

from datetime import datetime

import pytest

from cats_sync.client import (
    CatsAuthError,
    CatsError,
    CatsNotFound,
    CatsRateLimited,
    CatsRejected,
    CatsUnavailable,
)
from tests.support.cats import new_candidate

# ---------------------------------------------------------------- workflows, jobs, fields


def test_workflows_and_their_statuses_in_order(cats, site):
    workflows = {w["title"]: w for w in cats.list_workflows()}
    assert workflows["General"]["is_default"] is True

    statuses = cats.list_workflow_statuses(workflows["General"]["id"])

    titles = [s["title"] for s in statuses]
    assert titles.index("Messaged") < titles.index("Replied") < titles.index("Interested")
    assert titles == list(site.workflows["General"]["statuses"])
    replied = next(s for s in statuses if s["title"] == "Replied")
    assert [t["id"] for t in replied["triggers"]] == site.trigger_ids("Replied")
    executive = cats.list_workflow_statuses(workflows["Executive Search"]["id"])
    assert "Replied" not in [s["title"] for s in executive]


def test_jobs_with_their_status(cats, site):
    statuses = {s["id"]: s for s in cats.list_job_statuses()}
    jobs = cats.list_jobs()

    assert len(jobs) == 4
    open_titles = {j["title"] for j in jobs if statuses[j["status_id"]]["mapping"] == "open"}
    assert "Office Manager" not in open_titles
    assert len(open_titles) == 3
    one = cats.get_job(site.jobs["Product Designer"])
    assert one["workflow_id"] == site.workflows["General"]["id"]


def test_custom_field_definitions_and_values(cats_sandbox, cats, site):
    definitions = {f["name"]: f for f in cats.list_candidate_custom_fields()}
    assert definitions["Bounced"]["field"]["type"] == "checkbox"
    assert definitions["Responded at"]["field"]["type"] == "date"
    candidate_id = new_candidate(cats)

    cats.set_candidate_custom_field(candidate_id, site.custom_fields["Responded at"], "2024-05-02")

    values = {v["id"]: v["value"] for v in cats.get_candidate_custom_field_values(candidate_id)}
    assert values[site.custom_fields["Responded at"]] == "2024-05-02"
    (stored,) = cats_sandbox.snapshot(site.id)["candidates"]
    assert stored["custom_fields_by_name"]["Responded at"] == "2024-05-02"
    with pytest.raises(CatsRejected):
        cats.set_candidate_custom_field(candidate_id, site.custom_fields["Unsubscribed"], "no")


def test_setting_a_deleted_custom_field_is_not_found(cats_sandbox, cats, site):
    candidate_id = new_candidate(cats)
    cats_sandbox.delete_custom_field(site.id, site.custom_fields["Bounced"])

    with pytest.raises(CatsNotFound):
        cats.set_candidate_custom_field(candidate_id, site.custom_fields["Bounced"], True)


# ---------------------------------------------------------------- activities


def test_activities_are_created_and_listed(cats_sandbox, cats, site):
    candidate_id = new_candidate(cats)
    job_id = site.jobs["Product Designer"]

    activity_id = cats.create_activity(
        candidate_id,
        regarding_id=job_id,
        notes="Step 1 sent: Hello",
        date=datetime(2024, 3, 1, 9, 30),
    )

    (listed,) = cats.list_candidate_activities(candidate_id)
    assert listed["id"] == activity_id
    assert listed["type"] == "email"
    assert listed["regarding_id"] == job_id
    assert listed["date"] == "2024-03-01T09:30:00+00:00"
    assert cats_sandbox.snapshot(site.id)["activities"][0]["notes"] == "Step 1 sent: Hello"


def test_activity_of_an_unknown_type_is_rejected(cats):
    with pytest.raises(CatsRejected):
        cats.create_activity(new_candidate(cats), type="call", notes="x", date="2024-03-01")


def test_every_error_is_a_cats_error():
    for error in (CatsAuthError, CatsNotFound, CatsRejected, CatsRateLimited, CatsUnavailable):
        assert issubclass(error, CatsError)
