"""The spec's sync options, syncing turned off per sequence, and job orders, asserted on what
CATS holds."""

from __future__ import annotations

import pytest
from django.utils import timezone

from cats_sync import messages as msg
from cats_sync import services as cats
from cats_sync.models import CatsAccount, CatsJob, EnrollmentSync, SyncTask
from cats_sync.tasks import drain
from interseller import services
from interseller.models import Enrollment
from tests.factories import SequenceFactory
from tests.support.cats import add, candidates, connect, es_of, pipelines, sequence_sync

pytestmark = pytest.mark.django_db


# --- Sync options ----------------------------------------------------------------------------


def test_mode_when_added_syncs_candidate_on_add(team_a, site, seq, cats_sandbox):
    connect(team_a.member, site)
    contact = add(
        seq,
        "new.person@example.com",
        first_name="New",
        last_name="Person",
        phone="+1 555 0100",
        title="CTO",
        company="Initech",
    )
    drain()
    rows = candidates(cats_sandbox.snapshot(site.id), "new.person@example.com")
    assert len(rows) == 1
    c = rows[0]
    assert (c["first_name"], c["last_name"], c["title"], c["current_employer"], c["source"]) == (
        "New",
        "Person",
        "CTO",
        "Initech",
        "Interseller",
    )
    es = es_of(contact, seq)
    assert es.candidate_id == c["id"] and es.synced_at is not None and es.created_candidate


def test_mode_off_syncs_nothing(team_a, site, seq, cats_sandbox):
    connect(team_a.member, site, sync_mode=CatsAccount.SyncMode.OFF, deduplication=False)
    add(seq, "quiet@example.com")
    drain()
    assert candidates(cats_sandbox.snapshot(site.id), "quiet@example.com") == []


def test_mode_on_reply_waits_for_the_first_reply(team_a, site, seq, cats_sandbox):
    connect(team_a.member, site, sync_mode=CatsAccount.SyncMode.ON_REPLY, deduplication=False)
    contact = add(seq, "later@example.com")
    enrollment = Enrollment.objects.get(contact=contact)
    services.email_event_record(
        enrollment=enrollment, external_id="m1", kind="message_sent", occurred_at=timezone.now()
    )
    drain()
    assert candidates(cats_sandbox.snapshot(site.id), "later@example.com") == []
    services.email_event_record(
        enrollment=enrollment, external_id="r1", kind="reply_received", occurred_at=timezone.now()
    )
    drain()
    assert len(candidates(cats_sandbox.snapshot(site.id), "later@example.com")) == 1


def test_no_connection_syncs_nothing(team_a, site, seq, cats_sandbox):
    add(seq, "unconnected@example.com")
    drain()
    assert candidates(cats_sandbox.snapshot(site.id), "unconnected@example.com") == []
    assert not SyncTask.objects.exists()


# --- Disable syncing sequences ---------------------------------------------------------------


def test_sequence_sync_off_at_add_time_keeps_contact_out_of_cats(team_a, site, seq, cats_sandbox):
    connect(team_a.member, site, deduplication=False)
    sequence_sync(seq, enabled=False)
    contact = add(seq, "private@example.com")
    sequence_sync(seq, enabled=True)  # turned back on later: the contact keeps "off"
    drain()
    assert candidates(cats_sandbox.snapshot(site.id), "private@example.com") == []
    assert es_of(contact, seq).sync_enabled is False


def test_sequence_toggle_turned_off_after_adding_does_not_touch_added_contacts(
    team_a, site, seq, cats_sandbox
):
    connect(team_a.member, site, sync_mode=CatsAccount.SyncMode.OFF, deduplication=False)
    contact = add(seq, "added-before@example.com")
    sequence_sync(seq, enabled=False)
    assert es_of(contact, seq).sync_enabled is True


# --- Job orders ------------------------------------------------------------------------------


def test_default_job_order_puts_candidate_on_pipeline(team_a, site, seq, cats_sandbox):
    job = site.jobs["Senior Backend Engineer"]
    connect(team_a.member, site, default_job_id=job)
    contact = add(seq, "piped@example.com")
    drain()
    snap = cats_sandbox.snapshot(site.id)
    cand = candidates(snap, "piped@example.com")[0]
    assert [p["job_id"] for p in pipelines(snap, cand["id"])] == [job]
    assert es_of(contact, seq).pipeline_id == pipelines(snap, cand["id"])[0]["id"]


