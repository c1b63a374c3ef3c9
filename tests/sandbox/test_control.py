"""The sandbox's control: per-site answers to the API notes' open questions (each tested both
ways), the rate limit per account, the request log, and `python -m cats_sandbox`."""

from __future__ import annotations

import ast
import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque

import pytest
import requests

from cats_sandbox import DEMO_API_KEY, SITE_CONFIG_DEFAULTS, VARIANTS, make_seed, serve
from tests.support import ROOT
from tests.support.sandbox import Api


def people(n: int) -> list[dict]:
    return [
        {"first_name": "P", "last_name": f"{i:03}", "emails": {"primary": f"p{i}@example.com"}}
        for i in range(n)
    ]


# ---------------------------------------------------------------- open questions, both ways


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_each_variant_answers_as_its_config_says(cats_sandbox, variant):
    config = VARIANTS[variant]
    site = cats_sandbox.create_site(candidates=people(30), **config)
    api = Api(cats_sandbox.url, site.api_key)
    candidate_id = api.new_candidate("ada@example.com")
    pipeline_id = api.new_pipeline(candidate_id, site.jobs["Product Designer"])
    twin = {"first_name": "Ada", "last_name": "L", "emails": [{"email": "ada@example.com"}]}

    duplicate = api("POST", "/candidates", twin, params={"check_duplicate": "true"})
    again = api(
        "POST",
        "/pipelines",
        {"candidate_id": candidate_id, "job_id": site.jobs["Product Designer"]},
    )
    moved = api(
        "POST", f"/pipelines/{pipeline_id}/status", {"status_id": site.status_id("Contacted")}
    )
    page = api("GET", "/candidates", params={"per_page": 100}).json()

    assert cats_sandbox.snapshot(site.id)["config"] == {**SITE_CONFIG_DEFAULTS, **config}
    assert duplicate.status_code == config["duplicate_candidate_status"]
    assert duplicate.json()["duplicate_id"] == candidate_id
    assert again.status_code == config["duplicate_pipeline_status"]
    assert moved.status_code == config["status_change_code"]
    assert page["count"] == min(31, config["max_per_page"])
    assert page["total"] == {"int": 31, "string": "31", "null": None}[config["total_style"]]
    relative = config["link_style"] == "relative"
    assert page["_links"]["self"]["href"].startswith("/v3/" if relative else cats_sandbox.url)


@pytest.mark.parametrize(
    ("exactly_sensitive", "contains_sensitive"),
    [(False, False), (True, False), (True, True), (False, True)],
)
def test_case_of_emails_in_exactly_and_contains_is_configured_apart(
    cats_sandbox, exactly_sensitive, contains_sensitive
):
    site = cats_sandbox.create_site(
        candidates=[{"first_name": "Ada", "last_name": "L", "emails": {"secondary": "Ada@X.com"}}]
    )
    cats_sandbox.configure(
        site.id,
        search_case_sensitive=exactly_sensitive,
        contains_case_sensitive=contains_sensitive,
    )
    api = Api(cats_sandbox.url, site.api_key)

    def found(kind: str, value: str) -> bool:
        body = {"field": "emails.secondary", "filter": kind, "value": value}
        return api("POST", "/candidates/search", body).json()["count"] == 1

    assert found("exactly", "Ada@X.com") and found("contains", "a@X")
    assert found("exactly", "ada@x.com") is not exactly_sensitive
    assert found("contains", "a@x") is not contains_sensitive


@pytest.mark.parametrize("code", [409, 400, 422])
def test_duplicate_candidate_refusal_names_the_duplicate_whatever_its_status(
    cats_sandbox, site, api, code
):
    cats_sandbox.configure(site.id, duplicate_candidate_status=code)
    first = api.new_candidate("ada@example.com")
    twin = {"first_name": "Ada", "last_name": "B", "emails": [{"email": "ADA@example.com"}]}

    refused = api("POST", "/candidates", twin, params={"check_duplicate": "true"})

    assert refused.status_code == code
    assert refused.json() == {
        "message": "A duplicate candidate already exists.",
        "duplicate_id": first,
    }
    assert api("POST", "/candidates", twin).status_code == 201


@pytest.mark.parametrize("code", [409, 400, 422, 200, 201])
def test_second_pipeline_for_same_candidate_and_job(cats_sandbox, code):
    site = cats_sandbox.create_site(duplicate_pipeline_status=code)
    api = Api(cats_sandbox.url, site.api_key)
    candidate_id = api.new_candidate()
    job_id = site.jobs["Product Designer"]
    pipeline_id = api.new_pipeline(candidate_id, job_id)

    again = api("POST", "/pipelines", {"candidate_id": candidate_id, "job_id": job_id})

    assert again.status_code == code
    if code < 400:
        assert again.json()["id"] == pipeline_id
        assert again.headers["Location"].endswith(f"/pipelines/{pipeline_id}")
    assert len(cats_sandbox.snapshot(site.id)["pipelines"]) == 1


