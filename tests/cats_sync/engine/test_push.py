"""Push changes to CATS: contacts already synced follow a new job order and the current
mapping, on purpose. Asserted on what the sandbox holds, and on its request log: the run costs
exactly what its preview said."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cats_sync import messages as msg
from cats_sync import services as cats
from cats_sync.models import CatsAccount, CatsSite, EnrollmentSync, ResyncRun, SyncTask
from cats_sync.tasks import drain
from interseller.models import Enrollment
from tests.cats_sync.engine.test_requests import Requests, ready
from tests.factories import SequenceFactory
from tests.support.cats import (
    T0,
    add,
    candidates,
    event,
    map_fields,
    pipelines,
    resync_sequence,
    sequence_sync,
)

pytestmark = pytest.mark.django_db

SENIOR, DESIGNER = "Senior Backend Engineer", "Product Designer"


@pytest.fixture
def roomy(site, cats_sandbox):
    """A budget big enough for hundreds of contacts in one test (counts, not waits)."""
    cats_sandbox.configure(site.id, rate_limit=100_000)
    return site


def synced_world(team_a, site, seq, *, n: int, messaged: int, **account_settings):
    """`n` contacts of `seq` synced onto Senior Backend Engineer, the first `messaged` of them
    messaged (so at "Messaged"), with only the sequence title mapped."""
    account = cats.cats_connect(
        membership=team_a.member, subdomain=site.subdomain, api_key=site.api_key
    ).account
    CatsAccount.objects.filter(pk=account.pk).update(
        sync_mode=CatsAccount.SyncMode.OFF,
        deduplication=False,
        default_job_id=site.jobs[SENIOR],
        **account_settings,
    )
    CatsSite.objects.filter(pk=account.site_id).update(rate_limit=100_000)
    account.refresh_from_db()
    ready(account)
    map_fields(account, site, {"sequence_title": "Sequence Title"})
    contacts = [add(seq, f"p{i}.{seq.pk}@example.com") for i in range(n)]
    for i, contact in enumerate(contacts[:messaged]):
        event(contact, seq, f"m{seq.pk}-{i}", "message_sent")
    CatsAccount.objects.filter(pk=account.pk).update(sync_mode=CatsAccount.SyncMode.ON_ADD)
    resync_sequence(seq, "first sync")
    drain()
    assert (
        EnrollmentSync.objects.filter(enrollment__sequence=seq, synced_at__isnull=False).count()
        == n
    )
    account.refresh_from_db()
    return account, contacts


def push(team_a, enrollments, *, remove_old: bool) -> ResyncRun:
    return cats.push_start(
        enrollments=enrollments,
        started_by=None,
        team=team_a.team,
        description="push",
        remove_old=remove_old,
    )


def test_push_on_40_contacts_costs_exactly_the_requests_its_preview_said(
    team_a, roomy, cats_sandbox
):
    site = roomy
    moved_seq = SequenceFactory(team=team_a.team, owner=team_a.member, title="Backend")
    kept_seq = SequenceFactory(team=team_a.team, owner=team_a.member, title="Platform")
    account, moved = synced_world(team_a, site, moved_seq, n=30, messaged=12)
    _, kept = synced_world(team_a, site, kept_seq, n=10, messaged=4)
    never = SequenceFactory(team=team_a.team, owner=team_a.member, title="Private")
    sequence_sync(never, enabled=False)
    add(never, "never@example.com")
    # Later changes: the first sequence's job order, and two more mapped values.
    sequence_sync(moved_seq, job_id=site.jobs[DESIGNER])
    map_fields(
        account,
        site,
        {"first_messaged_at": "First messaged at", "last_messaged_at": "Last messaged at"},
    )
    selection = Enrollment.objects.all()
    log = Requests(cats_sandbox, site)
    plan = cats.push_plan(enrollments=selection, remove_old=True)
    assert log.count() == 0  # the preview asks CATS nothing
    assert plan.change_count == 30 + 4
    assert (plan.move_job, plan.update_fields) == (30, 12 + 4)
    assert plan.unchanged == 6
    assert plan.blocked == {msg.BLOCK_PUSH_NOT_SYNCED: 1}
    # 30 new pipelines, 12 statuses carried, 30 old pipelines removed, one PUT per contact
    # with new values (two values each, in one PUT of the candidate).
    assert plan.requests == 30 + 12 + 30 + 16
    run = push(team_a, selection, remove_old=True)
    assert (run.total, run.skipped, run.blocked, run.requests_planned) == (34, 6, 1, 88)
    assert set(SyncTask.objects.filter(run=run).values_list("priority", flat=True)) == {
        SyncTask.Priority.BULK
    }
    drain()
    assert log.count() == plan.requests
    routes = log.routes()
    assert routes.count("POST /pipelines") == 30
    assert routes.count("DELETE /pipelines/{id}") == 30
    assert routes.count("POST /pipelines/{id}/status") == 12
    assert routes.count("PUT /candidates/{id}") == 16
    run.refresh_from_db()
    assert run.state == ResyncRun.State.DONE
    progress = cats.resync_progress(run=run)
    assert (progress.pushed, progress.unchanged, progress.failed) == (34, 6, 0)
    snap = cats_sandbox.snapshot(site.id)
    for i, contact in enumerate(moved):
        [cand] = candidates(snap, contact.email)
        [pipe] = pipelines(snap, cand["id"])
        assert pipe["job_id"] == site.jobs[DESIGNER]
        if i < 12:
            assert pipe["status_title"] == "Messaged"
            assert cand["custom_fields_by_name"]["First messaged at"] == "2026-11-02"
    for contact in kept:
        [cand] = candidates(snap, contact.email)
        assert [p["job_id"] for p in pipelines(snap, cand["id"])] == [site.jobs[SENIOR]]
    # Idempotent: a second push finds nothing left to change and sends nothing.
    log.restart()
    again = cats.push_plan(enrollments=selection, remove_old=True)
    assert (again.change_count, again.unchanged, again.requests) == (0, 40, 0)
    push(team_a, selection, remove_old=True)
    drain()
    assert log.count() == 0


def test_the_old_job_order_stays_unless_asked_and_statuses_only_move_forward(
    team_a, site, seq, cats_sandbox
):
    account, contacts = synced_world(team_a, site, seq, n=2, messaged=2)
    first, second = contacts
    event(first, seq, "r1", "reply_received", at=T0 + timedelta(hours=1), sentiment="interested")
    drain()
    sequence_sync(seq, job_id=site.jobs[DESIGNER])
    plan = cats.push_plan(enrollments=Enrollment.objects.filter(sequence=seq))
    assert plan.notes == {msg.PUSH_NOTE_OLD_KEPT: 2}
    log = Requests(cats_sandbox, site)
    push(team_a, Enrollment.objects.filter(sequence=seq), remove_old=False)
    drain()
    assert log.count() == plan.requests == 2 + 2
    snap = cats_sandbox.snapshot(site.id)
    es = EnrollmentSync.objects.get(enrollment__contact=first)
    by_job = {p["job_id"]: p for p in pipelines(snap, es.candidate_id)}
    # The old pipeline stays with its history; the new one starts at the furthest status
    # our emails reached, in one move.
    assert by_job[site.jobs[SENIOR]]["status_title"] == "Interested"
    assert by_job[site.jobs[DESIGNER]]["status_title"] == "Interested"
    assert [h["title"] for h in by_job[site.jobs[DESIGNER]]["status_history"]][-1] == "Interested"
    assert (es.job_id, es.previous_job_id, es.push_moving) == (
        site.jobs[DESIGNER],
        site.jobs[SENIOR],
        False,
    )
    assert es.pipeline_id == by_job[site.jobs[DESIGNER]]["id"]


def test_a_push_that_died_half_way_finishes_without_sending_twice(team_a, site, seq, cats_sandbox):
    synced_world(team_a, site, seq, n=1, messaged=1)
    sequence_sync(seq, job_id=site.jobs[DESIGNER])
    enrollments = Enrollment.objects.filter(sequence=seq)
    plan = cats.push_plan(enrollments=enrollments, remove_old=True)
    assert plan.requests == 3  # pipeline, status, removal
    # CATS fails on the removal: the pipeline and the status are done and recorded.
    cats_sandbox.fault("error_503", method="DELETE", route="/pipelines/{id}", count=20)
    log = Requests(cats_sandbox, site)
    run = push(team_a, enrollments, remove_old=True)
    drain()
    es = EnrollmentSync.objects.get()
    assert es.push_moving and es.previous_pipeline_id
    task = SyncTask.objects.get(run=run)
    assert task.state in (SyncTask.State.PENDING, SyncTask.State.FAILED)
    # CATS is back (the outage probe would find it so; here we say it at once).
    cats_sandbox.clear_faults()
    CatsSite.objects.update(outage_failures=0, outage_until=None, outage_probe_at=None)
    SyncTask.objects.filter(pk=task.pk).update(
        state=SyncTask.State.PENDING, not_before=T0, attempts=0
    )
    drain()
    routes = log.routes()
    assert routes.count("POST /pipelines") == 1
    assert routes.count("POST /pipelines/{id}/status") == 1
    snap = cats_sandbox.snapshot(site.id)
    assert [p["job_id"] for p in pipelines(snap, es.candidate_id)] == [site.jobs[DESIGNER]]
    es.refresh_from_db()
    assert not es.push_moving and es.previous_pipeline_id is None
    assert SyncTask.objects.get(pk=task.pk).outcome == SyncTask.Outcome.PUSHED


def test_a_pipeline_another_sequence_still_uses_is_kept(team_a, site, cats_sandbox):
    moved_seq = SequenceFactory(team=team_a.team, owner=team_a.member, title="Moved")
    other_seq = SequenceFactory(team=team_a.team, owner=team_a.member, title="Other")
    synced_world(team_a, site, moved_seq, n=1, messaged=0)
    contact = Enrollment.objects.get(sequence=moved_seq).contact
    add(other_seq, contact.email)
    drain()
    sequence_sync(moved_seq, job_id=site.jobs[DESIGNER])
    enrollments = Enrollment.objects.filter(sequence=moved_seq)
    plan = cats.push_plan(enrollments=enrollments, remove_old=True)
    assert plan.notes == {msg.PUSH_NOTE_OLD_KEPT_IN_USE: 1}
    # The new pipeline, and the sequence title: the other sequence's sync wrote its own
    # title on the shared candidate last. No removal.
    assert plan.requests == 2
    log = Requests(cats_sandbox, site)
    push(team_a, enrollments, remove_old=True)
    drain()
    assert sorted(log.routes()) == [
        "POST /pipelines",
        "PUT /candidates/{id}/custom_fields/{field_id}",
    ]
    es = EnrollmentSync.objects.get(enrollment__sequence=moved_seq)
    jobs = sorted(p["job_id"] for p in pipelines(cats_sandbox.snapshot(site.id), es.candidate_id))
    assert jobs == sorted([site.jobs[SENIOR], site.jobs[DESIGNER]])


def test_push_blocks_what_it_cannot_do_and_says_why(team_a, site, seq, cats_sandbox):
    synced_world(team_a, site, seq, n=1, messaged=0)
    sequence_sync(seq, job_id=site.jobs["Office Manager"])
    plan = cats.push_plan(enrollments=Enrollment.objects.filter(sequence=seq))
    assert plan.blocked == {msg.BLOCK_PUSH_JOB_CLOSED.format(job="Office Manager"): 1}
    assert plan.requests == 0 and not plan.to_push
    sequence_sync(seq, job_id=424242)
    plan = cats.push_plan(enrollments=Enrollment.objects.filter(sequence=seq))
    assert plan.blocked == {msg.BLOCK_PUSH_JOB_MISSING.format(job_id=424242): 1}


def test_resync_still_leaves_synced_contacts_alone(team_a, site, seq, cats_sandbox):
    """The spec's default stays: only the explicit push touches contacts already synced."""
    synced_world(team_a, site, seq, n=1, messaged=0)
    sequence_sync(seq, job_id=site.jobs[DESIGNER])
    log = Requests(cats_sandbox, site)
    run = resync_sequence(seq, "resync")
    drain()
    assert (run.total, run.skipped) == (0, 1)
    assert log.count() == 0


