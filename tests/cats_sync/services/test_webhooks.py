"""CATS → outreach over webhooks, end to end: the sandbox delivers signed webhooks over HTTP to
this app's receiver (a live server), a recruiter moving or deleting a candidate through the
sandbox's control surface stops the contact's sequence, and our own status writes coming back
stop nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import timedelta

import pytest
import requests
from django.urls import reverse
from django.utils import timezone

from cats_sync import crypto
from cats_sync import services as cats
from cats_sync.models import CatsAccount, EnrollmentSync, PipelineObservation, WebhookDelivery
from cats_sync.services import status as status_words
from cats_sync.services.webhooks import MSG_NO_SITE_URL
from cats_sync.tasks import drain, webhook_process, webhook_register
from interseller.models import Enrollment
from interseller.services import api_token_create
from tests.support.cats import add, connect, es_of, event

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def site(sandbox):
    return sandbox.create_site()


@pytest.fixture
def live(settings, live_server):
    settings.SITE_URL = live_server.url
    return live_server


def connected(team_a, site):
    account = connect(team_a.member, site, default_job_id=site.jobs["Senior Backend Engineer"])
    assert webhook_register(account.pk) == "registered"
    account.refresh_from_db()
    return account


def process_all() -> list[str]:
    ids = WebhookDelivery.objects.filter(state=WebhookDelivery.State.RECEIVED).order_by("pk")
    return [webhook_process(pk) for pk in ids.values_list("pk", flat=True)]


def drain_quietly(sandbox) -> None:
    """The live server shares the test's database connection (in-memory SQLite): no delivery
    may arrive while the test itself works in the database, so a drain holds them back."""
    with sandbox.deliveries_held():
        drain()


def synced_contact(sandbox, seq, email="ada@example.com"):
    contact = add(seq, email)
    drain_quietly(sandbox)
    return contact


# --- registering ------------------------------------------------------------------------------


def test_connecting_registers_a_signed_webhook_to_site_url(team_a, site, seq, sandbox, live):
    account = connected(team_a, site)

    hooks = sandbox.app.state.sites[site.id].webhooks
    (hook,) = hooks.values()
    assert hook["id"] == account.webhook_id
    assert hook["target_url"] == live.url + reverse("cats-webhook", args=[account.webhook_token])
    assert set(hook["events"]) >= {"pipeline.status_changed", "candidate.deleted"}
    # The secret is stored encrypted, and it is the one CATS signs with.
    assert hook["secret"] not in account.webhook_secret_encrypted
    assert crypto.decrypt(account.webhook_secret_encrypted) == hook["secret"]
    assert account.webhooks_active
    # Running the registration again registers nothing more.
    assert webhook_register(account.pk) == "registered already"
    assert len(hooks) == 1


def test_disconnecting_deletes_the_webhook_in_cats(team_a, site, seq, sandbox, live):
    account = connected(team_a, site)

    cats.cats_disconnect(account=account)

    assert sandbox.app.state.sites[site.id].webhooks == {}
    account.refresh_from_db()
    assert (account.webhook_id, account.webhook_token, account.webhook_secret_encrypted) == (
        None,
        "",
        "",
    )


def test_without_site_url_nothing_is_registered_and_the_reason_is_kept(
    team_a, site, seq, sandbox, settings
):
    settings.SITE_URL = ""
    account = connect(team_a.member, site)

    assert webhook_register(account.pk) == "no SITE_URL"

    assert sandbox.app.state.sites[site.id].webhooks == {}
    account.refresh_from_db()
    assert account.webhook_error == MSG_NO_SITE_URL


def test_a_refused_registration_is_recorded_and_connecting_still_works(
    team_a, site, seq, sandbox, live
):
    sandbox.fault(action="error_500", method="POST", route="/webhooks", count=5)
    account = connect(team_a.member, site)

    assert webhook_register(account.pk) == "failed"

    account.refresh_from_db()
    assert account.is_connected and account.webhook_id is None
    assert account.webhook_error.startswith("Could not register the CATS webhook")


# --- the receiver -----------------------------------------------------------------------------


def test_a_recruiters_move_in_cats_stops_the_sequence(team_a, site, seq, sandbox, live):
    account = connected(team_a, site)
    contact = synced_contact(sandbox, seq)
    es = es_of(contact, seq)

    sandbox.set_status_by_hand(site.id, es.pipeline_id, site.status_id("Submitted"))

    (attempt,) = sandbox.wait_for_deliveries()
    assert (attempt["event"], attempt["status"]) == ("pipeline.status_changed", 202)
    assert process_all() == ["stopped"]
    enrollment = Enrollment.objects.get(pk=es.enrollment_id)
    assert enrollment.state == Enrollment.State.STOPPED
    assert enrollment.stopped_reason == "Stopped by CATS: moved to “Submitted” in CATS"
    es.refresh_from_db()
    assert es.stopped_why == "status"
    assert es.stopped_status_id == site.status_id("Submitted")
    assert es.stopped_source == f"webhook {attempt['request_id']}"
    assert es.stopped_at is not None
    # The contact's CATS panel says so, with the status and time.
    panel = status_words.enrollment_panel(enrollment)
    assert panel.state.words == "Stopped by CATS: moved to “Submitted” in CATS"
    assert panel.state.since == es.stopped_at
    assert any(m.words.startswith(enrollment.stopped_reason) for m in panel.timeline)
    assert account.pk == es.account_id
    # The outreach engine learns of it from the API.
    _, token = api_token_create(team=team_a.team, name="engine")
    listed = requests.get(
        live.url + "/api/v1/enrollments",
        params={
            "state": "stopped",
            "changed_since": (es.stopped_at - timedelta(seconds=1)).isoformat(),
        },
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    ).json()["results"]
    assert [(r["id"], r["contact_email"], r["stopped_reason"]) for r in listed] == [
        (enrollment.pk, "ada@example.com", "Stopped by CATS: moved to “Submitted” in CATS")
    ]


def test_our_own_status_writes_coming_back_stop_nothing(team_a, site, seq, sandbox, live):
    connected(team_a, site)
    contact = synced_contact(sandbox, seq)
    event(contact, seq, "m1", "message_sent")
    event(contact, seq, "r1", "reply_received", sentiment="interested")
    drain_quietly(sandbox)

    attempts = sandbox.wait_for_deliveries()
    assert [a["status"] for a in attempts] == [202, 202, 202]
    assert process_all() == ["our own status"] * 3
    enrollment = Enrollment.objects.get(contact=contact, sequence=seq)
    assert enrollment.state == Enrollment.State.REPLIED
    assert es_of(contact, seq).stopped_at is None


def test_moves_before_the_stop_status_only_show_on_the_timeline(team_a, site, seq, sandbox, live):
    connected(team_a, site)
    contact = synced_contact(sandbox, seq)
    es = es_of(contact, seq)

    sandbox.set_status_by_hand(site.id, es.pipeline_id, site.status_id("Contacted"))
    sandbox.wait_for_deliveries()

    assert process_all() == ["moved"]
    assert Enrollment.objects.get(pk=es.enrollment_id).state == Enrollment.State.ACTIVE
    (seen,) = PipelineObservation.objects.filter(enrollment_sync=es)
    assert seen.words == "Moved to “Contacted” in CATS"


def test_the_members_stop_status_is_used(team_a, site, seq, sandbox, live):
    account = connected(team_a, site)
    CatsAccount.objects.filter(pk=account.pk).update(stop_status="Interviewing")
    contact = synced_contact(sandbox, seq)
    es = es_of(contact, seq)

    sandbox.set_status_by_hand(site.id, es.pipeline_id, site.status_id("Submitted"))
    sandbox.wait_for_deliveries()
    assert process_all() == ["moved"]
    sandbox.set_status_by_hand(site.id, es.pipeline_id, site.status_id("Interviewing"))
    sandbox.wait_for_deliveries()
    assert process_all() == ["stopped"]


def test_default_stop_is_the_first_status_after_interested_the_sync_does_not_set(
    team_a, site, seq, sandbox, live
):
    connected(team_a, site)
    contact = synced_contact(sandbox, seq)
    es = es_of(contact, seq)

    # General: … Interested, Not Interested (ours), Qualifying, Submitted …
    sandbox.set_status_by_hand(site.id, es.pipeline_id, site.status_id("Not Interested"))
    sandbox.wait_for_deliveries()
    assert process_all() == ["moved"]
    sandbox.set_status_by_hand(site.id, es.pipeline_id, site.status_id("Qualifying"))
    sandbox.wait_for_deliveries()
    assert process_all() == ["stopped"]


def test_placed_always_stops_and_moving_back_never_restarts(team_a, site, seq, sandbox, live):
    account = connected(team_a, site)
    # Even with a stop status further than Placed could ever be.
    CatsAccount.objects.filter(pk=account.pk).update(stop_status="Client Declined")
    contact = synced_contact(sandbox, seq)
    es = es_of(contact, seq)

    sandbox.set_status_by_hand(site.id, es.pipeline_id, site.status_id("Placed"))
    sandbox.set_status_by_hand(site.id, es.pipeline_id, site.status_id("Contacted"))
    sandbox.wait_for_deliveries()

    assert process_all() == ["stopped", "stopped already"]
    es.refresh_from_db()
    assert es.stopped_why == "hired"
    assert Enrollment.objects.get(pk=es.enrollment_id).state == Enrollment.State.STOPPED


def test_a_deleted_candidate_stops_the_sequence(team_a, site, seq, sandbox, live):
    connected(team_a, site)
    contact = synced_contact(sandbox, seq)
    es = es_of(contact, seq)

    sandbox.delete_candidate_by_hand(site.id, es.candidate_id)
    sandbox.wait_for_deliveries()

    assert process_all() == ["1 pipeline(s) of ours removed", "stopped 1 enrollment(s)"]
    enrollment = Enrollment.objects.get(pk=es.enrollment_id)
    assert enrollment.state == Enrollment.State.STOPPED
    assert enrollment.stopped_reason == "Stopped by CATS: the candidate was deleted in CATS"


def test_events_of_a_stopped_enrollment_are_logged_but_never_move_the_pipeline(
    team_a, site, seq, sandbox, live
):
    connected(team_a, site)
    contact = synced_contact(sandbox, seq)
    es = es_of(contact, seq)
    sandbox.set_status_by_hand(site.id, es.pipeline_id, site.status_id("Submitted"))
    sandbox.wait_for_deliveries()
    process_all()

    event(contact, seq, "late", "reply_received", sentiment="interested")
    drain_quietly(sandbox)

    snap = sandbox.snapshot(site.id)
    (pipeline,) = [p for p in snap["pipelines"] if p["id"] == es.pipeline_id]
    assert pipeline["status_title"] == "Submitted"
    assert [a["data_item"]["id"] for a in snap["activities"]] == [es.candidate_id]
    assert Enrollment.objects.get(pk=es.enrollment_id).state == Enrollment.State.STOPPED


def test_payload_ids_are_only_looked_up_in_our_own_links(team_a, site, seq, sandbox, live):
    connected(team_a, site)
    synced_contact(sandbox, seq)
    # Someone else's candidate on the same site, moved and deleted by hand.
    other = sandbox.add_candidate_by_hand(site.id, first_name="Not", last_name="Ours")
    sandbox.delete_candidate_by_hand(site.id, other)
    sandbox.wait_for_deliveries()

    assert process_all() == ["no candidate of ours"]
    assert not Enrollment.objects.filter(state=Enrollment.State.STOPPED).exists()


# --- signature, replay, staleness (signed by hand, sent over HTTP to the live receiver) --------


def _post(live, account, body: bytes, *, request_id=None, secret=None, signature=None, signed=None):
    """POST `body` signed as CATS would (or over `signed` bytes, with another `secret`, or
    with the `signature` header given)."""
    request_id = request_id or uuid.uuid4().hex
    secret = secret or crypto.decrypt(account.webhook_secret_encrypted)
    signed = body if signed is None else signed
    digest = hmac.new(secret.encode(), signed + request_id.encode(), hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Request-Id": request_id,
        "X-Signature": signature if signature is not None else f"HMAC-SHA256 {digest}",
    }
    url = live.url + reverse("cats-webhook", args=[account.webhook_token])
    return requests.post(url, data=body, headers=headers, timeout=5)


def _body(es, status_id, *, at=None) -> bytes:
    at = at or timezone.now()
    return json.dumps(
        {
            "event": "pipeline.status_changed",
            "pipeline_id": es.pipeline_id,
            "status_id": status_id,
            "date": at.isoformat(),
        }
    ).encode()


def test_signature_good_bad_and_replayed(team_a, site, seq, sandbox, live):
    account = connected(team_a, site)
    es = es_of(synced_contact(sandbox, seq), seq)
    body = _body(es, site.status_id("Submitted"))

    forged = _post(live, account, body, secret="not-the-secret")
    unsigned = _post(live, account, body, signature="")
    tampered = _post(live, account, body.replace(b"pipeline", b"Pipeline", 1), signed=body)
    good = _post(live, account, body, request_id="r-2")
    replayed = _post(live, account, body, request_id="r-2")

    assert [forged.status_code, unsigned.status_code, tampered.status_code] == [401, 401, 401]
    assert (good.status_code, replayed.status_code) == (202, 200)
    assert replayed.json()["message"] == "Already received."
    assert list(WebhookDelivery.objects.values_list("request_id", flat=True)) == ["r-2"]
    assert process_all() == ["stopped"]
    # The replayed delivery did nothing more.
    assert PipelineObservation.objects.filter(enrollment_sync=es).count() == 1


def test_a_signature_over_another_request_id_is_refused(team_a, site, seq, sandbox, live):
    account = connected(team_a, site)
    es = es_of(synced_contact(sandbox, seq), seq)
    body = _body(es, site.status_id("Submitted"))
    secret = crypto.decrypt(account.webhook_secret_encrypted)
    digest = hmac.new(secret.encode(), body + b"id-A", hashlib.sha256).hexdigest()

    answer = _post(live, account, body, request_id="id-B", signature=f"HMAC-SHA256 {digest}")

    assert answer.status_code == 401
    assert not WebhookDelivery.objects.exists()


def test_stale_deliveries_are_refused(team_a, site, seq, sandbox, live, settings):
    settings.CATS_WEBHOOK_MAX_AGE = 600
    account = connected(team_a, site)
    es = es_of(synced_contact(sandbox, seq), seq)
    old = _body(es, site.status_id("Submitted"), at=timezone.now() - timedelta(minutes=11))
    future = _body(es, site.status_id("Submitted"), at=timezone.now() + timedelta(hours=1))

    assert _post(live, account, old).status_code == 400
    assert _post(live, account, future).status_code == 400
    assert not WebhookDelivery.objects.exists()


def test_an_unknown_registration_answers_410_and_cats_deletes_it(team_a, site, seq, sandbox, live):
    account = connected(team_a, site)
    contact = synced_contact(sandbox, seq)
    es = es_of(contact, seq)
    # Our side forgets the registration (as after moving to another CATS site).
    CatsAccount.objects.filter(pk=account.pk).update(webhook_token="gone-token-0000")
    sandbox.webhook_settings(retry_delays=[])

    sandbox.set_status_by_hand(site.id, es.pipeline_id, site.status_id("Submitted"))

    (attempt,) = sandbox.wait_for_deliveries()
    assert attempt["status"] == 410
    assert sandbox.app.state.sites[site.id].webhooks == {}


def test_a_delivery_for_a_stopped_enrollment_is_still_logged(team_a, site, seq, sandbox, live):
    connected(team_a, site)
    es = es_of(synced_contact(sandbox, seq), seq)
    sandbox.set_status_by_hand(site.id, es.pipeline_id, site.status_id("Submitted"))
    sandbox.set_status_by_hand(site.id, es.pipeline_id, site.status_id("Interviewing"))
    sandbox.wait_for_deliveries()

    assert process_all() == ["stopped", "stopped already"]
    words = list(
        PipelineObservation.objects.filter(enrollment_sync=es)
        .order_by("pk")
        .values_list("words", flat=True)
    )
    assert words == [
        "Stopped by CATS: moved to “Submitted” in CATS",
        "Moved to “Interviewing” in CATS (the sequence was stopped already)",
    ]
    assert EnrollmentSync.objects.get(pk=es.pk).status_id == site.status_id("Interviewing")


def test_connecting_queues_the_registration_for_a_worker(
    team_a, site, seq, sandbox, live, django_capture_on_commit_callbacks
):
    from django_q.brokers import get_broker
    from django_q.signing import SignedPackage

    broker = get_broker()
    broker.purge_queue()

    with django_capture_on_commit_callbacks(execute=True):
        account = connect(team_a.member, site)

    tasks = [SignedPackage.loads(payload) for _, payload in broker.dequeue() or []]
    assert [(t["func"], t["args"]) for t in tasks] == [
        ("cats_sync.tasks.webhook_register", (account.pk,))
    ]
    # Nothing was sent to CATS inside the person's request.
    assert sandbox.app.state.sites[site.id].webhooks == {}


def test_a_move_waiting_in_an_unprocessed_delivery_is_never_undone(
    team_a, site, seq, sandbox, live
):
    connected(team_a, site)
    contact = synced_contact(sandbox, seq)
    event(contact, seq, "m1", "message_sent")
    drain_quietly(sandbox)
    sandbox.wait_for_deliveries()
    process_all()
    es = es_of(contact, seq)

    sandbox.set_status_by_hand(site.id, es.pipeline_id, site.status_id("Submitted"))
    sandbox.wait_for_deliveries()  # stored, not processed yet
    event(contact, seq, "r1", "reply_received")
    drain_quietly(sandbox)

    snap = sandbox.snapshot(site.id)
    (pipeline,) = [p for p in snap["pipelines"] if p["id"] == es.pipeline_id]
    assert pipeline["status_title"] == "Submitted"
    assert process_all() == ["stopped"]


def test_a_connection_whose_key_cats_refused_keeps_its_webhook(team_a, site, seq, sandbox, live):
    """Answering 410 would make CATS delete the webhook while the person reconnects."""
    account = connected(team_a, site)
    es = es_of(synced_contact(sandbox, seq), seq)
    with sandbox.deliveries_held():
        cats.metadata_refresh(account=account)  # the workflow's statuses, from our cache
    cats.cats_account_mark_invalid(account=account)
    account.refresh_from_db()
    assert account.status == CatsAccount.Status.INVALID
    answer = _post(live, account, _body(es, site.status_id("Submitted")))
    assert answer.status_code == 202
    assert process_all() == ["stopped"]
    # Still registered, on both sides.
    account.refresh_from_db()
    assert account.webhook_id is not None and account.webhook_token
    assert list(sandbox.app.state.sites[site.id].webhooks) == [account.webhook_id]


def test_a_move_told_by_each_teammates_webhook_is_acted_on_and_shown_once(
    team_a, site, seq, sandbox, live
):
    """Teammates on one CATS site each register a webhook: one move arrives once per hook."""
    connected(team_a, site)
    teammate = connect(team_a.member2, site)
    assert webhook_register(teammate.pk) == "registered"
    es = es_of(synced_contact(sandbox, seq), seq)

    sandbox.set_status_by_hand(site.id, es.pipeline_id, site.status_id("Submitted"))
    attempts = sandbox.wait_for_deliveries()

    assert [(a["event"], a["status"]) for a in attempts] == [("pipeline.status_changed", 202)] * 2
    assert sorted(process_all()) == ["stopped", "unchanged"]
    assert PipelineObservation.objects.filter(enrollment_sync=es).count() == 1

    sandbox.delete_candidate_by_hand(site.id, es.candidate_id)
    sandbox.wait_for_deliveries()
    process_all()
    # Stopped already: the deletion is no second stop; the pipeline's removal is one line,
    # however many webhooks tell it.
    words = list(
        PipelineObservation.objects.filter(enrollment_sync=es)
        .order_by("pk")
        .values_list("words", flat=True)
    )
    assert words == [
        "Stopped by CATS: moved to “Submitted” in CATS",
        "Removed from the job order in CATS",
    ]


def _routes_since(sandbox, site, since: int) -> list[str]:
    log = sandbox.request_log(since, site_id=site.id)
    return [f"{e['method']} {e['route']}" for e in log["entries"]]


def test_deliveries_about_other_pipelines_and_our_own_echoes_cost_no_pipeline_read(
    team_a, site, seq, sandbox, live
):
    connected(team_a, site)
    ada = synced_contact(sandbox, seq)
    bob = synced_contact(sandbox, seq, "bob@example.com")
    event(ada, seq, "a1", "message_sent")
    event(bob, seq, "b1", "message_sent")
    drain_quietly(sandbox)
    sandbox.wait_for_deliveries()  # both echoes of "Messaged" stored, not processed
    bob_pipeline = es_of(bob, seq).pipeline_id
    sandbox.set_status_by_hand(site.id, bob_pipeline, site.status_id("Contacted"))
    sandbox.wait_for_deliveries()  # a recruiter's move of Bob, not processed either
    waiting = WebhookDelivery.objects.filter(state=WebhookDelivery.State.RECEIVED)
    assert waiting.filter(pipeline_id=es_of(ada, seq).pipeline_id).count() == 1
    assert waiting.filter(pipeline_id=bob_pipeline).count() == 2

    since = sandbox.request_log(0, site_id=site.id)["next"]
    event(ada, seq, "a2", "reply_received")
    drain_quietly(sandbox)
    # Ada's only waiting delivery is the echo of our own "Messaged": her record stands.
    assert "GET /pipelines/{id}" not in _routes_since(sandbox, site, since)
    assert es_of(ada, seq).status_id == site.status_id("Replied")

    since = sandbox.request_log(0, site_id=site.id)["next"]
    event(bob, seq, "b2", "reply_received")
    drain_quietly(sandbox)
    # Bob's recruiter move waits: his pipeline is read before it is moved.
    assert "GET /pipelines/{id}" in _routes_since(sandbox, site, since)


def test_a_waiting_delivery_that_names_no_pipeline_makes_every_status_change_read_first(
    team_a, site, seq, sandbox, live
):
    account = connected(team_a, site)
    ada = synced_contact(sandbox, seq)
    WebhookDelivery.objects.create(
        account=account, request_id="anon-1", event="pipeline.status_changed", payload={}
    )
    since = sandbox.request_log(0, site_id=site.id)["next"]
    event(ada, seq, "a1", "message_sent")
    drain_quietly(sandbox)
    assert "GET /pipelines/{id}" in _routes_since(sandbox, site, since)
