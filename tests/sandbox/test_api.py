"""The sandbox's own rules, over raw HTTP: what CATS answers, not what our client makes of it.

Per-site config, the rate limit and the request log are in test_control.py; webhooks in
test_webhooks.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from cats_sandbox import DEMO_API_KEY, SandboxApp, custom_field, make_seed
from tests.support.sandbox import Api

# ---------------------------------------------------------------- transport


def test_create_answers_201_with_absolute_location_and_empty_body(cats_sandbox, api):
    response = api(
        "POST",
        "/candidates",
        {"first_name": "Ada", "last_name": "Lovelace", "emails": [{"email": "a@example.com"}]},
    )

    assert response.status_code == 201
    assert response.content == b""
    assert response.headers["Location"].startswith(cats_sandbox.url + "/candidates/")
    candidate_id = response.headers["Location"].rsplit("/", 1)[1]
    update = api("PUT", f"/candidates/{candidate_id}", {"first_name": "A", "last_name": "L"})
    assert update.status_code == 204


def test_every_answer_has_a_request_id(cats_sandbox, api):
    answers = [
        api("GET", "/site"),
        api("GET", "/nowhere"),
        requests.get(cats_sandbox.url + "/site", timeout=5),
    ]

    assert [a.status_code for a in answers] == [200, 404, 401]
    ids = {a.headers["X-Request-Id"] for a in answers}
    assert len(ids) == 3


def test_bad_or_missing_key_gets_401_invalid_credentials(cats_sandbox):
    for headers in ({}, {"Authorization": "Token nope"}, {"Authorization": "Bearer x"}):
        response = requests.get(cats_sandbox.url + "/site", headers=headers, timeout=5)
        assert response.status_code == 401
        assert response.json() == {"message": "Invalid credentials."}


def test_writes_without_json_content_type_get_415(api):
    response = api("POST", "/candidates", data=b"first_name=Ada")

    assert response.status_code == 415
    assert response.json() == {"message": "Unsupported Content-Type."}


def test_unknown_routes_and_ids_get_404(api):
    assert api("GET", "/users/current").status_code == 404
    assert api("GET", "/candidates/424242").status_code == 404
    assert api("GET", "/pipelines/424242").status_code == 404
    assert api("GET", "/jobs/424242").json() == {"message": "Not found."}


def test_lists_are_hal_with_count_total_links_and_embedded(cats_sandbox, api):
    body = api("GET", "/jobs", params={"per_page": 3}).json()

    assert body["count"] == 3
    assert body["total"] == 4
    assert set(body["_links"]) >= {"self", "next"}
    assert body["_links"]["next"]["href"].startswith(cats_sandbox.url)
    assert len(body["_embedded"]["jobs"]) == 3
    last = api("GET", "/jobs", params={"per_page": 3, "page": 2}).json()
    assert last["count"] == 1
    assert "next" not in last["_links"]


# ---------------------------------------------------------------- sites and keys


def test_a_key_sees_only_its_own_site(cats_sandbox, site, api):
    other = cats_sandbox.create_site()
    other_api = Api(cats_sandbox.url, other.api_key)
    candidate_id = api.new_candidate("ada@example.com")

    assert other_api("GET", "/site").json()["subdomain"] == other.subdomain
    assert other_api("GET", f"/candidates/{candidate_id}").status_code == 404
    assert other_api("GET", "/candidates").json()["count"] == 0
    search = {"field": "emails.primary", "filter": "exactly", "value": "ada@example.com"}
    assert other_api("POST", "/candidates/search", search).json()["count"] == 0
    assert other_api("GET", f"/jobs/{site.jobs['Product Designer']}").status_code == 404
    move = other_api(
        "POST",
        "/pipelines",
        {"candidate_id": candidate_id, "job_id": other.jobs["Product Designer"]},
    )
    assert move.status_code == 422


def test_rotated_and_revoked_keys_stop_working(cats_sandbox, site, api):
    new_key = cats_sandbox.rotate_key(site.id)

    assert api("GET", "/site").status_code == 401
    assert Api(cats_sandbox.url, new_key)("GET", "/site").status_code == 200
    cats_sandbox.revoke_key(site.id, new_key)
    assert Api(cats_sandbox.url, new_key)("GET", "/site").status_code == 401


# ---------------------------------------------------------------- candidates and search


def test_put_requires_both_names(api):
    candidate_id = api.new_candidate()

    response = api("PUT", f"/candidates/{candidate_id}", {"title": "CTO"})

    assert response.status_code == 422
    assert "first_name is required" in response.json()["message"]


def test_read_shape_differs_from_write_shape(site, api):
    candidate_id = api.new_candidate(
        emails=[{"email": "b@example.com"}, {"email": "a@example.com", "is_primary": True}],
        custom_fields=[{"id": site.custom_fields["Bounced"], "value": True}],
    )

    read = api("GET", f"/candidates/{candidate_id}").json()

    assert read["emails"] == {"primary": "a@example.com", "secondary": "b@example.com"}
    values = {v["id"]: v["value"] for v in read["_embedded"]["custom_fields"]}
    assert values[site.custom_fields["Bounced"]] is True
    assert {"owner_id", "date_created", "date_modified"} <= set(read)


def search(api: Api, body: dict) -> list[str]:
    response = api("POST", "/candidates/search", body)
    assert response.status_code == 200, response.text
    return sorted(c["last_name"] for c in response.json()["_embedded"]["candidates"])


@pytest.fixture
def people(cats_sandbox):
    site = cats_sandbox.create_site(
        candidates=[
            {"first_name": "Ada", "last_name": "Lovelace", "emails": {"primary": "Ada@X.com"}},
            {
                "first_name": "Ada",
                "last_name": "Byron",
                "emails": {"primary": "b@x.com", "secondary": "ada@x.com"},
            },
            {"first_name": "Grace", "last_name": "Hopper", "emails": {"primary": "g@x.com"}},
        ]
    )
    return site


def test_search_filters_combine_with_and_or_not(cats_sandbox, people):
    api = Api(cats_sandbox.url, people.api_key)

    assert search(api, {"field": "first_name", "filter": "exactly", "value": "Ada"}) == [
        "Byron",
        "Lovelace",
    ]
    ada_not_byron = {
        "and": [
            {"field": "first_name", "filter": "exactly", "value": "Ada"},
            {"not": [{"field": "last_name", "filter": "exactly", "value": "Byron"}]},
        ]
    }
    assert search(api, ada_not_byron) == ["Lovelace"]
    either = {
        "or": [
            {"field": "emails.primary", "filter": "exactly", "value": "g@x.com"},
            {"field": "emails.secondary", "filter": "exactly", "value": "ada@x.com"},
        ]
    }
    assert search(api, either) == ["Byron", "Hopper"]
    assert search(api, {"field": "last_name", "filter": "contains", "value": "o"}) == [
        "Byron",
        "Hopper",
        "Lovelace",
    ]
    bad = api("POST", "/candidates/search", {"field": "shoe_size", "filter": "exactly"})
    assert bad.status_code == 400


def test_free_text_search_without_query_returns_everyone(cats_sandbox, people):
    api = Api(cats_sandbox.url, people.api_key)

    assert api("GET", "/candidates/search", params={"q": "ada"}).json()["count"] == 3
    assert api("GET", "/candidates/search", params={"query": "ada"}).json()["count"] == 2


# ---------------------------------------------------------------- custom fields


FIELD_CASES = [
    ("text", None, "hello", 5),
    ("textarea", None, "long\ntext", ["x"]),
    ("checkbox", None, False, "false"),
    ("date", None, "2024-02-29", "2023-02-29"),
    ("dropdown", ["A", "B"], "B", "C"),
    ("radio", ["A", "B"], "A", "a"),
    ("checkboxes", ["A", "B"], ["A", "B"], ["A", "Z"]),
    ("number", None, 4.5, "4.5"),
]


@pytest.mark.parametrize(("kind", "options", "good", "bad"), FIELD_CASES)
def test_custom_field_values_are_validated_by_type(cats_sandbox, kind, options, good, bad):
    site = cats_sandbox.create_site(custom_fields=[custom_field("F", kind, options=options)])
    api = Api(cats_sandbox.url, site.api_key)
    candidate_id = api.new_candidate()
    path = f"/candidates/{candidate_id}/custom_fields/{site.custom_fields['F']}"

    assert api("PUT", path, {"value": good}).status_code == 204
    refused = api("PUT", path, {"value": bad})

    assert refused.status_code == 422
    assert '"F"' in refused.json()["message"]
    stored = cats_sandbox.snapshot(site.id)["candidates"][0]["custom_fields_by_name"]
    assert stored == {"F": good}


def test_user_custom_field_takes_a_user_of_the_site(cats_sandbox):
    site = cats_sandbox.create_site(custom_fields=[custom_field("Owner", "user")])
    api = Api(cats_sandbox.url, site.api_key)
    user_id = cats_sandbox.snapshot(site.id)["users"][0]["id"]
    path = f"/candidates/{api.new_candidate()}/custom_fields/{site.custom_fields['Owner']}"

    assert api("PUT", path, {"value": user_id}).status_code == 204
    assert api("PUT", path, {"value": 1}).status_code == 422


def test_unknown_custom_field_on_create_is_refused(api):
    response = api(
        "POST",
        "/candidates",
        {"first_name": "A", "last_name": "B", "custom_fields": [{"id": 1, "value": "x"}]},
    )
    assert response.status_code == 422


# ---------------------------------------------------------------- pipelines and workflows


def test_workflow_statuses_come_in_workflow_order(site, api):
    workflow_id = site.workflows["General"]["id"]

    body = api("GET", f"/pipelines/workflows/{workflow_id}/statuses").json()

    titles = [s["title"] for s in body["_embedded"]["statuses"]]
    assert titles[:6] == [
        "No Contact",
        "Contacted",
        "Messaged",
        "Replied",
        "Interested",
        "Not Interested",
    ]
    assert "Placed" in titles


def status_change(api: Api, pipeline_id: int, status_id: int, **body) -> requests.Response:
    return api("POST", f"/pipelines/{pipeline_id}/status", {"status_id": status_id, **body})


def test_prerequisites_must_be_reached_first(cats_sandbox, site, api):
    pipeline_id = api.new_pipeline(api.new_candidate(), site.jobs["Senior Backend Engineer"])

    refused = status_change(api, pipeline_id, site.status_id("Offered"))
    assert refused.status_code == 422
    assert "Interviewing" in refused.json()["message"]

    for title in ("Submitted", "Interviewing", "Offered", "Placed"):
        assert status_change(api, pipeline_id, site.status_id(title)).status_code == 204
    history = cats_sandbox.snapshot(site.id)["pipelines"][0]["status_history"]
    assert [h["title"] for h in history] == [
        "No Contact",
        "Submitted",
        "Interviewing",
        "Offered",
        "Placed",
    ]


def test_status_must_belong_to_the_jobs_workflow(site, api):
    pipeline_id = api.new_pipeline(api.new_candidate(), site.jobs["VP of Engineering"])

    response = status_change(api, pipeline_id, site.status_id("Replied"))

    assert response.status_code == 422
    assert "workflow" in response.json()["message"]


def test_triggers_fire_by_default_and_must_all_be_named_to_suppress(cats_sandbox, site, api):
    pipeline_id = api.new_pipeline(api.new_candidate(), site.jobs["Senior Backend Engineer"])
    email_recruiter, create_task = site.trigger_ids("Interested")

    partial = status_change(
        api, pipeline_id, site.status_id("Interested"), triggers=[{"id": create_task, "fire": 0}]
    )
    assert partial.status_code == 422

    status_change(api, pipeline_id, site.status_id("Interested"))
    status_change(
        api,
        pipeline_id,
        site.status_id("Interested"),
        triggers=[{"id": email_recruiter, "fire": False}, {"id": create_task, "fire": True}],
    )

    history = cats_sandbox.snapshot(site.id)["pipelines"][0]["status_history"]
    assert history[1]["triggers"] == [
        {"id": email_recruiter, "fired": True},
        {"id": create_task, "fired": True},
    ]
    assert history[2]["triggers"] == [
        {"id": email_recruiter, "fired": False},
        {"id": create_task, "fired": True},
    ]


def test_status_set_by_hand_is_recorded_as_a_recruiter_move(cats_sandbox, site, api):
    pipeline_id = api.new_pipeline(api.new_candidate(), site.jobs["Product Designer"])

    cats_sandbox.set_status_by_hand(site.id, pipeline_id, site.status_id("Placed"))

    assert api("GET", f"/pipelines/{pipeline_id}").json()["status_id"] == site.status_id("Placed")
    (pipeline,) = cats_sandbox.snapshot(site.id)["pipelines"]
    assert pipeline["status_title"] == "Placed"
    assert pipeline["status_history"][-1]["source"] == "ui"


def test_create_activity_option_records_an_activity(cats_sandbox, site, api):
    candidate_id = api.new_candidate()
    pipeline_id = api.new_pipeline(candidate_id, site.jobs["Product Designer"])

    api(
        "POST",
        f"/pipelines/{pipeline_id}/status",
        {"status_id": site.status_id("Contacted")},
        params={"create_activity": "true"},
    )

    (activity,) = cats_sandbox.snapshot(site.id)["activities"]
    assert activity["data_item"] == {"id": candidate_id, "type": "candidate"}
    assert "Contacted" in activity["notes"]


# ---------------------------------------------------------------- control surface


def test_faults_apply_to_the_next_n_matching_requests(cats_sandbox, api):
    cats_sandbox.fault("error_503", method="GET", route="/jobs/{id}", count=2)

    codes = [api("GET", "/jobs/1").status_code for _ in range(3)]
    assert codes == [503, 503, 404]
    assert api("GET", "/site").status_code == 200


def test_drop_after_write_writes_then_closes_without_answer(cats_sandbox, site, api):
    cats_sandbox.fault("drop_after_write", method="POST", route="/candidates")

    with pytest.raises(requests.ConnectionError):
        api("POST", "/candidates", {"first_name": "A", "last_name": "B"})

    assert len(cats_sandbox.snapshot(site.id)["candidates"]) == 1


def test_deleting_a_candidate_or_pipeline_by_hand(cats_sandbox, site, api):
    keep, gone = api.new_candidate("keep@example.com"), api.new_candidate("gone@example.com")
    job_id = site.jobs["Product Designer"]
    kept_pipeline, _ = api.new_pipeline(keep, job_id), api.new_pipeline(gone, job_id)

    cats_sandbox.delete_candidate_by_hand(site.id, gone)
    assert api("GET", f"/candidates/{gone}").status_code == 404
    assert [p["id"] for p in cats_sandbox.snapshot(site.id)["pipelines"]] == [kept_pipeline]

    cats_sandbox.delete_pipeline_by_hand(site.id, kept_pipeline)
    assert api("GET", f"/pipelines/{kept_pipeline}").status_code == 404
    assert api("GET", f"/candidates/{keep}").status_code == 200


def test_deleting_a_job_or_field_makes_it_unknown(cats_sandbox, site, api):
    job_id = site.jobs["Product Designer"]
    cats_sandbox.delete_job(site.id, job_id)

    assert api("GET", f"/jobs/{job_id}").status_code == 404
    move = api("POST", "/pipelines", {"candidate_id": api.new_candidate(), "job_id": job_id})
    assert move.status_code == 422
    cats_sandbox.delete_custom_field(site.id, site.custom_fields["Bounced"])
    body = api("GET", "/candidates/custom_fields").json()
    assert "Bounced" not in {f["name"] for f in body["_embedded"]["custom_fields"]}


def test_reset_forgets_every_site(cats_sandbox, site, api):
    cats_sandbox.reset()

    assert api("GET", "/site").status_code == 401


def test_demo_seed_site(cats_sandbox):
    demo = cats_sandbox.create_site({"seed": "demo"})

    assert demo.subdomain == "demo"
    assert demo.api_key == DEMO_API_KEY
    assert len(demo.jobs) == 4
    assert set(demo.custom_fields) >= {
        "Sequence Title",
        "Bounced",
        "Unsubscribed",
        "First messaged at",
        "Last messaged at",
        "Responded at",
    }
    assert "Replied" not in demo.workflows["Executive Search"]["statuses"]


def test_snapshot_file_survives_a_restart(tmp_path: Path):
    path = str(tmp_path / "cats.json")
    first = SandboxApp(snapshot_path=path)
    made = first.create_site(make_seed(subdomain="keep"))

    second = SandboxApp(snapshot_path=path)

    assert second.snapshot(made["id"])["subdomain"] == "keep"
    assert json.loads(Path(path).read_text())["sites"][0]["api_keys"] == [made["api_key"]]