def test_a_status_cats_refuses_to_jump_to_is_reached_step_by_step(
    team_a, sandbox, cats_variant, cats_sandbox
):
    from cats_sandbox.seed import general_workflow_statuses, job, status, workflow

    strict = [
        status("No Contact"),
        status("Messaged"),
        status("Replied", prerequisites=["Messaged"]),
        status("Interested", prerequisites=["Replied"]),
        status("Not Interested"),
    ]
    site = sandbox.create_site(
        **cats_variant,
        workflows=[
            workflow("General", general_workflow_statuses(), is_default=True),
            workflow("Strict", strict),
        ],
        jobs=[job(SENIOR), job("Strict job", workflow="Strict")],
    )
    seq = SequenceFactory(team=team_a.team, owner=team_a.member, title="Backend")
    _, [contact] = synced_world(team_a, site, seq, n=1, messaged=1)
    event(contact, seq, "r1", "reply_received", at=T0 + timedelta(hours=1), sentiment="interested")
    drain()
    sequence_sync(seq, job_id=site.jobs["Strict job"])
    run = push(team_a, Enrollment.objects.filter(sequence=seq), remove_old=False)
    drain()
    es = EnrollmentSync.objects.get()
    [pipe] = [
        p
        for p in pipelines(cats_sandbox.snapshot(site.id), es.candidate_id)
        if p["job_id"] == site.jobs["Strict job"]
    ]
    assert pipe["status_title"] == "Interested"
    assert [h["title"] for h in pipe["status_history"]][-3:] == [
        "Messaged",
        "Replied",
        "Interested",
    ]
    task = SyncTask.objects.get(run=run)
    assert (task.state, task.outcome) == (SyncTask.State.DONE, SyncTask.Outcome.PUSHED)
    assert not es.issues.exists()


