"""The spec's errors and delivery: integration errors a person sees, retries, lost answers,
tasks that run twice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from cats_sync import messages as msg
from cats_sync import services as cats
from cats_sync.engine import running_lease, tasks_execute
from cats_sync.models import CandidateLink, CatsAccount, EnrollmentSync, SyncTask
from cats_sync.tasks import drain, sweep
from tests.support.cats import add, candidates, connect, es_of

pytestmark = pytest.mark.django_db


# --- Errors and delivery ---------------------------------------------------------------------


def test_401_pauses_member_work_and_reconnect_resumes_it(team_a, site, seq, cats_sandbox):
    connect(team_a.member, site)
    new_key = cats_sandbox.rotate_key(site.id)  # the old key now answers 401
    contact = add(seq, "paused@example.com")
    add(seq, "paused2@example.com")
    drain()
    account = CatsAccount.objects.get(membership=team_a.member)
    assert account.status == CatsAccount.Status.INVALID
    assert set(SyncTask.objects.values_list("state", flat=True)) == {SyncTask.State.PAUSED}
    assert es_of(contact, seq).error_message == msg.ERR_AUTH
    cats.cats_connect(membership=team_a.member, subdomain=site.subdomain, api_key=new_key)
    drain()
    snap = cats_sandbox.snapshot(site.id)
    assert len(candidates(snap, "paused@example.com")) == 1
    assert len(candidates(snap, "paused2@example.com")) == 1
    assert es_of(contact, seq).error_code == ""


def test_disconnect_keeps_queued_work_until_reconnect(team_a, site, seq, cats_sandbox):
    account = connect(team_a.member, site)
    add(seq, "queued@example.com")
    assert cats.cats_disconnect(account=account) == 1
    drain()
    assert candidates(cats_sandbox.snapshot(site.id), "queued@example.com") == []
    assert SyncTask.objects.get().state == SyncTask.State.PAUSED
    connect(team_a.member, site)
    drain()
    assert len(candidates(cats_sandbox.snapshot(site.id), "queued@example.com")) == 1


def test_drop_after_write_on_create_makes_no_duplicate(team_a, site, seq, cats_sandbox):
    connect(team_a.member, site, deduplication=False)
    cats_sandbox.fault("drop_after_write", method="POST", route="/candidates", count=1)
    contact = add(seq, "lost-answer@example.com")
    drain()
    task = SyncTask.objects.get()
    assert task.state == SyncTask.State.PENDING  # waiting to retry
    SyncTask.objects.filter(pk=task.pk).update(not_before=timezone.now())
    before = cats_sandbox.requests()["total"]
    drain()
    # Too soon: the lost create might still land, so nothing is sent until it settles.
    task.refresh_from_db()
    assert task.last_error == msg.WAIT_SETTLE and cats_sandbox.requests()["total"] == before
    link = CandidateLink.objects.get(email="lost-answer@example.com")
    CandidateLink.objects.filter(pk=link.pk).update(
        create_sent_at=link.create_sent_at - timedelta(minutes=5)
    )
    SyncTask.objects.filter(pk=task.pk).update(not_before=timezone.now())
    drain()
    assert len(candidates(cats_sandbox.snapshot(site.id), "lost-answer@example.com")) == 1
    es = es_of(contact, seq)
    assert es.synced_at is not None and es.exists_in_cats is False


def test_rate_limit_waits_exactly_as_long_as_cats_asked(team_a, site, seq, cats_sandbox):
    connect(team_a.member, site)
    cats_sandbox.fault("rate_limit", route="*", count=1, retry_after=120)
    contact = add(seq, "slow@example.com")
    t0 = timezone.now()
    drain()
    task = SyncTask.objects.get()
    assert task.state == SyncTask.State.PENDING
    wait = (task.not_before - t0).total_seconds()
    assert 119 <= wait <= 125
    assert task.waiting_on == "rate_limited" and task.attempts == 0
    assert task.last_error.startswith("CATS asked us to slow down: retrying at ")
    # A wait is not an error a person must act on.
    assert es_of(contact, seq).error_code == ""


def test_outage_backs_off_and_succeeds_later(team_a, site, seq, cats_sandbox):
    connect(team_a.member, site, deduplication=False)
    cats_sandbox.fault("error_503", method="POST", route="/candidates", count=1)
    contact = add(seq, "flaky@example.com")
    drain()
    task = SyncTask.objects.get()
    assert task.state == SyncTask.State.PENDING and task.not_before > timezone.now()
    assert task.waiting_on == "retry" and "Retrying at" in task.last_error
    assert es_of(contact, seq).error_code == ""
    SyncTask.objects.filter(pk=task.pk).update(not_before=timezone.now())
    drain()
    assert len(candidates(cats_sandbox.snapshot(site.id), "flaky@example.com")) == 1
    assert es_of(contact, seq).error_code == ""


def test_rejected_contact_waits_for_a_person_then_retry_works(team_a, site, seq, cats_sandbox):
    connect(team_a.member, site, default_job_id=site.jobs["Product Designer"])
    cats_sandbox.fault("error_500", method="POST", route="/pipelines", count=0)
    contact = add(seq, "fixme@example.com")
    cats_sandbox.delete_job(site.id, site.jobs["Product Designer"])
    drain()
    es = es_of(contact, seq)
    assert es.error_code == EnrollmentSync.Error.JOB_MISSING
    account = CatsAccount.objects.get(membership=team_a.member)
    EnrollmentSync.objects.filter(pk=es.pk).update(job_id=site.jobs["Senior Backend Engineer"])
    assert cats.sync_retry(enrollment_ids=[es.enrollment_id]) == 1
    drain()
    es.refresh_from_db()
    assert es.pipeline_id and es.error_code == "" and account.pk


def test_task_enqueued_on_commit_and_sweeper_recovers_lost_and_dead_work(team_a, site, seq):
    from django_q.brokers import get_broker

    broker = get_broker()  # the ORM broker, or Redis when REDIS_URL is set
    broker.purge_queue()
    connect(team_a.member, site)
    add(seq, "swept@example.com")
    task = SyncTask.objects.get()
    # The queue message is lost (here: the test transaction never commits, so on_commit
    # never enqueued it)...
    assert broker.queue_size() == 0
    assert sweep() == 1
    assert broker.queue_size() == 1
    # ...and a worker that died mid-task leaves a RUNNING row that the sweeper takes back.
    SyncTask.objects.filter(pk=task.pk).update(
        state="running", claimed_at=timezone.now() - running_lease() * 2
    )
    sweep()
    task.refresh_from_db()
    assert task.state == SyncTask.State.PENDING
    broker.purge_queue()


def test_enqueue_on_commit_reaches_the_queue(team_a, site, seq, django_capture_on_commit_callbacks):
    from django_q.brokers import get_broker

    broker = get_broker()
    broker.purge_queue()
    connect(team_a.member, site)
    with django_capture_on_commit_callbacks(execute=True):
        add(seq, "committed@example.com")
    assert broker.queue_size() == 1
    broker.purge_queue()


def test_running_a_task_twice_is_harmless(team_a, site, seq, cats_sandbox):
    connect(team_a.member, site)
    add(seq, "twice-run@example.com")
    task = SyncTask.objects.get()
    tasks_execute(task_ids=[task.pk])
    tasks_execute(task_ids=[task.pk])
    SyncTask.objects.filter(pk=task.pk).update(state="pending")
    tasks_execute(task_ids=[task.pk])
    assert len(candidates(cats_sandbox.snapshot(site.id), "twice-run@example.com")) == 1


def test_budget_stops_spending_when_window_is_used(team_a, site, seq, cats_sandbox):
    from cats_sync.models import CatsRequest

    account = connect(team_a.member, site)
    site_row = account.site
    site_row.rate_limit = 5
    site_row.save()
    CatsRequest.objects.bulk_create([CatsRequest(site=site_row, at=timezone.now())] * 5)
    before = cats_sandbox.requests()
    add(seq, "budget@example.com")
    drain()
    assert cats_sandbox.requests()["total"] == before["total"]
    task = SyncTask.objects.get()
    assert task.not_before > timezone.now() and task.waiting_on == "budget"
    assert "budget" in task.last_error


def test_bulk_work_leaves_a_reserve_for_live_syncs(team_a, site):
    from cats_sync.budget import BudgetExhausted, budget_take
    from cats_sync.models import CatsRequest

    account = connect(team_a.member, site)
    s = account.site
    s.rate_limit = 10
    s.save()
    CatsRequest.objects.bulk_create([CatsRequest(site=s, at=timezone.now())] * 8)
    with pytest.raises(BudgetExhausted):
        budget_take(site_id=s.pk, bulk=True)
    budget_take(site_id=s.pk, bulk=False)  # live work may still go
