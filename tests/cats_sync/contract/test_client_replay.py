"""CatsClient against recorded CATS answers (responses/*.json, written from the API notes).

Each test names the recordings it replays; the client talks HTTP through a transport adapter
that serves them, so everything from the request it builds to how it reads the answer is the
production code. test_sandbox_shapes.py checks the sandbox answers in the same shapes.
"""

from __future__ import annotations

import pytest

from cats_sync.client import (
    CatsAuthError,
    CatsNotFound,
    CatsRateLimited,
    CatsRejected,
)

CANDIDATE = 209834207
PIPELINE = 88001
JOB = 77001
WORKFLOW = 66001


# --- connecting and refusals --------------------------------------------------------------------


def test_site_names_the_account_and_the_request_budget(replay):
    cats = replay("site")

    assert cats.get_site() == {"id": 1, "subdomain": "acme", "mode": "live"}

    assert (cats.rate_limit_limit, cats.rate_limit_remaining) == (500, 499)
    [sent] = cats.adapter.sent
    assert sent.url == "https://api.catsone.com/v3/site"
    assert sent.headers["Authorization"] == "Token recorded-key"


def test_an_unknown_key_is_a_permanent_auth_error(replay):
    cats = replay("unauthorized")

    with pytest.raises(CatsAuthError) as caught:
        cats.get_site()

    assert (caught.value.status, caught.value.message) == (401, "Invalid credentials.")
    assert caught.value.permanent is True
    assert cats.rate_limit_remaining is None  # a 401 says nothing about the budget


def test_an_unsupported_content_type_is_a_permanent_rejection_not_retried(replay):
    cats = replay("unsupported_content_type")

    with pytest.raises(CatsRejected) as caught:
        cats.create_candidate(first_name="Ada", last_name="Lovelace", email="ada@example.com")

    assert (caught.value.status, caught.value.message) == (415, "Unsupported Content-Type.")
    assert caught.value.permanent is True
    assert len(cats.adapter.sent) == 1


def test_a_spent_budget_is_a_wait_for_cats_retry_after_not_a_retry(replay):
    cats = replay("rate_limited")

    with pytest.raises(CatsRateLimited) as caught:
        cats.list_jobs()

    assert caught.value.retry_after == 1740
    assert caught.value.permanent is False
    assert cats.rate_limit_remaining == 0
    assert len(cats.adapter.sent) == 1


def test_a_route_cats_does_not_have_is_not_found(replay):
    cats = replay("not_found")

    with pytest.raises(CatsNotFound) as caught:
        cats.request("GET", "/users/current")

    assert caught.value.status == 404


# --- lists --------------------------------------------------------------------------------------


def test_a_list_is_walked_by_its_next_links_whatever_total_and_hrefs_say(replay):
    cats = replay("candidates_page_1", "candidates_page_2", "candidates_page_3")

    rows = list(cats.iter_list("/candidates", embedded="candidates"))

    assert [r["id"] for r in rows] == [CANDIDATE + i for i in range(5)]
    assert [s.url for s in cats.adapter.sent] == [
        "https://api.catsone.com/v3/candidates?per_page=100",
        "https://api.catsone.com/v3/candidates?page=2&per_page=2",  # absolute href
        "https://api.catsone.com/v3/candidates?page=3&per_page=2",  # href a path
    ]


# --- candidates ---------------------------------------------------------------------------------


def test_the_email_lookup_filters_both_fields_and_compares_rows_itself(replay):
    cats = replay("candidate_search")

    found = cats.find_candidates_by_emails(["Ada@example.com"])

    # Other case and the secondary field match; the near miss CATS also answered does not.
    assert [c["id"] for c in found["ada@example.com"]] == [CANDIDATE, CANDIDATE + 1]
    [sent] = cats.adapter.sent
    assert (sent.method, sent.query) == ("POST", {"per_page": "100"})
    assert sent.body == {
        "or": [
            {"field": "emails.primary", "filter": "contains", "value": "ada@example.com"},
            {"field": "emails.secondary", "filter": "contains", "value": "ada@example.com"},
        ]
    }


def test_a_candidate_reads_in_the_read_shape(replay):
    cats = replay("candidate")

    candidate = cats.get_candidate(CANDIDATE)

    assert candidate["emails"] == {"primary": "ada@example.com", "secondary": None}
    assert {v["id"] for v in candidate["_embedded"]["custom_fields"]} == {351005, 351006, 351007}


def test_a_create_takes_the_new_id_from_location_with_an_empty_body(replay):
    cats = replay("candidate_created")

    created = cats.create_candidate(
        first_name="Ada",
        last_name="Lovelace",
        email="ada@example.com",
        custom_fields=[{"id": 351005, "value": "Backend engineers"}],
    )

    assert created == CANDIDATE
    [sent] = cats.adapter.sent
    assert sent.query == {"check_duplicate": "false"}
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.body == {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "emails": [{"email": "ada@example.com", "is_primary": True}],
        "custom_fields": [{"id": 351005, "value": "Backend engineers"}],
    }


