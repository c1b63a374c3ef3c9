"""The sandbox's webhooks: registration over the API, and signed deliveries to a real local
receiver, made by API calls and by a recruiter's changes by hand."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from datetime import datetime

import pytest

from tests.support.sandbox import Api, Receiver

SECRET = "s3cret-for-tests"


def register(api: Api, receiver: Receiver, *events: str) -> int:
    body = {"events": list(events), "target_url": receiver.url, "secret": SECRET}
    answer = api("POST", "/webhooks", body)
    assert answer.status_code == 201, answer.text
    return int(answer.headers["Location"].rsplit("/", 1)[1])


# ---------------------------------------------------------------- registering


def test_register_list_read_and_delete_a_webhook(cats_sandbox, api, receiver):
    events = ["candidate.created", "pipeline.status_changed"]
    created = api(
        "POST", "/webhooks", {"events": events, "target_url": receiver.url, "secret": "x"}
    )
    assert (created.status_code, created.content) == (201, b"")
    hook_id = int(created.headers["Location"].rsplit("/", 1)[1])
    assert created.headers["Location"] == f"{cats_sandbox.url}/webhooks/{hook_id}"

    (listed,) = api("GET", "/webhooks").json()["_embedded"]["webhooks"]
    read = api("GET", f"/webhooks/{hook_id}").json()

    assert listed == read
    assert (read["id"], read["events"], read["target_url"]) == (hook_id, events, receiver.url)
    assert "secret" not in read
    assert api("DELETE", f"/webhooks/{hook_id}").status_code == 204
    assert api("GET", f"/webhooks/{hook_id}").status_code == 404
    assert api("GET", "/webhooks").json()["count"] == 0


@pytest.mark.parametrize(
    "change",
    [
        {"events": []},
        {"events": ["candidate.merged"]},
        {"events": "candidate.created"},
        {"target_url": "ftp://example.com/hook"},
        {"target_url": "/relative/hook"},
        {"secret": ""},
        {"secret": None},
    ],
)
def test_registration_is_validated(api, change):
    body = {"events": ["candidate.created"], "target_url": "https://example.com/h", "secret": "x"}

    answer = api("POST", "/webhooks", {**body, **change})

    assert answer.status_code == 422
    assert {e["field"] for e in answer.json()["errors"]} == set(change)
    assert api("GET", "/webhooks").json()["count"] == 0


# ---------------------------------------------------------------- deliveries


def test_delivery_is_signed_over_the_raw_body_and_request_id(cats_sandbox, site, api, receiver):
    hook_id = register(api, receiver, "candidate.created")

    candidate_id = api.new_candidate("ada@example.com")

    (delivery,) = receiver.wait_for(1)
    headers, body = delivery["headers"], delivery["body"]
    request_id = headers["X-Request-Id"]
    expected = hmac.new(SECRET.encode(), body + request_id.encode(), hashlib.sha256).hexdigest()
    assert headers["X-Signature"] == f"HMAC-SHA256 {expected}"
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert {"Content-Type", "X-Request-Id", "X-Signature"} <= set(headers.keys())
    assert headers["Content-Type"] == "application/json"
    payload = json.loads(body)
    assert payload["event"] == "candidate.created"
    assert payload["candidate_id"] == candidate_id
    assert datetime.fromisoformat(payload["date"]).tzinfo is not None
    assert payload["_links"]["self"]["href"] == f"{cats_sandbox.url}/candidates/{candidate_id}"
    assert payload["_embedded"]["candidate"]["emails"]["primary"] == "ada@example.com"
    (attempt,) = cats_sandbox.wait_for_deliveries()
    assert attempt["webhook_id"] == hook_id
    assert (attempt["event"], attempt["request_id"]) == ("candidate.created", request_id)
    assert (attempt["status"], attempt["error"], attempt["attempt"]) == (200, None, 1)


def test_only_the_events_asked_for_are_delivered(cats_sandbox, site, api, receiver):
    register(api, receiver, "pipeline.created", "pipeline.status_changed", "activity.created")
    candidate_id = api.new_candidate()
    api("PUT", f"/candidates/{candidate_id}", {"first_name": "A", "last_name": "B"})
    job_id = site.jobs["Product Designer"]
    pipeline_id = api.new_pipeline(candidate_id, job_id)
    api(
        "POST",
        f"/pipelines/{pipeline_id}/status",
        {"status_id": site.status_id("Contacted")},
        params={"create_activity": "true"},
    )

    cats_sandbox.wait_for_deliveries()

    created, moved, activity = receiver.payloads()
    assert created["event"] == "pipeline.created"
    assert (created["pipeline_id"], created["candidate_id"], created["job_id"]) == (
        pipeline_id,
        candidate_id,
        job_id,
    )
    assert moved["event"] == "pipeline.status_changed"
    assert moved["previous_status_id"] == site.status_id("No Contact")
    assert moved["status_id"] == site.status_id("Contacted")
    assert moved["_embedded"]["pipeline"]["status_id"] == site.status_id("Contacted")
    assert (activity["event"], activity["candidate_id"]) == ("activity.created", candidate_id)


def test_changes_by_hand_are_delivered(cats_sandbox, site, api, receiver):
    register(api, receiver, "pipeline.status_changed", "pipeline.deleted", "candidate.deleted")
    candidate_id = api.new_candidate()
    first = api.new_pipeline(candidate_id, site.jobs["Product Designer"])
    second = api.new_pipeline(candidate_id, site.jobs["Senior Backend Engineer"])

    cats_sandbox.set_status_by_hand(site.id, first, site.status_id("Placed"))
    cats_sandbox.delete_pipeline_by_hand(site.id, first)
    cats_sandbox.delete_candidate_by_hand(site.id, candidate_id)
    cats_sandbox.wait_for_deliveries()

    moved, *deleted = receiver.payloads()
    assert moved["event"] == "pipeline.status_changed"
    assert (moved["pipeline_id"], moved["status_id"]) == (first, site.status_id("Placed"))
    assert moved["previous_status_id"] == site.status_id("No Contact")
    assert [(d["event"], d.get("pipeline_id")) for d in deleted] == [
        ("pipeline.deleted", first),
        ("pipeline.deleted", second),
        ("candidate.deleted", None),
    ]
    assert deleted[-1]["candidate_id"] == candidate_id


def test_failed_delivery_is_retried_with_the_same_bytes_until_it_succeeds(
    cats_sandbox, api, receiver
):
    cats_sandbox.webhook_settings(retry_delays=[0.01, 0.01, 0.01])
    receiver.script = [500, 503]
    register(api, receiver, "candidate.created")

    api.new_candidate()

    attempts = cats_sandbox.wait_for_deliveries()
    assert [(a["attempt"], a["status"]) for a in attempts] == [(1, 500), (2, 503), (3, 200)]
    assert len({(r["body"], r["headers"]["X-Request-Id"]) for r in receiver.received}) == 1


def test_unreachable_receiver_is_retried_then_given_up(cats_sandbox, api, receiver):
    cats_sandbox.webhook_settings(retry_delays=[0.01])
    receiver.server.shutdown()
    receiver.server.server_close()
    register(api, receiver, "candidate.created")

    api.new_candidate()

    attempts = cats_sandbox.wait_for_deliveries()
    assert [(a["attempt"], a["status"]) for a in attempts] == [(1, None), (2, None)]
    assert all(a["error"] for a in attempts)


def test_answer_410_deletes_the_webhook(cats_sandbox, api, receiver):
    cats_sandbox.webhook_settings(retry_delays=[0.01])
    receiver.script = [410]
    hook_id = register(api, receiver, "candidate.created")

    api.new_candidate("one@example.com")
    cats_sandbox.wait_for_deliveries()
    api.new_candidate("two@example.com")

    assert [a["status"] for a in cats_sandbox.wait_for_deliveries()] == [410]
    assert api("GET", f"/webhooks/{hook_id}").status_code == 404
    assert len(receiver.received) == 1


def test_replay_resends_identical_bytes_and_request_id(cats_sandbox, api, receiver):
    register(api, receiver, "candidate.created")
    api.new_candidate()
    (original,) = cats_sandbox.wait_for_deliveries()

    cats_sandbox.replay_delivery(original["n"])

    first, again = receiver.wait_for(2)
    assert again["body"] == first["body"]
    assert again["headers"]["X-Request-Id"] == first["headers"]["X-Request-Id"]
    assert again["headers"]["X-Signature"] == first["headers"]["X-Signature"]
    replayed = cats_sandbox.wait_for_deliveries()[-1]
    assert (replayed["replay_of"], replayed["status"]) == (original["n"], 200)


def test_a_dropped_delivery_is_never_sent_but_can_be_replayed(cats_sandbox, api, receiver):
    register(api, receiver, "candidate.created")
    cats_sandbox.drop_deliveries(1)

    api.new_candidate("lost@example.com")
    api.new_candidate("kept@example.com")

    lost, kept = cats_sandbox.wait_for_deliveries()
    assert (lost["status"], lost["error"], kept["status"]) == (None, "dropped", 200)
    assert [p["_embedded"]["candidate"]["emails"]["primary"] for p in receiver.payloads()] == [
        "kept@example.com"
    ]
    cats_sandbox.replay_delivery(lost["n"])
    assert receiver.wait_for(2)[1]["headers"]["X-Request-Id"] == lost["request_id"]


def test_a_slow_receiver_does_not_hold_up_the_api(cats_sandbox, api, receiver):
    register(api, receiver, "candidate.created")
    receiver.hold.clear()

    api.new_candidate("one@example.com")
    receiver.wait_for(1)  # the first delivery is now waiting on the receiver

    assert api("GET", "/site").status_code == 200
    api.new_candidate("two@example.com")
    receiver.hold.set()
    assert [a["status"] for a in cats_sandbox.wait_for_deliveries()] == [200, 200]


def test_reset_forgets_pending_deliveries(cats_sandbox, api, receiver):
    cats_sandbox.webhook_settings(retry_delays=[0.3])
    receiver.script = [500]
    register(api, receiver, "candidate.created")
    api.new_candidate()
    receiver.wait_for(1)

    cats_sandbox.reset()
    time.sleep(0.5)  # longer than the retry delay

    assert len(receiver.received) == 1
    assert cats_sandbox.wait_for_deliveries() == []
    assert cats_sandbox.webhook_settings()["retry_delays"] == [0.5, 1.0, 2.0]


def test_paused_deliveries_wait_and_go_out_once_resumed(cats_sandbox, api, receiver):
    register(api, receiver, "candidate.created")
    cats_sandbox.webhook_settings(paused=True)

    api.new_candidate("held@example.com")
    time.sleep(0.2)

    assert receiver.received == []
    assert cats_sandbox._call("GET", "/webhooks/deliveries")["pending"] == 1
    cats_sandbox.webhook_settings(paused=False)
    assert [a["status"] for a in cats_sandbox.wait_for_deliveries()] == [200]
    assert receiver.payloads()[0]["_embedded"]["candidate"]["emails"]["primary"] == (
        "held@example.com"
    )


def test_deliveries_held_waits_for_one_in_flight(cats_sandbox, api, receiver):
    register(api, receiver, "candidate.created")
    receiver.hold.clear()
    api.new_candidate("first@example.com")
    receiver.wait_for(1)  # on its way, waiting on the receiver
    threading.Timer(0.2, receiver.hold.set).start()

    with cats_sandbox.deliveries_held():
        assert cats_sandbox._call("GET", "/webhooks/deliveries")["in_flight"] == 0
        api.new_candidate("second@example.com")
        time.sleep(0.1)
        assert len(receiver.received) == 1

    assert [a["status"] for a in cats_sandbox.wait_for_deliveries()] == [200, 200]