def test_a_big_push_is_planned_by_a_worker_in_chunks(team_a, site, seq, cats_sandbox, monkeypatch):
    from cats_sync.services import planning, resync

    synced_world(team_a, site, seq, n=3, messaged=0)
    # Resync and push share the planning: a push over 2 contacts is planned 2 at a time.
    monkeypatch.setattr(resync, "RESYNC_INLINE_MAX", 2)
    monkeypatch.setattr(planning, "PLAN_CHUNK", 2)
    sequence_sync(seq, job_id=site.jobs[DESIGNER])
    enrollments = Enrollment.objects.filter(sequence=seq)
    plan = cats.push_plan(enrollments=enrollments)
    run = push(team_a, enrollments, remove_old=False)
    assert run.state == ResyncRun.State.PLANNING and not SyncTask.objects.filter(run=run)
    cats.resync_plan_run(run_id=run.pk)
    run.refresh_from_db()
    assert (run.state, run.total, run.requests_planned) == (ResyncRun.State.RUNNING, 3, 3)
    assert run.requests_planned == plan.requests
    log = Requests(cats_sandbox, site)
    drain()
    assert log.count() == plan.requests
    run.refresh_from_db()
    assert run.state == ResyncRun.State.DONE


def test_a_contact_stopped_by_cats_keeps_its_job_order(team_a, site, seq, cats_sandbox):
    """A recruiter took the candidate over in CATS: a push never moves their pipeline."""
    account, contacts = synced_world(team_a, site, seq, n=2, messaged=0)
    stopped, moving = contacts
    EnrollmentSync.objects.filter(enrollment__contact=stopped).update(stopped_at=T0)
    sequence_sync(seq, job_id=site.jobs[DESIGNER])
    plan = cats.push_plan(enrollments=Enrollment.objects.filter(sequence=seq), remove_old=True)
    assert plan.notes[msg.PUSH_NOTE_STOPPED_STAYS] == 1
    log = Requests(cats_sandbox, site)
    push(team_a, Enrollment.objects.filter(sequence=seq), remove_old=True)
    drain()
    assert log.count() == plan.requests
    assert EnrollmentSync.objects.get(enrollment__contact=stopped).job_id == site.jobs[SENIOR]
    assert EnrollmentSync.objects.get(enrollment__contact=moving).job_id == site.jobs[DESIGNER]
    # In CATS too: the recruiter's pipeline is neither moved nor removed.
    snap = cats_sandbox.snapshot(site.id)
    kept = EnrollmentSync.objects.get(enrollment__contact=stopped)
    assert [p["job_id"] for p in pipelines(snap, kept.candidate_id)] == [site.jobs[SENIOR]]
