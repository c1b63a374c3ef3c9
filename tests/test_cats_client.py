"""Contract tests: every CatsClient operation against the CATS sandbox over real HTTP."""

from __future__ import annotations

import socket
import time
from datetime import datetime

import pytest

from cats_sandbox import job
from cats_sync.client import (
    CatsAuthError,
    CatsClient,
    CatsError,
    CatsNotFound,
    CatsRateLimited,
    CatsRejected,
    CatsUnavailable,
)


@pytest.fixture
def site(cats_sandbox):
    return cats_sandbox.create_site()


def make_client(cats_sandbox, api_key: str, **kwargs) -> CatsClient:
    kwargs.setdefault("timeout", (1, 0.3))
    kwargs.setdefault("retry_backoff", 0.01)
    return CatsClient(api_key, base_url=cats_sandbox.url, **kwargs)


@pytest.fixture
def cats(cats_sandbox, site) -> CatsClient:
    return make_client(cats_sandbox, site.api_key)


def new_candidate(cats: CatsClient, email: str = "ada@example.com", **kwargs) -> int:
    return cats.create_candidate(first_name="Ada", last_name="Lovelace", email=email, **kwargs)


def route_count(cats_sandbox, route: str) -> int:
    return cats_sandbox.requests()["by_route"].get(route, 0)


# ---------------------------------------------------------------- transport and errors


def test_get_site_names_the_key_site_and_reports_rate_budget(cats, site):
    answer = cats.get_site()

    assert answer["id"] == site.id
    assert answer["subdomain"] == site.subdomain
    assert cats.rate_limit_limit == 500
    assert cats.rate_limit_remaining == 499
    assert cats.requests_made == 1


def test_base_url_defaults_to_the_setting(settings, cats_sandbox, site):
    settings.CATS_API_URL = cats_sandbox.url
    assert CatsClient(site.api_key).get_site()["id"] == site.id


def test_bad_key_is_a_permanent_auth_error(cats_sandbox, site):
    cats = make_client(cats_sandbox, "not-a-key")

    with pytest.raises(CatsAuthError) as caught:
        cats.get_site()

    assert caught.value.status == 401
    assert caught.value.message == "Invalid credentials."
    assert caught.value.permanent is True
    assert cats.requests_made == 1


def test_unknown_ids_and_routes_raise_not_found(cats):
    with pytest.raises(CatsNotFound):
        cats.get_candidate(999999)
    with pytest.raises(CatsNotFound):
        cats.request("GET", "/users/current")


