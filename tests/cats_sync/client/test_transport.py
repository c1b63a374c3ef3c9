"""CatsClient's transport against the sandbox over real HTTP: errors, the rate limit,
retries, timeouts and lost answers."""

from __future__ import annotations

import socket
import time

import pytest

from cats_sync.client import (
    CatsAuthError,
    CatsClient,
    CatsNotFound,
    CatsRateLimited,
    CatsRejected,
    CatsUnavailable,
)
from tests.support.cats import make_client, new_candidate, route_count

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
