"""Lost and late answers, rate limits, outages, dead workers and a dead broker: the sync makes
no duplicate, spends a bounded number of requests, and resumes when CATS does."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from cats_sync import messages as msg
from cats_sync import services as cats
from cats_sync.budget import OUTAGE_AFTER
from cats_sync.engine import running_lease, tasks_execute
from cats_sync.models import CandidateLink, CatsRequest, CatsSite, EnrollmentSync, SyncTask
from cats_sync.tasks import drain, sweep
from tests.support.cats import add, candidates, connect, resync_sequence

pytestmark = pytest.mark.django_db


def site_requests(cats_sandbox, site) -> int:
    return cats_sandbox.requests()["sites"].get(str(site.id), {}).get("total", 0)


def age_lost_create(email: str) -> None:
    """Let the settle window pass for a create whose answer was lost."""
    link = CandidateLink.objects.get(email=email)
    CandidateLink.objects.filter(pk=link.pk).update(
        create_sent_at=link.create_sent_at - timedelta(minutes=5)
    )
    SyncTask.objects.filter(state=SyncTask.State.PENDING).update(not_before=timezone.now())


# --- a create answered after the client gave up ------------------------------------------------


def test_create_that_lands_after_our_timeout_makes_no_duplicate(
    team_a, site, seq, cats_sandbox, settings
):
    settings.CATS_READ_TIMEOUT = 0.5
    connect(team_a.member, site, deduplication=False)
    cats_sandbox.fault("hang", method="POST", route="/candidates", hang_seconds=1.5)
    add(seq, "late@example.com")
    drain()  # times out: the create may or may not land
    assert SyncTask.objects.get().state == SyncTask.State.PENDING
    time.sleep(1.6)  # ... and it does land, after we gave up
    age_lost_create("late@example.com")
    drain()
    assert len(candidates(cats_sandbox.snapshot(site.id), "late@example.com")) == 1
    es = EnrollmentSync.objects.get()
    assert es.synced_at and es.created_candidate and not es.exists_in_cats


def test_create_that_lands_after_our_retry_is_refused_by_cats(
    team_a, site, seq, cats_sandbox, settings
):
    """Our retry creates first; the hung create arrives later and, sent with CATS' duplicate
    check on like every create, is refused instead of making a second candidate."""
    settings.CATS_READ_TIMEOUT = 0.5
    connect(team_a.member, site, deduplication=False)
    cats_sandbox.fault("hang", method="POST", route="/candidates", hang_seconds=3)
    add(seq, "racing@example.com")
    drain()
    age_lost_create("racing@example.com")
    drain()  # looks up (nothing yet), creates with the duplicate check on
    time.sleep(3)  # the hung create is processed now
    assert len(candidates(cats_sandbox.snapshot(site.id), "racing@example.com")) == 1
    assert EnrollmentSync.objects.get().synced_at is not None


def test_a_budget_wait_is_not_a_lost_answer(team_a, site, seq, cats_sandbox):
    account = connect(team_a.member, site, deduplication=False)
    add(seq, "patient@example.com")
    CatsSite.objects.filter(pk=account.site_id).update(rate_limit=0)
    drain()
    link = CandidateLink.objects.get(email="patient@example.com")
    assert link.create_sent_at is None and link.claimed_by == ""
    assert site_requests(cats_sandbox, site) == 1  # connecting's GET /site: nothing since
    CatsSite.objects.filter(pk=account.site_id).update(rate_limit=500)
    SyncTask.objects.update(not_before=timezone.now())
    drain()
    # One look-up and one create: no extra search as if a create might have happened.
    by_route = cats_sandbox.requests()["sites"][str(site.id)]["by_route"]
    assert by_route["POST /candidates/search"] == 1 and by_route["POST /candidates"] == 1


# --- 429 ----------------------------------------------------------------------------------------


def test_429_waits_its_retry_after_and_resumes(team_a, site, seq, cats_sandbox):
    account = connect(team_a.member, site, deduplication=False)
    cats_sandbox.fault("rate_limit", route="*", count=1, retry_after=2)
    contact = add(seq, "slowdown@example.com")
    drain()
    task = SyncTask.objects.get()
    assert 1 <= (task.not_before - timezone.now()).total_seconds() <= 3
    # The 429's "0 remaining" is not learned: the budget is not blocked for the hour.
    assert CatsSite.objects.get(pk=account.site_id).header_remaining != 0
    time.sleep(2.1)
    drain()
    assert EnrollmentSync.objects.get(enrollment__contact=contact).synced_at is not None


def test_429_on_the_batched_lookup_stops_the_batch_instead_of_each_task_asking(
    team_a, site, seq, cats_sandbox
):
    for i in range(10):
        add(seq, f"batch{i}@example.com")
    connect(team_a.member, site, deduplication=False)
    resync_sequence(seq, "batch")
    SyncTask.objects.update(not_before=timezone.now())
    cats_sandbox.fault("rate_limit", method="POST", route="/candidates/search", retry_after=30)
    before = site_requests(cats_sandbox, site)
    tasks_execute(task_ids=list(SyncTask.objects.values_list("id", flat=True)))
    spent = site_requests(cats_sandbox, site) - before
    assert spent <= 3  # the probe of how search treats case, and the one refused search
    assert not SyncTask.objects.exclude(waiting_on="rate_limited").exists()


# --- outages ------------------------------------------------------------------------------------


@pytest.fixture
def fast_backoff(settings):
    settings.CATS_OUTAGE_BACKOFF_BASE = 0.2
    settings.CATS_OUTAGE_BACKOFF_CAP = 0.8


def test_an_outage_is_probed_one_request_at_a_time_and_ends_promptly(
    team_a, site, seq, cats_sandbox, fast_backoff
):
    account = connect(team_a.member, site, deduplication=False)
    for i in range(20):
        add(seq, f"outage{i}@example.com")
    cats_sandbox.fault("error_503", route="*", count=10_000, site_id=site.id)
    before = site_requests(cats_sandbox, site)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        drain()
        time.sleep(0.05)
    spent = site_requests(cats_sandbox, site) - before
    # Three failures make an outage; then one probe per back-off (0.1 to 0.8 s): a retry
    # storm would have sent hundreds in 3 s.
    assert spent <= OUTAGE_AFTER + 2 + 3 / 0.1, spent
    assert CatsSite.objects.get(pk=account.site_id).outage_failures >= OUTAGE_AFTER
    # Refused before reaching CATS: nothing of the outage is charged to the budget.
    assert CatsRequest.objects.filter(site_id=account.site_id).count() <= 1
    assert not SyncTask.objects.filter(state=SyncTask.State.FAILED).exists()
    cats_sandbox.clear_faults()
    deadline = time.monotonic() + 3
    while EnrollmentSync.objects.filter(synced_at__isnull=True).exists():
        assert time.monotonic() < deadline, "work did not resume after the outage"
        drain()
        time.sleep(0.05)
    assert CatsSite.objects.get(pk=account.site_id).outage_failures == 0


def test_one_failure_is_the_contacts_bad_luck_not_an_outage(team_a, site, seq, cats_sandbox):
    account = connect(team_a.member, site, deduplication=False)
    cats_sandbox.fault("error_500", method="POST", route="/candidates", count=1)
    add(seq, "unlucky@example.com")
    drain()
    task = SyncTask.objects.get()
    assert task.waiting_on == "retry" and task.attempts == 1
    assert CatsSite.objects.get(pk=account.site_id).outage_until is None


def test_a_contact_cats_keeps_failing_on_ends_failed_with_a_message(
    team_a, site, seq, cats_sandbox, monkeypatch
):
    from cats_sync.engine import runner

    monkeypatch.setattr(runner, "MAX_TRANSIENT_ATTEMPTS", 3)
    connect(team_a.member, site, deduplication=False)
    contact = add(seq, "cursed@example.com")
    for _ in range(3):
        # Fails on this contact only, while CATS answers the others (503: nothing landed).
        cats_sandbox.fault("error_503", method="POST", route="/candidates", count=1)
        SyncTask.objects.update(not_before=timezone.now())
        drain()
        CatsSite.objects.update(outage_failures=0, outage_until=None)
    task = SyncTask.objects.get()
    assert task.state == SyncTask.State.FAILED
    assert task.last_error == msg.ERR_UNAVAILABLE_GAVE_UP.format(n=3)
    es = EnrollmentSync.objects.get(enrollment__contact=contact)
    assert es.error_code == EnrollmentSync.Error.UNAVAILABLE
    assert cats.sync_retry(enrollment_ids=[es.enrollment_id]) == 1
    drain()
    es.refresh_from_db()
    assert es.synced_at and es.error_code == ""


@pytest.mark.parametrize("failure", ["error_503", "error_500"])
def test_a_run_with_one_request_in_three_failing_completes(
    team_a, site, seq, cats_sandbox, failure
):
    """503: nothing happened. 500: a create may have happened, so no duplicate may follow."""
    for i in range(30):
        add(seq, f"flaky{i}@example.com")
    connect(team_a.member, site, deduplication=False, default_job_id=site.jobs["Product Designer"])
    run = resync_sequence(seq, "flaky")
    cats_sandbox.fault(failure, route="*", count=10_000, every=3, site_id=site.id)
    deadline = time.monotonic() + 60
    while SyncTask.objects.filter(state__in=SyncTask.OPEN_STATES).exists():
        assert time.monotonic() < deadline, list(
            SyncTask.objects.values_list("state", "waiting_on", "not_before", "last_error")[:5]
        )
        # Time passes: what waits on a back-off is due (the back-offs are seconds long).
        SyncTask.objects.filter(state=SyncTask.State.PENDING).update(not_before=timezone.now())
        CatsSite.objects.update(outage_until=None)
        CandidateLink.objects.exclude(create_sent_at=None).update(
            create_sent_at=timezone.now() - timedelta(minutes=5)
        )
        drain()
    run.refresh_from_db()
    progress = cats.resync_progress(run=run)
    assert run.state == "done" and progress.done == 30 and progress.failed == 0
    snap = cats_sandbox.snapshot(site.id)
    assert len(snap["candidates"]) == 30 and len(snap["pipelines"]) == 30


# --- unexpected errors ----------------------------------------------------------------------------


def test_an_unexpected_error_is_recorded_retried_capped_and_the_batch_goes_on(
    team_a, site, seq, cats_sandbox, monkeypatch
):
    from cats_sync.engine import candidates as engine_candidates
    from cats_sync.engine import runner

    connect(team_a.member, site, deduplication=False)
    broken = add(seq, "broken@example.com")
    fine = add(seq, "fine@example.com")
    real = engine_candidates.candidate_payload

    def payload(contact):
        if contact.email == "broken@example.com":
            raise KeyError("surprise")
        return real(contact)

    monkeypatch.setattr(engine_candidates, "candidate_payload", payload)
    monkeypatch.setattr(runner, "MAX_UNEXPECTED_ATTEMPTS", 2)
    drain()
    assert EnrollmentSync.objects.get(enrollment__contact=fine).synced_at is not None
    task = SyncTask.objects.get(enrollment__contact=broken)
    assert task.state == SyncTask.State.PENDING and task.waiting_on == "retry"
    assert task.last_error.startswith("Unexpected error (KeyError)")
    assert task.claim_token == "" and task.claimed_at is None  # not left running
    SyncTask.objects.filter(pk=task.pk).update(not_before=timezone.now())
    drain()
    task.refresh_from_db()
    assert task.state == SyncTask.State.FAILED
    assert task.last_error == msg.ERR_UNEXPECTED.format(kind="KeyError", attempts=2)
    es = EnrollmentSync.objects.get(enrollment__contact=broken)
    assert es.error_code == EnrollmentSync.Error.UNEXPECTED


# --- dead workers ---------------------------------------------------------------------------------


def test_a_dead_workers_task_is_recovered_after_its_heartbeat_lease(team_a, site, seq):
    connect(team_a.member, site)
    add(seq, "orphan@example.com")
    task = SyncTask.objects.get()
    lease = running_lease()
    assert lease <= timedelta(seconds=40)  # not ten minutes
    SyncTask.objects.filter(pk=task.pk).update(
        state="running", claim_token="dead", claimed_at=timezone.now() - lease / 2
    )
    sweep()
    assert SyncTask.objects.get().state == "running"  # its heartbeat is recent
    SyncTask.objects.filter(pk=task.pk).update(claimed_at=timezone.now() - lease * 1.1)
    sweep()
    assert SyncTask.objects.get().state == "pending"


def test_every_request_refreshes_the_heartbeat(team_a, site, seq, cats_sandbox, monkeypatch):
    from cats_sync.engine import runner

    connect(team_a.member, site, deduplication=False)
    add(seq, "alive@example.com")
    beats = []
    real = runner._heartbeat
    monkeypatch.setattr(runner, "_heartbeat", lambda task: (beats.append(1), real(task)))
    before = site_requests(cats_sandbox, site)
    drain()
    assert len(beats) == site_requests(cats_sandbox, site) - before > 0


# --- the broker is down ---------------------------------------------------------------------------


def test_api_adds_answer_201_with_the_broker_down_and_nothing_is_lost(
    team_a, site, seq, client, monkeypatch, django_capture_on_commit_callbacks
):
    from django_q.conf import Conf

    from interseller import services

    connect(team_a.member, site)
    _, raw = services.api_token_create(team=team_a.team, name="engine")
    # A Redis broker nobody listens on: enqueueing fails as with Redis stopped.
    monkeypatch.setattr(Conf, "BROKER_CLASS", None)
    monkeypatch.setattr(Conf, "ORM", None)
    monkeypatch.setattr(Conf, "REDIS", "redis://127.0.0.1:1/0")
    monkeypatch.setattr(Conf, "SYNC", False)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/contacts",
            {"email": "queued@example.com", "sequence_id": seq.pk},
            content_type="application/json",
            headers={"Authorization": f"Bearer {raw}"},
        )
    assert response.status_code == 201, response.content
    task = SyncTask.objects.get()
    assert task.state == SyncTask.State.PENDING
    monkeypatch.undo()
    drain()  # what the sweeper's worker does once the broker is back
    assert EnrollmentSync.objects.get().synced_at is not None