def test_a_duplicate_refusal_keeps_cats_message_and_body(replay):
    cats = replay("candidate_duplicate")

    with pytest.raises(CatsRejected) as caught:
        cats.create_candidate(
            first_name="Ada", last_name="Lovelace", email="ada@example.com", check_duplicate=True
        )

    assert caught.value.status == 409
    assert caught.value.body["duplicate_id"] == CANDIDATE
    assert caught.value.message == "A duplicate candidate already exists."


def test_an_update_sends_the_names_read_back_in_the_write_shape(replay):
    cats = replay("candidate", "candidate_updated")

    cats.update_candidate(CANDIDATE, title="CTO", email="ada@new.example")

    get, put = cats.adapter.sent
    assert (get.method, put.method) == ("GET", "PUT")
    assert put.body == {
        "title": "CTO",
        "emails": [{"email": "ada@new.example", "is_primary": True}],
        "first_name": "Ada",
        "last_name": "Lovelace",
    }


# --- custom fields ------------------------------------------------------------------------------


def test_custom_field_definitions_values_and_a_write(replay):
    cats = replay("custom_fields", "candidate_custom_fields", "custom_field_value_set")

    definitions = {f["name"]: f["field"] for f in cats.list_candidate_custom_fields()}
    values = {v["id"]: v["value"] for v in cats.get_candidate_custom_field_values(CANDIDATE)}
    cats.set_candidate_custom_field(CANDIDATE, 351007, "2024-05-02")

    assert definitions["Bounced"] == {"type": "checkbox"}
    assert definitions["Lead Temperature"]["selections"] == ["Cold", "Warm", "Hot"]
    assert values == {351005: "Backend engineers", 351006: False, 351007: "2024-05-02"}
    assert cats.adapter.sent[-1].body == {"value": "2024-05-02"}


# --- pipelines ----------------------------------------------------------------------------------


def test_adding_to_a_job_returns_the_pipeline_its_location_names(replay):
    cats = replay("pipeline_created")

    assert cats.add_candidate_to_job(CANDIDATE, JOB) == PIPELINE

    [sent] = cats.adapter.sent
    assert sent.query == {"create_activity": "false"}
    assert sent.body == {"candidate_id": CANDIDATE, "job_id": JOB}


def test_a_second_add_refused_returns_the_pipeline_already_there(replay):
    cats = replay("pipeline_duplicate", "candidate_pipelines")

    assert cats.add_candidate_to_job(CANDIDATE, JOB) == PIPELINE


def test_a_status_change_names_every_trigger_of_the_status_off(replay):
    cats = replay("pipeline", "workflow_statuses", "status_changed")

    cats.change_pipeline_status(PIPELINE, 66015)

    *_, move = cats.adapter.sent
    assert move.url.endswith(f"/pipelines/{PIPELINE}/status?create_activity=false")
    assert move.body == {
        "status_id": 66015,
        "triggers": [{"id": 66102, "fire": False}, {"id": 66103, "fire": False}],
    }


def test_workflows_and_their_statuses_in_order(replay):
    cats = replay("workflows", "workflow_statuses")

    workflows = cats.list_workflows()
    statuses = cats.list_workflow_statuses(WORKFLOW)

    assert [(w["title"], w["is_default"]) for w in workflows] == [
        ("General", True),
        ("Executive Search", False),
    ]
    assert [s["title"] for s in statuses] == ["No Contact", "Messaged", "Interested"]


# --- jobs and activities ------------------------------------------------------------------------


def test_jobs_and_job_statuses(replay):
    cats = replay("jobs", "job_statuses")

    jobs = cats.list_jobs()
    statuses = {s["id"]: s["mapping"] for s in cats.list_job_statuses()}

    assert [(j["title"], statuses[j["status_id"]]) for j in jobs] == [
        ("Senior Backend Engineer", "open"),
        ("Office Manager", "closed"),
    ]


def test_an_activity_is_created_and_listed(replay):
    cats = replay("activity_created", "activities")

    created = cats.create_activity(
        CANDIDATE, regarding_id=JOB, notes="Email sent: Hello", date="2024-03-01T09:30:00+00:00"
    )
    [listed] = cats.list_candidate_activities(CANDIDATE)

    assert created == listed["id"] == 99001
    assert cats.adapter.sent[0].body == {
        "type": "email",
        "regarding_id": JOB,
        "notes": "Email sent: Hello",
        "date": "2024-03-01T09:30:00+00:00",
    }
