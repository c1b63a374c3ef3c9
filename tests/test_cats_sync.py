"""CATS sync, part 1, paragraph by paragraph of the spec, asserted on what CATS holds."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from cats_sync import crypto
from cats_sync import messages as msg
from cats_sync import services as cats
from cats_sync.engine import runner, running_lease, tasks_execute
from cats_sync.models import (
    CandidateLink,
    CatsAccount,
    CatsJob,
    EnrollmentSync,
    ResyncRun,
    SyncTask,
)
from cats_sync.tasks import drain, sweep
from interseller import services
from interseller.models import Enrollment, Membership

from .cats_helpers import add, candidates, connect, pipelines, sequence_sync
from .factories import ContactFactory, SequenceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def site(cats_sandbox, settings, cats_variant):
    settings.CATS_API_URL = cats_sandbox.url
    return cats_sandbox.create_site(
        **cats_variant,
        candidates=[
            {
                "first_name": "Known",
                "last_name": "Person",
                "emails": {"primary": "Known.Person@Example.com"},
            },
            {
                "first_name": "Second",
                "last_name": "Address",
                "emails": {"primary": "work@corp.example", "secondary": "alt@corp.example"},
            },
        ],
    )


@pytest.fixture
def seq(team_a):
    return SequenceFactory(team=team_a.team, owner=team_a.member, title="Backend engineers")


def es_of(contact, sequence) -> EnrollmentSync:
    return EnrollmentSync.objects.get(enrollment__contact=contact, enrollment__sequence=sequence)


# --- Connecting ------------------------------------------------------------------------------


def test_connect_checks_key_with_cats_and_stores_it_encrypted(team_a, site):
    account = connect(team_a.member, site)
    account.refresh_from_db()
    assert account.status == CatsAccount.Status.CONNECTED
    assert account.site.cats_id == site.id and account.site.subdomain == site.subdomain
    assert site.api_key not in account.api_key_encrypted
    assert crypto.decrypt(account.api_key_encrypted) == site.api_key
    team_a.member.refresh_from_db()
    assert team_a.member.integration == Membership.Integration.CATS


def test_connect_refuses_rejected_key(team_a, site):
    with pytest.raises(ValidationError) as exc:
        cats.cats_connect(membership=team_a.member, subdomain=site.subdomain, api_key="nope")
    assert msg.MSG_KEY_REJECTED in str(exc.value)
    assert not CatsAccount.objects.filter(status="connected").exists()


def test_connect_refuses_key_of_another_subdomain(team_a, site):
    with pytest.raises(ValidationError) as exc:
        cats.cats_connect(membership=team_a.member, subdomain="someoneelse", api_key=site.api_key)
    assert msg.MSG_SUBDOMAIN_MISMATCH.format(actual=site.subdomain, entered="someoneelse") in str(
        exc.value
    )


@pytest.mark.parametrize("bad", ["acme.evil.com/", "ac me", "http://x", "-acme", ""])
def test_connect_refuses_malformed_subdomain(team_a, site, bad):
    with pytest.raises(ValidationError) as exc:
        cats.cats_connect(membership=team_a.member, subdomain=bad, api_key=site.api_key)
    assert msg.MSG_SUBDOMAIN_INVALID in str(exc.value)


def test_connect_says_when_cats_cannot_be_reached(team_a, settings):
    settings.CATS_API_URL = "http://127.0.0.1:9/v3"
    with pytest.raises(ValidationError) as exc:
        cats.cats_connect(membership=team_a.member, subdomain="acme", api_key="k")
    assert "could not be reached" in str(exc.value)


def test_undecryptable_key_is_an_error_not_a_passthrough(team_a, site, settings):
    account = connect(team_a.member, site)
    settings.CATS_ENCRYPTION_KEYS = ["0" * 43 + "="]
    with pytest.raises(crypto.KeyDecryptionError):
        crypto.decrypt(account.api_key_encrypted)


def test_key_rotation_keeps_old_tokens_readable(team_a, site, settings):
    from cryptography.fernet import Fernet

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CATS_ENCRYPTION_KEYS = [old]
    token = crypto.encrypt("secret-key")
    settings.CATS_ENCRYPTION_KEYS = [new, old]
    assert crypto.decrypt(token) == "secret-key"
    rotated = crypto.rotate(token)
    settings.CATS_ENCRYPTION_KEYS = [new]
    assert crypto.decrypt(rotated) == "secret-key"


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


# --- Deduplication ---------------------------------------------------------------------------


def test_same_email_in_cats_creates_no_second_record_and_warns(team_a, site, seq, cats_sandbox):
    connect(team_a.member, site)
    contact = add(seq, "known.person@example.com")
    drain()
    snap = cats_sandbox.snapshot(site.id)
    assert len(candidates(snap, "known.person@example.com")) == 1
    es = es_of(contact, seq)
    assert es.exists_in_cats is True and es.created_candidate is False
    assert es.candidate_id == site.candidates[0]


def test_secondary_email_match_counts_as_existing(team_a, site, seq, cats_sandbox):
    connect(team_a.member, site)
    add(seq, "alt@corp.example")
    drain()
    assert len(cats_sandbox.snapshot(site.id)["candidates"]) == 2


def test_different_email_for_same_person_creates_a_second_record(team_a, site, seq, cats_sandbox):
    connect(team_a.member, site)
    add(seq, "known.person@newjob.example", first_name="Known", last_name="Person")
    drain()
    snap = cats_sandbox.snapshot(site.id)
    people = [c for c in snap["candidates"] if c["first_name"] == "Known"]
    assert len(people) == 2


def test_dedup_off_gives_no_warning_but_still_no_duplicate(team_a, site, seq, cats_sandbox):
    connect(team_a.member, site, deduplication=False)
    contact = add(seq, "known.person@example.com")
    drain()
    assert len(candidates(cats_sandbox.snapshot(site.id), "known.person@example.com")) == 1
    assert es_of(contact, seq).exists_in_cats is False


def test_dedup_check_runs_at_add_even_when_mode_syncs_on_reply(team_a, site, seq, cats_sandbox):
    connect(team_a.member, site, sync_mode=CatsAccount.SyncMode.ON_REPLY)
    contact = add(seq, "known.person@example.com")
    drain()
    assert es_of(contact, seq).exists_in_cats is True
    assert len(cats_sandbox.snapshot(site.id)["candidates"]) == 2  # nothing created


def test_dedup_off_makes_no_lookup(team_a, site, seq, cats_sandbox):
    connect(team_a.member, site, sync_mode=CatsAccount.SyncMode.ON_REPLY, deduplication=False)
    before = cats_sandbox.requests()
    add(seq, "known.person@example.com")
    drain()
    after = cats_sandbox.requests()
    assert after == before


def test_teammates_on_same_site_share_one_candidate(team_a, site, cats_sandbox):
    connect(team_a.member, site)
    connect(team_a.member2, site)
    s1 = SequenceFactory(team=team_a.team, owner=team_a.member)
    s2 = SequenceFactory(team=team_a.team, owner=team_a.member2)
    add(s1, "shared@example.com")
    drain()
    c2 = ContactFactory(team=team_a.team, owner=team_a.member2, email="shared2@example.com")
    services.contact_add_to_sequence(contact=c2, sequence=s2)
    contact = add(s2, "shared@example.com")
    drain()
    assert len(candidates(cats_sandbox.snapshot(site.id), "shared@example.com")) == 1
    assert es_of(contact, s2).candidate_id == es_of(contact, s1).candidate_id


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
    cats.resync_start(
        enrollments=Enrollment.objects.filter(sequence=seq),
        started_by=None,
        team=team_a.team,
        description="bulk",
    )
    drain()
    spent = cats_sandbox.requests()["sites"][str(site.id)]["total"] - before
    snap = cats_sandbox.snapshot(site.id)
    assert len(snap["pipelines"]) == len(contacts)
    # A CATS whose search filters compare case leaves a free-text search per email: one more.
    limit = 3.1 if cats_variant["contains_case_sensitive"] else 2.1
    assert spent / len(contacts) <= limit


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


# --- Clone -----------------------------------------------------------------------------------


def test_clone_copies_settings_and_skips_who_cannot_take_them(team_a, site, cats_sandbox):
    other_site = cats_sandbox.create_site()
    source = connect(
        team_a.owner,
        site,
        sync_mode="on_reply",
        deduplication=False,
        default_job_id=site.jobs["Product Designer"],
        fire_triggers=True,
    )
    connect(team_a.manager, site)
    connect(team_a.member, other_site)
    team_a.member2.integration = Membership.Integration.GREENHOUSE
    team_a.member2.save()
    lines = cats.cats_settings_clone(
        source=source, targets=Membership.objects.filter(team=team_a.team)
    )
    by = {line.membership.pk: line for line in lines}
    assert by[team_a.manager.pk].will_update and not by[team_a.manager.pk].note
    assert by[team_a.member.pk].will_update and by[team_a.member.pk].note
    assert not by[team_a.member2.pk].will_update
    assert "Greenhouse" in by[team_a.member2.pk].reason
    manager = CatsAccount.objects.get(membership=team_a.manager)
    member = CatsAccount.objects.get(membership=team_a.member)
    assert (
        manager.sync_mode,
        manager.deduplication,
        manager.default_job_id,
        manager.fire_triggers,
    ) == ("on_reply", False, site.jobs["Product Designer"], True)
    assert (member.sync_mode, member.default_job_id) == ("on_reply", None)


# --- Concurrency (PostgreSQL) ----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_syncs_of_one_contact_make_one_candidate(team_a, site, cats_sandbox):
    import threading

    if connection.vendor != "postgresql":
        pytest.skip("row-level concurrency needs PostgreSQL")
    connect(team_a.member, site, deduplication=False)
    s1 = SequenceFactory(team=team_a.team, owner=team_a.member)
    s2 = SequenceFactory(team=team_a.team, owner=team_a.member)
    add(s1, "race@example.com")
    add(s2, "race@example.com")
    ids = list(SyncTask.objects.values_list("id", flat=True))
    assert len(ids) == 2
    barrier = threading.Barrier(2)
    errors = []

    def work(tid):
        from django.db import connections

        try:
            barrier.wait()
            for _ in range(20):
                tasks_execute(task_ids=[tid])
                if SyncTask.objects.get(pk=tid).state == "done":
                    break
                SyncTask.objects.filter(pk=tid).update(not_before=timezone.now())
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(t,)) for t in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(candidates(cats_sandbox.snapshot(site.id), "race@example.com")) == 1
    assert CandidateLink.objects.get(email="race@example.com").candidate_id


def test_rotate_keys_command_reencrypts_under_the_new_key(team_a, site, settings):
    from cryptography.fernet import Fernet
    from django.core.management import call_command

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CATS_ENCRYPTION_KEYS = [old]
    account = connect(team_a.member, site)
    settings.CATS_ENCRYPTION_KEYS = [new, old]
    call_command("cats_rotate_keys")
    settings.CATS_ENCRYPTION_KEYS = [new]
    account.refresh_from_db()
    assert crypto.decrypt(account.api_key_encrypted) == site.api_key


def test_resync_estimate_follows_the_request_budget(team_a, site, seq):
    from datetime import timedelta

    from cats_sync.models import CatsRequest

    for i in range(40):
        add(seq, f"eta{i}@example.com")
    account = connect(team_a.member, site)
    run = cats.resync_start(
        enrollments=Enrollment.objects.filter(sequence=seq),
        started_by=None,
        team=team_a.team,
        description="eta",
    )
    soon = cats.resync_progress(run=run).eta
    assert soon - timezone.now() < timedelta(minutes=2)
    # The window is nearly spent: the rest has to wait for CATS' rolling hour.
    CatsRequest.objects.bulk_create(
        [CatsRequest(site=account.site, at=timezone.now())] * (account.site.rate_limit - 10)
    )
    later = cats.resync_progress(run=run).eta
    assert later - timezone.now() > timedelta(minutes=5)


def test_retry_after_a_resync_requeued_the_work_does_not_double_it(team_a, site, seq, cats_sandbox):
    job = site.jobs["Product Designer"]
    connect(team_a.member, site, default_job_id=job)
    cats_sandbox.delete_job(site.id, job)
    contact = add(seq, "double@example.com")
    drain()
    es = es_of(contact, seq)
    assert SyncTask.objects.get().state == SyncTask.State.FAILED
    cats.resync_start(
        enrollments=Enrollment.objects.filter(pk=es.enrollment_id),
        started_by=None,
        team=team_a.team,
        description="again",
    )
    assert cats.sync_retry(enrollment_ids=[es.enrollment_id]) == 0
    states = sorted(SyncTask.objects.values_list("state", "outcome"))
    assert states == [("done", "superseded"), ("pending", "")]


def test_batch_past_its_time_leaves_the_rest_pending_for_the_sweeper(
    team_a, site, seq, monkeypatch
):
    connect(team_a.member, site)
    for i in range(3):
        add(seq, f"late{i}@example.com")
    ids = list(SyncTask.objects.values_list("id", flat=True))
    monkeypatch.setattr(runner, "BATCH_SECONDS", 0)
    assert tasks_execute(task_ids=ids) == {}
    assert set(SyncTask.objects.values_list("state", "attempts")) == {("pending", 0)}


def test_sweeper_forgets_old_finished_live_work_but_not_failed_work(team_a, site, seq):
    from datetime import timedelta

    connect(team_a.member, site)
    add(seq, "old-done@example.com")
    add(seq, "old-failed@example.com")
    done, failed = SyncTask.objects.order_by("id")
    long_ago = timezone.now() - timedelta(days=31)
    SyncTask.objects.filter(pk=done.pk).update(state="done")
    SyncTask.objects.filter(pk=failed.pk).update(state="failed")
    SyncTask.objects.update(updated_at=long_ago)
    sweep()
    assert list(SyncTask.objects.values_list("state", flat=True)) == ["failed"]


def test_candidate_deleted_in_cats_is_found_or_created_again(team_a, site, seq, cats_sandbox):
    import requests

    job = site.jobs["Senior Backend Engineer"]
    connect(team_a.member, site)
    first = add(seq, "deleted@example.com")
    drain()
    old_id = es_of(first, seq).candidate_id
    # A recruiter deletes the candidate in CATS.
    requests.delete(
        f"{cats_sandbox.url}/candidates/{old_id}",
        headers={"Authorization": f"Token {site.api_key}"},
        timeout=5,
    )
    other = SequenceFactory(team=team_a.team, owner=team_a.member)
    sequence_sync(other, job_id=job)
    add(other, "deleted@example.com")
    drain()
    SyncTask.objects.filter(state="pending").update(not_before=timezone.now())
    drain()
    snap = cats_sandbox.snapshot(site.id)
    [again] = candidates(snap, "deleted@example.com")
    assert again["id"] != old_id
    es = es_of(first, other)
    assert es.candidate_id == again["id"] and es.pipeline_id
    assert [p["job_id"] for p in pipelines(snap, again["id"])] == [job]
