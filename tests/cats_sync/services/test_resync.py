"""Resync: backfilling contacts added before connecting, and runs that end by themselves with
true counts, an honest estimate, and a way to cancel."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from cats_sync import messages as msg
from cats_sync import services as cats
from cats_sync.models import CandidateLink, EnrollmentSync, ResyncRun, SyncTask
from cats_sync.tasks import drain
from interseller.models import Enrollment
from tests.factories import SequenceFactory
from tests.support.cats import add, candidates, connect, es_of, resync_sequence, sequence_sync

pytestmark = pytest.mark.django_db


# --- Resync ----------------------------------------------------------------------------------


def test_resync_backfills_contacts_added_before_connecting_and_skips_synced(
    team_a, site, seq, cats_sandbox
):
    before = [add(seq, f"before{i}@example.com") for i in range(3)]
    account = connect(team_a.member, site)
    synced = add(seq, "already@example.com")
    drain()
    snap_before = cats_sandbox.snapshot(site.id)
    modified_before = candidates(snap_before, "already@example.com")[0]["date_modified"]
    enrollments = Enrollment.objects.filter(sequence=seq)
    plan = cats.resync_plan(enrollments=enrollments)
    assert (len(plan.to_sync), plan.skipped, plan.blocked_total) == (3, 1, 0)
    run = cats.resync_start(
        enrollments=enrollments, started_by=None, team=team_a.team, description="Resync"
    )
    drain()
    snap = cats_sandbox.snapshot(site.id)
    for c in before:
        assert len(candidates(snap, c.email)) == 1
    assert candidates(snap, "already@example.com")[0]["date_modified"] == modified_before
    progress = cats.resync_progress(run=run)
    assert (progress.total, progress.done, progress.created, progress.skipped) == (3, 3, 3, 1)
    run.refresh_from_db()
    assert run.state == ResyncRun.State.DONE
    assert es_of(synced, seq).synced_at is not None and account.pk


def test_resync_plan_says_why_contacts_are_blocked_without_calling_cats(
    team_a, site, seq, cats_sandbox
):
    add(seq, "noconn@example.com")
    off_seq = SequenceFactory(team=team_a.team, owner=team_a.member2)
    sequence_sync(off_seq, enabled=False)
    connect(team_a.member2, site)
    add(off_seq, "seqoff@example.com")
    before = cats_sandbox.requests()
    plan = cats.resync_plan(enrollments=Enrollment.objects.all())
    assert plan.blocked == {msg.BLOCK_NO_CONNECTION: 1, msg.BLOCK_SEQUENCE_OFF: 1}
    assert cats_sandbox.requests() == before


def test_bulk_resync_spends_at_most_2_1_requests_per_contact(
    team_a, site, seq, cats_sandbox, cats_variant
):
    contacts = [add(seq, f"bulk{i}@example.com") for i in range(50)]
    connect(team_a.member, site, default_job_id=site.jobs["Senior Backend Engineer"])
    before = cats_sandbox.requests()["sites"][str(site.id)]["total"]
    resync_sequence(seq, "bulk")
    drain()
    spent = cats_sandbox.requests()["sites"][str(site.id)]["total"] - before
    snap = cats_sandbox.snapshot(site.id)
    assert len(snap["pipelines"]) == len(contacts)
    # A CATS whose search filters compare case leaves a free-text search per email: one more.
    limit = 3.1 if cats_variant["contains_case_sensitive"] else 2.1
    assert spent / len(contacts) <= limit


# --- resync runs end by themselves, with true counts ----------------------------------------------


def test_a_run_ends_when_its_last_task_ends_without_anyone_looking(team_a, site, seq):
    for i in range(3):
        add(seq, f"run{i}@example.com")
    connect(team_a.member, site)
    run = resync_sequence(seq, "three")
    SyncTask.objects.update(not_before=timezone.now())
    drain()
    run.refresh_from_db()
    assert run.state == ResyncRun.State.DONE and run.finished_at is not None


def test_a_candidate_we_created_despite_a_lost_answer_counts_as_created(
    team_a, site, seq, cats_sandbox
):
    for i in range(2):
        add(seq, f"lost{i}@example.com")
    connect(team_a.member, site, deduplication=False)
    run = resync_sequence(seq, "lost")
    SyncTask.objects.update(not_before=timezone.now())
    cats_sandbox.fault("drop_after_write", method="POST", route="/candidates", count=2)
    drain()
    CandidateLink.objects.update(create_sent_at=timezone.now() - timedelta(minutes=5))
    SyncTask.objects.update(not_before=timezone.now())
    drain()
    progress = cats.resync_progress(run=run)
    assert (progress.created, progress.linked, progress.done) == (2, 0, 2)
    assert len(cats_sandbox.snapshot(site.id)["candidates"]) == 2


def test_the_estimate_is_never_before_a_waiting_contact_is_due(team_a, site, seq):
    add(seq, "later@example.com")
    connect(team_a.member, site)
    run = resync_sequence(seq, "later")
    due = timezone.now() + timedelta(minutes=13)
    SyncTask.objects.update(not_before=due, waiting_on="retry")
    progress = cats.resync_progress(run=run)
    assert progress.eta >= due


def test_the_run_page_states_how_long_failures_are_retried(team_a, site, seq, login):
    add(seq, "page@example.com")
    connect(team_a.member, site)
    run = resync_sequence(seq, "page", started_by=team_a.owner.user)
    page = login(team_a.owner).get(reverse("admin:cats_sync_resyncrun_change", args=[run.pk]))
    assert cats.retry_bound_text() in page.content.decode()
    run.refresh_from_db()
    assert run.state == ResyncRun.State.RUNNING  # a GET changes nothing


def test_a_running_resync_can_be_cancelled_and_leaves_the_rest_for_later(team_a, site, seq, login):
    for i in range(3):
        add(seq, f"cancel{i}@example.com")
    connect(team_a.member, site)
    run = resync_sequence(seq, "to cancel", started_by=team_a.member.user)
    url = reverse("admin:cats_sync_resyncrun_cancel", args=[run.pk])
    assert login(team_a.member2).post(url).status_code == 404  # not theirs to see
    response = login(team_a.member).post(url, follow=True)
    assert "Resync cancelled: 3 contact(s) were left out" in response.content.decode()
    run.refresh_from_db()
    assert run.state == ResyncRun.State.CANCELLED
    assert cats.resync_progress(run=run).cancelled == 3
    drain()
    assert not EnrollmentSync.objects.filter(synced_at__isnull=False).exists()
    # A later resync finds them again.
    plan = cats.resync_plan(enrollments=Enrollment.objects.filter(sequence=seq))
    assert len(plan.to_sync) == 3


# --- a big resync is planned by a worker -------------------------------------------------------


@pytest.fixture
def small_chunks(monkeypatch):
    """A "big" run is anything over 2 contacts, planned 2 at a time (the logic, not the sizes)."""
    from cats_sync.services import planning, resync

    monkeypatch.setattr(resync, "RESYNC_INLINE_MAX", 2)
    monkeypatch.setattr(planning, "PLAN_CHUNK", 2)


def test_a_big_resync_starts_at_once_and_a_worker_plans_it_in_chunks(
    team_a, site, seq, cats_sandbox, small_chunks, monkeypatch, django_capture_on_commit_callbacks
):
    for i in range(5):
        add(seq, f"big{i}@example.com")
    connect(team_a.member, site)
    enqueued = []
    monkeypatch.setattr("cats_sync.queue.enqueue_call", lambda *args: enqueued.append(args))
    before = cats_sandbox.requests()
    with django_capture_on_commit_callbacks(execute=True):
        run = resync_sequence(seq, "big")
    # Starting wrote the selection down and handed it to a worker: no task, no CATS request.
    assert run.state == ResyncRun.State.PLANNING and len(run.selection) == 5
    assert not SyncTask.objects.filter(run=run).exists()
    assert enqueued == [("cats_sync.tasks.resync_plan_run", run.pk)]
    assert cats_sandbox.requests() == before
    cats.resync_plan_run(run_id=run.pk)
    run.refresh_from_db()
    assert (run.state, run.planned, run.total, run.selection) == (
        ResyncRun.State.RUNNING,
        5,
        5,
        [],
    )
    assert SyncTask.objects.filter(run=run).count() == 5
    drain()
    run.refresh_from_db()
    assert run.state == ResyncRun.State.DONE
    assert cats.resync_progress(run=run).created == 5


def test_planning_whose_worker_died_is_handed_on_by_the_sweeper_without_planning_twice(
    team_a, site, seq, small_chunks, monkeypatch
):
    from cats_sync import tasks
    from cats_sync.services import planning, resync

    for i in range(5):
        add(seq, f"died{i}@example.com")
    connect(team_a.member, site)
    run = resync_sequence(seq, "big")
    # The first worker plans one chunk, then dies.
    real_chunk = resync.resync_plan_chunk
    calls = []

    def chunk_then_die(run_, ids, **kwargs):
        calls.append(ids)
        if len(calls) == 2:
            raise SystemExit("worker killed")
        return real_chunk(run_, ids, **kwargs)

    monkeypatch.setattr(planning, "resync_plan_chunk", chunk_then_die)
    with pytest.raises(SystemExit):
        cats.resync_plan_run(run_id=run.pk)
    run.refresh_from_db()
    assert (run.state, run.planned) == (ResyncRun.State.PLANNING, 2)
    # Within its lease nobody else takes it; once the lease is over, the sweeper hands it on.
    assert cats.resync_plan_run(run_id=run.pk) is None
    ResyncRun.objects.filter(pk=run.pk).update(
        plan_claimed_at=timezone.now() - planning.PLAN_LEASE - timedelta(seconds=1)
    )
    enqueued = []
    monkeypatch.setattr("cats_sync.queue.enqueue_call", lambda *args: enqueued.append(args))
    monkeypatch.setattr(planning, "resync_plan_chunk", real_chunk)
    tasks.sweep()
    assert ("cats_sync.tasks.resync_plan_run", run.pk) in enqueued
    tasks.resync_plan_run(run.pk)
    run.refresh_from_db()
    assert (run.state, run.planned, run.total) == (ResyncRun.State.RUNNING, 5, 5)
    assert SyncTask.objects.filter(run=run).count() == 5  # the first chunk was not planned twice


def test_cancelling_a_run_while_it_is_planned_leaves_the_rest_out(team_a, site, seq, small_chunks):
    for i in range(5):
        add(seq, f"cancel{i}@example.com")
    connect(team_a.member, site)
    run = resync_sequence(seq, "big")
    assert cats.resync_cancel(run=run) == 5
    cats.resync_plan_run(run_id=run.pk)
    run.refresh_from_db()
    assert run.state == ResyncRun.State.CANCELLED
    assert not SyncTask.objects.filter(run=run).exists()


def _plan_queries(prefix: str, count: int, seq) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from cats_sync.services.resync import resync_plan_chunk

    ids = list(
        Enrollment.objects.filter(contact__email__startswith=prefix).values_list("pk", flat=True)
    )
    run = ResyncRun.objects.create(team=seq.team, description=prefix)
    with CaptureQueriesContext(connection) as queries:
        resync_plan_chunk(run, ids, bulk=True)
    assert SyncTask.objects.filter(run=run).count() == count
    return len(queries)


def test_planning_a_chunk_costs_the_same_statements_for_5_or_50_contacts(team_a, site, seq):
    # Added before the owner connected: every sync row is moved to the owner's account.
    for prefix, count in (("few", 5), ("many", 50)):
        for i in range(count):
            add(seq, f"{prefix}{i}@example.com")
    connect(team_a.member, site)
    assert _plan_queries("few", 5, seq) == _plan_queries("many", 50, seq)
    assert set(EnrollmentSync.objects.values_list("account__membership", flat=True)) == {
        team_a.member.pk
    }


def test_a_task_already_open_for_a_contact_joins_the_run_instead_of_a_second(
    team_a, site, seq, cats_sandbox
):
    connect(team_a.member, site)
    contact = add(seq, "open@example.com")  # its live sync task is open, not run yet
    (open_task,) = SyncTask.objects.filter(enrollment__contact=contact)
    run = resync_sequence(seq, "joins")
    open_task.refresh_from_db()
    assert open_task.run_id == run.pk
    assert SyncTask.objects.filter(enrollment__contact=contact).count() == 1