def test_per_page_is_capped_at_100_by_default(cats_sandbox):
    site = cats_sandbox.create_site(candidates=people(120))
    api = Api(cats_sandbox.url, site.api_key)

    body = api("GET", "/candidates", params={"per_page": 500}).json()

    assert body["count"] == 100
    assert "next" in body["_links"]


def test_a_site_may_cap_pages_lower_and_next_links_follow_the_cap(cats_sandbox):
    site = cats_sandbox.create_site(candidates=people(60), max_per_page=25)
    api = Api(cats_sandbox.url, site.api_key)
    href, counts, names = f"{cats_sandbox.url}/candidates?per_page=100", [], []

    while href:
        body = api.session.get(href, timeout=5).json()
        counts.append(body["count"])
        names += [c["last_name"] for c in body["_embedded"]["candidates"]]
        href = body["_links"].get("next", {}).get("href")

    assert counts == [25, 25, 10]
    assert names == [f"{i:03}" for i in range(60)]


@pytest.mark.parametrize(
    "config",
    [
        {"shoe_size": 1},
        {"duplicate_candidate_status": 418},
        {"status_change_code": "204"},
        {"search_case_sensitive": "yes"},
        {"max_per_page": 0},
        {"rate_window": -1},
    ],
)
def test_unknown_config_keys_and_values_are_refused(cats_sandbox, site, config):
    root = f"{cats_sandbox.root}/_sandbox"

    patched = requests.patch(f"{root}/sites/{site.id}/config", json=config, timeout=5)
    seeded = requests.post(f"{root}/sites", json=make_seed(**config), timeout=5)

    assert (patched.status_code, seeded.status_code) == (400, 400)
    assert cats_sandbox.snapshot(site.id)["config"] == SITE_CONFIG_DEFAULTS


# ---------------------------------------------------------------- rate limit


@pytest.fixture
def tight_server():
    server = serve("127.0.0.1", 0, rate_limit=(3, 1)).start_in_thread()
    yield server
    server.stop()


def test_rate_limit_is_a_rolling_window_per_account(tight_server):
    one = tight_server.app.create_site(make_seed())
    two = tight_server.app.create_site(make_seed())
    api, other = Api(tight_server.url, one["api_key"]), Api(tight_server.url, two["api_key"])

    answers = [api("GET", "/site") for _ in range(3)]
    assert [a.headers["X-Rate-Limit-Remaining"] for a in answers] == ["2", "1", "0"]
    assert answers[0].headers["X-Rate-Limit-Limit"] == "3"

    refused = api("GET", "/site")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    assert other("GET", "/site").status_code == 200

    time.sleep(1.05)
    assert api("GET", "/site").status_code == 200


def test_keys_of_one_site_share_its_rate_limit(tight_server):
    made = tight_server.app.create_site(make_seed(api_keys=["key-one", "key-two"]))
    one, two = Api(tight_server.url, "key-one"), Api(tight_server.url, "key-two")

    answers = [one("GET", "/site"), two("GET", "/nowhere"), one("POST", "/candidates", {})]
    refused = two("GET", "/site")

    assert [a.status_code for a in answers] == [200, 404, 422]
    assert [a.headers["X-Rate-Limit-Remaining"] for a in answers] == ["2", "1", "0"]
    assert refused.status_code == 429
    assert refused.headers["X-Rate-Limit-Remaining"] == "0"
    assert refused.headers["Retry-After"] == "1"
    assert tight_server.app.snapshot(made["id"])["requests"]["GET /site"] == 2


def test_rate_limit_and_window_are_configurable_per_site(cats_sandbox, site, api):
    cats_sandbox.configure(site.id, rate_limit=1)

    assert api("GET", "/site").headers["X-Rate-Limit-Limit"] == "1"
    refused = api("GET", "/site")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 3000

    cats_sandbox.configure(site.id, rate_window=1)
    assert api("GET", "/site").headers["Retry-After"] == "1"
    time.sleep(1.05)
    assert api("GET", "/site").status_code == 200


# ---------------------------------------------------------------- request counts and log


def test_request_counts_by_route_template_and_site(cats_sandbox, site, api):
    api("GET", "/site")
    candidate_id = api.new_candidate()
    api("GET", f"/candidates/{candidate_id}")
    api("GET", f"/candidates/{candidate_id}")

    counts = cats_sandbox.requests()

    assert counts["by_route"] == {
        "GET /site": 1,
        "POST /candidates": 1,
        "GET /candidates/{id}": 2,
    }
    assert counts["sites"][str(site.id)]["total"] == 4


