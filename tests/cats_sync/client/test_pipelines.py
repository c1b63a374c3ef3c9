"""CatsClient's pipelines against the sandbox: one per candidate and job whatever CATS answers
to a second add, and status changes with triggers off."""

from __future__ import annotations

import pytest

from cats_sync.client import CatsRejected
from tests.support.cats import make_client, new_candidate, route_count

# ---------------------------------------------------------------- pipelines


def test_add_candidate_to_job_creates_one_pipeline(cats_sandbox, cats, site):
    candidate_id = new_candidate(cats)
    job_id = site.jobs["Senior Backend Engineer"]

    pipeline_id = cats.add_candidate_to_job(candidate_id, job_id)

    (pipeline,) = cats_sandbox.snapshot(site.id)["pipelines"]
    assert pipeline["id"] == pipeline_id
    assert (pipeline["candidate_id"], pipeline["job_id"]) == (candidate_id, job_id)
    assert cats.get_pipeline(pipeline_id)["job_id"] == job_id
    assert [p["id"] for p in cats.list_candidate_pipelines(candidate_id)] == [pipeline_id]


@pytest.mark.parametrize("answer", [409, 400, 422, 200])
def test_second_add_returns_the_existing_pipeline_whatever_cats_answers(cats_sandbox, answer):
    site = cats_sandbox.create_site(duplicate_pipeline_status=answer)
    cats = make_client(cats_sandbox, site.api_key)
    candidate_id = new_candidate(cats)
    job_id = site.jobs["Product Designer"]
    first = cats.add_candidate_to_job(candidate_id, job_id)

    again = cats.add_candidate_to_job(candidate_id, job_id)

    assert again == first
    assert len(cats_sandbox.snapshot(site.id)["pipelines"]) == 1


def test_add_refused_for_another_reason_is_raised(cats):
    candidate_id = new_candidate(cats)

    with pytest.raises(CatsRejected) as caught:
        cats.add_candidate_to_job(candidate_id, 999999)

    assert "job_id" in caught.value.message


def test_add_whose_answer_was_lost_finds_the_pipeline_it_made(cats_sandbox, cats, site):
    candidate_id = new_candidate(cats)
    cats_sandbox.fault("drop_after_write", method="POST", route="/pipelines")

    pipeline_id = cats.add_candidate_to_job(candidate_id, site.jobs["Product Designer"])

    (pipeline,) = cats_sandbox.snapshot(site.id)["pipelines"]
    assert pipeline["id"] == pipeline_id
    assert route_count(cats_sandbox, "POST /pipelines") == 1


@pytest.fixture
def pipeline(cats, site) -> int:
    candidate_id = new_candidate(cats)
    return cats.add_candidate_to_job(candidate_id, site.jobs["Senior Backend Engineer"])


def last_move(cats_sandbox, site) -> dict:
    (stored,) = cats_sandbox.snapshot(site.id)["pipelines"]
    return stored["status_history"][-1]


def test_status_change_suppresses_triggers_by_default(cats_sandbox, cats, site, pipeline):
    cats.change_pipeline_status(pipeline, site.status_id("Interested"))

    move = last_move(cats_sandbox, site)
    assert move["title"] == "Interested"
    assert len(move["triggers"]) == 2
    assert all(t["fired"] is False for t in move["triggers"])


def test_status_change_with_known_trigger_ids_spends_one_request(
    cats_sandbox, cats, site, pipeline
):
    before = cats.requests_made

    cats.change_pipeline_status(
        pipeline, site.status_id("Replied"), trigger_ids=site.trigger_ids("Replied")
    )

    assert cats.requests_made == before + 1
    assert [t["fired"] for t in last_move(cats_sandbox, site)["triggers"]] == [False]


def test_status_change_can_fire_default_triggers(cats_sandbox, cats, site, pipeline):
    cats.change_pipeline_status(pipeline, site.status_id("Interested"), fire_triggers=True)

    assert all(t["fired"] for t in last_move(cats_sandbox, site)["triggers"])


@pytest.mark.parametrize("code", [204, 200, 201])
def test_status_change_accepts_any_success_code(cats_sandbox, code):
    site = cats_sandbox.create_site(status_change_code=code)
    cats = make_client(cats_sandbox, site.api_key)
    pipeline_id = cats.add_candidate_to_job(new_candidate(cats), site.jobs["Product Designer"])

    cats.change_pipeline_status(pipeline_id, site.status_id("Messaged"))

    assert last_move(cats_sandbox, site)["title"] == "Messaged"


def test_status_outside_the_jobs_workflow_is_rejected(cats_sandbox, cats, site):
    pipeline_id = cats.add_candidate_to_job(new_candidate(cats), site.jobs["VP of Engineering"])

    with pytest.raises(CatsRejected) as caught:
        cats.change_pipeline_status(pipeline_id, site.status_id("Replied"))

    assert caught.value.status == 422
    assert "workflow" in caught.value.message
    assert last_move(cats_sandbox, site)["title"] == "No Contact"


def test_status_with_unmet_prerequisites_is_rejected(cats, site, pipeline):
    with pytest.raises(CatsRejected) as caught:
        cats.change_pipeline_status(pipeline, site.status_id("Interviewing"))

    assert "Submitted" in caught.value.message