def test_unsupported_content_type_is_a_permanent_rejection(cats):
    # requests adds a JSON content type for json= bodies; send raw text to see CATS refuse it.
    response = cats.session.post(
        f"{cats.base_url}/candidates", data="x", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    error = cats._error_for(response, is_write=True)
    assert isinstance(error, CatsRejected)
    assert error.status == 415
    assert error.message == "Unsupported Content-Type."


def test_connection_refused_is_retryable_and_no_write_happened():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cats = CatsClient("k", base_url=f"http://127.0.0.1:{port}/v3", max_retries=0)

    with pytest.raises(CatsUnavailable) as caught:
        new_candidate(cats)

    assert caught.value.permanent is False
    assert caught.value.write_may_have_happened is False


# ---------------------------------------------------------------- rate limit


def test_rate_limited_answer_is_raised_with_its_wait_and_not_retried(cats_sandbox, cats, site):
    cats_sandbox.configure(site.id, rate_limit=2)
    cats.get_site()
    cats.get_site()
    assert cats.rate_limit_remaining == 0

    started = time.monotonic()
    with pytest.raises(CatsRateLimited) as caught:
        cats.get_site()

    assert time.monotonic() - started < 1
    assert caught.value.status == 429
    assert 3000 < caught.value.retry_after <= 3600
    assert caught.value.permanent is False
    assert cats.requests_made == 3


def test_rate_limit_fault_carries_retry_after(cats_sandbox, cats):
    cats_sandbox.fault("rate_limit", method="GET", route="/jobs", retry_after=7)

    with pytest.raises(CatsRateLimited) as caught:
        cats.list_jobs()

    assert caught.value.retry_after == 7


# ---------------------------------------------------------------- retries, timeouts, lost answers


def test_get_that_times_out_once_is_retried(cats_sandbox, cats, site):
    cats_sandbox.fault("hang", method="GET", route="/site", hang_seconds=1)

    assert cats.get_site()["id"] == site.id
    assert cats.requests_made == 2


def test_get_that_keeps_failing_gives_up_after_max_retries(cats_sandbox, cats):
    cats_sandbox.fault("error_503", method="GET", route="/jobs", count=5)

    with pytest.raises(CatsUnavailable) as caught:
        cats.list_jobs()

    assert caught.value.status == 503
    assert cats.requests_made == 3  # one try plus max_retries=2


def test_put_is_retried_after_a_server_error(cats_sandbox, cats, site):
    candidate_id = new_candidate(cats)
    cats_sandbox.fault("error_500", method="PUT", route="/candidates/{id}")

    cats.update_candidate(candidate_id, first_name="Ada", last_name="King")

    assert route_count(cats_sandbox, "PUT /candidates/{id}") == 2
    (stored,) = cats_sandbox.snapshot(site.id)["candidates"]
    assert stored["last_name"] == "King"


def test_post_that_times_out_is_not_retried_and_may_have_happened(cats_sandbox, cats, site):
    cats_sandbox.fault("hang", method="POST", route="/candidates", hang_seconds=0.8)

    with pytest.raises(CatsUnavailable) as caught:
        new_candidate(cats)

    assert caught.value.write_may_have_happened is True
    assert route_count(cats_sandbox, "POST /candidates") == 1
    time.sleep(1.0)  # the server finishes the write after the client gave up
    assert len(cats_sandbox.snapshot(site.id)["candidates"]) == 1


def test_post_server_error_is_not_retried(cats_sandbox, cats, site):
    cats_sandbox.fault("error_500", method="POST", route="/candidates")

    with pytest.raises(CatsUnavailable) as caught:
        new_candidate(cats)

    assert caught.value.write_may_have_happened is True
    assert route_count(cats_sandbox, "POST /candidates") == 1
    assert cats_sandbox.snapshot(site.id)["candidates"] == []


def test_dropped_answer_after_create_is_reported_and_findable(cats_sandbox, cats, site):
    cats_sandbox.fault("drop_after_write", method="POST", route="/candidates")

    with pytest.raises(CatsUnavailable) as caught:
        new_candidate(cats, email="lost@example.com")

    assert caught.value.write_may_have_happened is True
    (stored,) = cats_sandbox.snapshot(site.id)["candidates"]
    # The caller's recovery path: look the email up instead of creating again.
    (found,) = cats.find_candidates_by_email("lost@example.com")
    assert found["id"] == stored["id"]


# ---------------------------------------------------------------- candidates


def test_create_candidate_with_custom_fields_inline(cats_sandbox, cats, site):
    fields = site.custom_fields
    candidate_id = cats.create_candidate(
        first_name="Ada",
        last_name="Lovelace",
        email="ada@example.com",
        phone="+4930123",
        title="Engineer",
        current_employer="Analytical Engines",
        source="Interseller",
        custom_fields=[
            {"id": fields["Sequence Title"], "value": "Backend engineers"},
            {"id": fields["Bounced"], "value": False},
            {"id": fields["First messaged at"], "value": "2024-03-01"},
            {"id": fields["Lead Temperature"], "value": "Warm"},
        ],
    )

    assert cats.requests_made == 1
    (stored,) = cats_sandbox.snapshot(site.id)["candidates"]
    assert stored["id"] == candidate_id
    assert stored["emails"] == {"primary": "ada@example.com", "secondary": None}
    assert stored["phones"][0]["number"] == "+4930123"
    assert stored["current_employer"] == "Analytical Engines"
    assert stored["custom_fields_by_name"] == {
        "Sequence Title": "Backend engineers",
        "Bounced": False,
        "First messaged at": "2024-03-01",
        "Lead Temperature": "Warm",
    }
    read = cats.get_candidate(candidate_id)
    assert read["emails"]["primary"] == "ada@example.com"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"first_name": ""}, "first_name is required"),
        ({"email": "not-an-email"}, "Invalid email"),
    ],
)
def test_create_candidate_validation_errors_carry_cats_message(cats, kwargs, fragment):
    args = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", **kwargs}

    with pytest.raises(CatsRejected) as caught:
        cats.create_candidate(**args)

    assert caught.value.status == 422
    assert fragment in caught.value.message
    assert caught.value.permanent is True


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("Lead Temperature", "Lukewarm"),
        ("First messaged at", "2024-03-01T10:00:00Z"),
        ("Bounced", "yes"),
    ],
)
def test_custom_field_values_that_do_not_fit_are_rejected(cats_sandbox, cats, site, field, value):
    with pytest.raises(CatsRejected) as caught:
        new_candidate(cats, custom_fields=[{"id": site.custom_fields[field], "value": value}])

    assert caught.value.status == 422
    assert field in caught.value.message
    assert cats_sandbox.snapshot(site.id)["candidates"] == []