def test_request_log_has_time_site_method_route_and_status_of_each_request(cats_sandbox, site, api):
    other = Api(cats_sandbox.url, cats_sandbox.create_site().api_key)
    api("GET", "/site")
    candidate_id = api.new_candidate()
    api("GET", f"/candidates/{candidate_id}")
    other("GET", "/jobs/1")
    requests.get(cats_sandbox.url + "/site", timeout=5)

    entries = cats_sandbox.request_log()["entries"]

    assert [(e["site_id"], e["method"], e["route"], e["status"]) for e in entries] == [
        (site.id, "GET", "/site", 200),
        (site.id, "POST", "/candidates", 201),
        (site.id, "GET", "/candidates/{id}", 200),
        (entries[3]["site_id"], "GET", "/jobs/{id}", 404),
        (None, "GET", "/site", 401),
    ]
    assert entries[3]["site_id"] != site.id
    seqs = [e["seq"] for e in entries]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    assert [e["monotonic"] for e in entries] == sorted(e["monotonic"] for e in entries)
    assert all(e["time"] > 1.7e9 and e["duration_ms"] >= 0 for e in entries)


def test_request_log_since_a_sequence_number_and_by_site(cats_sandbox, site, api):
    api("GET", "/site")
    first = cats_sandbox.request_log()
    api("GET", "/jobs")
    api("GET", "/site")

    newer = cats_sandbox.request_log(since=first["next"])
    assert [e["route"] for e in newer["entries"]] == ["/jobs", "/site"]
    assert cats_sandbox.request_log(since=newer["next"])["entries"] == []
    assert [e["route"] for e in cats_sandbox.request_log(limit=1)["entries"]] == ["/site"]
    assert cats_sandbox.request_log(site_id=site.id + 1)["entries"] == []


def test_clearing_requests_clears_counts_and_log_but_not_the_sequence(cats_sandbox, api):
    api("GET", "/site")
    last = cats_sandbox.request_log()["next"]

    cats_sandbox.clear_requests()

    assert cats_sandbox.requests() == {"total": 0, "by_route": {}, "sites": {}}
    assert cats_sandbox.request_log()["entries"] == []
    api("GET", "/site")
    assert [e["seq"] for e in cats_sandbox.request_log()["entries"]] == [last + 1]


def test_request_log_keeps_only_the_newest_entries(cats_sandbox, api, monkeypatch):
    monkeypatch.setattr(cats_sandbox.app.state, "request_log", deque(maxlen=3))
    for _ in range(5):
        api("GET", "/site")

    log = cats_sandbox.request_log()

    assert len(log["entries"]) == 3
    assert log["oldest"] == log["entries"][0]["seq"] == log["next"] - 2
    assert cats_sandbox.requests()["total"] == 5


# ---------------------------------------------------------------- as a program


def test_python_m_cats_sandbox_serves_the_demo_site():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "cats_sandbox", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        url = f"http://127.0.0.1:{port}/v3/site"
        for _ in range(100):
            try:
                answer = requests.get(
                    url, headers={"Authorization": f"Token {DEMO_API_KEY}"}, timeout=1
                )
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        else:
            pytest.fail("python -m cats_sandbox did not start")
        assert answer.json()["subdomain"] == "demo"
    finally:
        # What honcho sends when `make run` stops; Ctrl-C (SIGINT) ends it the same way.
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=10)[0]
    assert f"Demo site: subdomain=demo api_key={DEMO_API_KEY}" in output
    assert f"CATS_API_URL=http://127.0.0.1:{port}/v3" in output
    assert f"Control surface: http://127.0.0.1:{port}/_sandbox/" in output
    assert process.returncode == 0


def test_production_apps_never_import_the_sandbox():
    root = ROOT
    offenders = []
    for path in [*root.glob("cats_sync/**/*.py"), *root.glob("interseller/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            if any(name.split(".")[0] in {"cats_sandbox", "werkzeug"} for name in names):
                offenders.append(str(path.relative_to(root)))

    assert offenders == []


def test_a_candidates_page_opens_by_subdomain_and_id_as_links_into_cats_do(cats_sandbox, site):
    api = Api(cats_sandbox.url, site.api_key)
    candidate_id = api.new_candidate("page@example.com")
    page = requests.get(
        f"{cats_sandbox.root}/_sandbox/ui/{site.subdomain}/candidates/{candidate_id}", timeout=5
    )
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "Ada Lovelace" in page.text and "page@example.com" in page.text
    missing = f"{cats_sandbox.root}/_sandbox/ui/{site.subdomain}/candidates/{candidate_id + 99}"
    assert requests.get(missing, timeout=5).status_code == 404
    assert (
        requests.get(
            f"{cats_sandbox.root}/_sandbox/ui/nosuchsite/candidates/{candidate_id}", timeout=5
        ).status_code
        == 404
    )