def test_sequence_job_order_overrides_default(team_a, site, seq, cats_sandbox):
    connect(team_a.member, site, default_job_id=site.jobs["Senior Backend Engineer"])
    sequence_sync(seq, job_id=site.jobs["Product Designer"])
    add(seq, "designer@example.com")
    drain()
    snap = cats_sandbox.snapshot(site.id)
    cand = candidates(snap, "designer@example.com")[0]
    assert [p["job_id"] for p in pipelines(snap, cand["id"])] == [site.jobs["Product Designer"]]


def test_job_order_chosen_after_adding_does_not_apply(team_a, site, seq, cats_sandbox):
    connect(team_a.member, site, sync_mode=CatsAccount.SyncMode.OFF)
    contact = add(seq, "early@example.com")
    sequence_sync(seq, job_id=site.jobs["Product Designer"])
    account = CatsAccount.objects.get(membership=team_a.member)
    account.sync_mode = CatsAccount.SyncMode.ON_ADD
    account.save()
    cats.resync_start(
        enrollments=Enrollment.objects.filter(contact=contact),
        started_by=None,
        team=team_a.team,
        description="t",
    )
    drain()
    snap = cats_sandbox.snapshot(site.id)
    cand = candidates(snap, "early@example.com")[0]
    assert pipelines(snap, cand["id"]) == []


def test_same_contact_in_two_sequences_is_one_candidate_on_two_pipelines(
    team_a, site, seq, cats_sandbox
):
    connect(team_a.member, site)
    other = SequenceFactory(team=team_a.team, owner=team_a.member, title="Designers")
    sequence_sync(seq, job_id=site.jobs["Senior Backend Engineer"])
    sequence_sync(other, job_id=site.jobs["Product Designer"])
    add(seq, "both@example.com")
    add(other, "both@example.com")
    drain()
    snap = cats_sandbox.snapshot(site.id)
    rows = candidates(snap, "both@example.com")
    assert len(rows) == 1
    assert sorted(p["job_id"] for p in pipelines(snap, rows[0]["id"])) == sorted(
        [site.jobs["Senior Backend Engineer"], site.jobs["Product Designer"]]
    )


def test_candidate_already_on_the_job_links_the_existing_pipeline(team_a, site, seq, cats_sandbox):
    job = site.jobs["Senior Backend Engineer"]
    connect(team_a.member, site, default_job_id=job)
    contact = add(seq, "twice@example.com")
    drain()
    es = es_of(contact, seq)
    # Forget our pipeline id, as if the answer had been lost: a rerun must link, not fail.
    EnrollmentSync.objects.filter(pk=es.pk).update(pipeline_id=None, synced_at=None)
    SyncTask.objects.create(
        kind="sync", enrollment=es.enrollment, account=es.account, not_before=timezone.now()
    )
    drain()
    snap = cats_sandbox.snapshot(site.id)
    assert len(pipelines(snap, es.candidate_id)) == 1
    assert es_of(contact, seq).pipeline_id == pipelines(snap, es.candidate_id)[0]["id"]


def test_deleted_job_order_is_a_clear_permanent_error(team_a, site, seq, cats_sandbox):
    job = site.jobs["Product Designer"]
    connect(team_a.member, site, default_job_id=job)
    cats_sandbox.delete_job(site.id, job)
    contact = add(seq, "nojob@example.com")
    drain()
    es = es_of(contact, seq)
    assert es.error_code == EnrollmentSync.Error.JOB_MISSING
    assert es.error_message == msg.ERR_JOB_MISSING.format(job_id=job)
    assert SyncTask.objects.get(kind="sync").state == SyncTask.State.FAILED


def test_jobs_refresh_caches_jobs_and_marks_closed(team_a, site):
    account = connect(team_a.member, site)
    assert cats.jobs_refresh(account=account) == 4
    closed = CatsJob.objects.get(cats_id=site.jobs["Office Manager"])
    assert not closed.is_open and "(closed)" in str(closed)
    assert CatsJob.objects.get(cats_id=site.jobs["Product Designer"]).is_open