def test_check_duplicate_refuses_a_second_candidate_with_the_same_email(cats):
    new_candidate(cats, email="ada@example.com")

    with pytest.raises(CatsRejected):
        new_candidate(cats, email="ADA@example.com", check_duplicate=True)


def test_update_candidate_fills_in_the_names_cats_requires(cats_sandbox, cats, site):
    candidate_id = new_candidate(cats)

    cats.update_candidate(candidate_id, title="CTO", email="ada@new.example.com")

    (stored,) = cats_sandbox.snapshot(site.id)["candidates"]
    assert (stored["first_name"], stored["last_name"]) == ("Ada", "Lovelace")
    assert stored["title"] == "CTO"
    assert stored["emails"]["primary"] == "ada@new.example.com"
    assert route_count(cats_sandbox, "GET /candidates/{id}") == 1


# ---------------------------------------------------------------- email lookup


@pytest.mark.parametrize("case_sensitive", [False, True])
def test_find_by_emails_matches_primary_and_secondary_ignoring_case(cats_sandbox, case_sensitive):
    site = cats_sandbox.create_site(
        search_case_sensitive=case_sensitive,
        candidates=[
            {"first_name": "A", "last_name": "One", "emails": {"primary": "ada@example.com"}},
            {
                "first_name": "A",
                "last_name": "Two",
                "emails": {"primary": "other@example.com", "secondary": "ada@example.com"},
            },
            {"first_name": "B", "last_name": "Three", "emails": {"primary": "bob@example.com"}},
            {"first_name": "C", "last_name": "Near", "emails": {"primary": "ada@example.co"}},
        ],
    )
    cats = make_client(cats_sandbox, site.api_key)

    found = cats.find_candidates_by_emails(
        [" ADA@Example.com ", "bob@example.com", "nobody@example.com"]
    )

    assert sorted(c["last_name"] for c in found["ada@example.com"]) == ["One", "Two"]
    assert [c["last_name"] for c in found["bob@example.com"]] == ["Three"]
    assert found["nobody@example.com"] == []
    assert cats.requests_made == 1


def test_find_by_emails_compares_rows_itself(cats):
    # Were CATS' search looser than asked, a near miss must still not count as a match.
    rows = {"_embedded": {"candidates": [{"id": 1, "emails": {"primary": "x@example.com"}}]}}
    cats._json = lambda *a, **k: rows  # type: ignore[method-assign]

    assert cats.find_candidates_by_emails(["ada@example.com"]) == {"ada@example.com": []}


def test_find_by_emails_chunks_many_emails_into_few_searches(cats_sandbox, cats):
    emails = [f"person{i}@example.com" for i in range(60)]

    found = cats.find_candidates_by_emails(emails)

    assert set(found) == set(emails)
    assert route_count(cats_sandbox, "POST /candidates/search") == 3


def test_search_pages_past_100_rows(cats_sandbox):
    shared = [
        {"first_name": "P", "last_name": str(i), "emails": {"primary": "shared@example.com"}}
        for i in range(130)
    ]
    site = cats_sandbox.create_site(candidates=shared)
    cats = make_client(cats_sandbox, site.api_key)

    found = cats.find_candidates_by_email("Shared@example.com")

    assert len(found) == 130
    assert route_count(cats_sandbox, "POST /candidates/search") == 2


@pytest.mark.parametrize("link_style", ["absolute", "relative"])
@pytest.mark.parametrize("total_style", ["int", "string", "null"])
def test_lists_page_on_next_links_whatever_the_total(cats_sandbox, link_style, total_style):
    site = cats_sandbox.create_site(
        jobs=[job(f"Job {i}") for i in range(205)],
        link_style=link_style,
        total_style=total_style,
    )
    cats = make_client(cats_sandbox, site.api_key)

    jobs = cats.list_jobs()

    assert [j["title"] for j in jobs] == [f"Job {i}" for i in range(205)]
    assert cats.requests_made == 3


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
