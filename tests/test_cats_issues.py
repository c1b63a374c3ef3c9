"""Errors a person acts on: each stays until its step succeeds, Retry re-runs it, and nothing is
written before a whole page is valid. Plus the settings check under waits, and stored keys
that cannot be read."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from cats_sandbox import make_seed, status, workflow
from cats_sync import crypto
from cats_sync import messages as msg
from cats_sync import services as cats
from cats_sync.models import (
    CandidateLink,
    CatsAccount,
    CatsRequest,
    EnrollmentSync,
    FieldMapping,
    ResyncRun,
    SyncIssue,
    SyncTask,
)
from cats_sync.tasks import drain, sweep
from interseller import services
from interseller.models import Enrollment, Membership

from .cats_helpers import add, candidates, connect, pipelines
from .factories import SequenceFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def site(cats_sandbox, settings, cats_variant):
    settings.CATS_API_URL = cats_sandbox.url
    return cats_sandbox.create_site(**cats_variant)


@pytest.fixture
def seq(team_a):
    return SequenceFactory(team=team_a.team, owner=team_a.member, title="Backend engineers")


def es_of(contact, sequence) -> EnrollmentSync:
    return EnrollmentSync.objects.get(enrollment__contact=contact, enrollment__sequence=sequence)


def event(contact, sequence, external_id, kind, *, at=T0, **extra):
    enrollment = Enrollment.objects.get(contact=contact, sequence=sequence)
    return services.email_event_record(
        enrollment=enrollment, external_id=external_id, kind=kind, occurred_at=at, **extra
    )


# --- a refused status stays until it moves -------------------------------------------------------


@pytest.fixture
def gated_site(cats_sandbox, settings, cats_variant):
    """A workflow where "Replied" may only follow "Screened", a step recruiters take by hand."""
    settings.CATS_API_URL = cats_sandbox.url
    statuses = [
        status("No Contact"),
        status("Messaged"),
        status("Screened"),
        status("Replied", prerequisites=["Screened"]),
        status("Interested"),
        status("Not Interested"),
    ]
    seed = make_seed(
        workflows=[workflow("Gated", statuses, is_default=True)],
        jobs=[{"title": "Gated job", "workflow": "Gated", "status": "Active", "location": ""}],
        **cats_variant,
    )
    return cats_sandbox.create_site(seed)


def test_a_refused_status_stays_until_retry_moves_it(team_a, gated_site, seq, cats_sandbox):
    site = gated_site
    connect(team_a.member, site, default_job_id=site.jobs["Gated job"])
    contact = add(seq, "gated@example.com")
    drain()
    event(contact, seq, "m1", "message_sent")
    event(contact, seq, "r1", "reply_received", at=T0 + timedelta(hours=1))
    drain()
    es = es_of(contact, seq)
    reply_task = SyncTask.objects.get(event__external_id="r1")
    assert reply_task.state == SyncTask.State.FAILED
    assert es.error_code == EnrollmentSync.Error.REJECTED
    assert es.error_message.startswith("CATS refused to move the pipeline to 'Replied'")
    issue = SyncIssue.objects.get(enrollment_sync=es, step="status", key="Replied")
    # The activity of the reply was still logged: only the status waits.
    snap = cats_sandbox.snapshot(site.id)
    assert len([a for a in snap["activities"] if a["data_item"]["id"] == es.candidate_id]) == 2
    # A recruiter does the step by hand; Retry re-runs exactly what failed.
    pipeline = pipelines(snap, es.candidate_id)[0]
    cats_sandbox.set_status_by_hand(site.id, pipeline["id"], site.status_id("Screened", "Gated"))
    assert cats.sync_retry(enrollment_ids=[es.enrollment_id]) == 1
    drain()
    assert pipelines(cats_sandbox.snapshot(site.id), es.candidate_id)[0]["status_title"] == (
        "Replied"
    )
    assert not SyncIssue.objects.filter(pk=issue.pk).exists()
    es.refresh_from_db()
    assert es.error_code == ""
    assert SyncTask.objects.get(pk=reply_task.pk).state == SyncTask.State.DONE


def test_a_missing_status_created_in_cats_is_found_on_retry(team_a, site, seq, cats_sandbox):
    connect(team_a.member, site, default_job_id=site.jobs["VP of Engineering"])
    contact = add(seq, "exec@example.com")
    drain()
    event(contact, seq, "x1", "reply_received")
    drain()
    es = es_of(contact, seq)
    assert es.error_code == EnrollmentSync.Error.STATUS_MISSING
    assert SyncTask.objects.get(event__external_id="x1").state == SyncTask.State.FAILED
    assert cats.sync_retry(enrollment_ids=[es.enrollment_id]) == 1


# --- an error clears exactly when its step succeeds ----------------------------------------------


def test_a_field_error_clears_when_that_field_is_written_again(team_a, site, seq, cats_sandbox):
    account = connect(team_a.member, site, default_job_id=site.jobs["Senior Backend Engineer"])
    cats.custom_fields_refresh(account=account)
    FieldMapping.objects.create(
        account=account,
        value="last_messaged_at",
        field_id=site.custom_fields["Last messaged at"],
        field_name="Last messaged at",
        field_type="date",
    )
    contact = add(seq, "fields@example.com")
    drain()
    cats_sandbox.delete_custom_field(site.id, site.custom_fields["Last messaged at"])
    event(contact, seq, "f1", "message_sent")
    drain()
    es = es_of(contact, seq)
    assert es.error_code == EnrollmentSync.Error.FIELD
    # A person maps the value to another field, then presses Retry.
    FieldMapping.objects.filter(account=account).update(
        field_id=site.custom_fields["First messaged at"], field_name="First messaged at"
    )
    cats.sync_retry(enrollment_ids=[es.enrollment_id])
    drain()
    es.refresh_from_db()
    assert es.error_code == "" and not SyncIssue.objects.filter(enrollment_sync=es).exists()
    [row] = candidates(cats_sandbox.snapshot(site.id), "fields@example.com")
    assert row["custom_fields_by_name"]["First messaged at"] == "2026-11-02"


def test_a_status_success_does_not_clear_a_field_error(team_a, site, seq, cats_sandbox):
    account = connect(team_a.member, site, default_job_id=site.jobs["Senior Backend Engineer"])
    FieldMapping.objects.create(
        account=account,
        value="responded_at",
        field_id=site.custom_fields["Responded at"],
        field_name="Responded at",
        field_type="date",
    )
    contact = add(seq, "two-problems@example.com")
    drain()
    cats_sandbox.delete_custom_field(site.id, site.custom_fields["Responded at"])
    event(contact, seq, "m1", "message_sent")
    event(contact, seq, "r1", "reply_received", at=T0 + timedelta(hours=1))
    drain()
    es = es_of(contact, seq)
    assert pipelines(cats_sandbox.snapshot(site.id), es.candidate_id)[0]["status_title"] == (
        "Replied"
    )
    assert es.error_code == EnrollmentSync.Error.FIELD


# --- the settings check never 500s on a wait ------------------------------------------------------


def test_settings_check_when_the_budget_is_spent_says_when_to_try_again(team_a, site, login):
    account = connect(team_a.member, site)
    CatsRequest.objects.bulk_create(
        [CatsRequest(site=account.site, at=timezone.now())] * account.site.rate_limit
    )
    [finding] = cats.cats_settings_check(account=account)
    assert not finding.ok and "Check again after" in finding.fix
    response = login(team_a.member).get(
        reverse("admin:cats_sync_catsaccount_check", args=[account.pk])
    )
    assert response.status_code == 200 and "Check again after" in response.content.decode()


def test_settings_check_when_cats_asks_us_to_wait(team_a, site, cats_sandbox):
    account = connect(team_a.member, site)
    cats_sandbox.fault("rate_limit", route="*", retry_after=30)
    [finding] = cats.cats_settings_check(account=account)
    assert not finding.ok and "Check again after" in finding.fix


def test_saving_settings_sends_no_request_to_cats(team_a, site, cats_sandbox, login):
    account = connect(team_a.member, site, default_job_id=424242)
    client = login(team_a.member)
    page = client.get(reverse("admin:cats_sync_catsaccount_change", args=[account.pk]))
    data = {
        k: v
        for k, v in page.context["adminform"].form.initial.items()
        if v is not None and k not in ("api_key", "membership")
    }
    data.update({"mappings-TOTAL_FORMS": 0, "mappings-INITIAL_FORMS": 0, "sync_mode": "on_add"})
    data.update({name: "on" for name in ("deduplication", "activity_tracking", "status_sync")})
    before = cats_sandbox.requests()["total"]
    response = client.post(
        reverse("admin:cats_sync_catsaccount_change", args=[account.pk]), data, follow=True
    )
    assert response.status_code == 200
    assert cats_sandbox.requests()["total"] == before
    # It still warns, from what we know of CATS.
    assert "(#424242) does not exist in CATS" in response.content.decode()


# --- nothing is saved before the whole page is valid ----------------------------------------------


def test_connecting_with_an_invalid_mapping_saves_nothing(team_a, site, cats_sandbox, login):
    client = login(team_a.member)
    page = client.get(reverse("admin:cats_sync_catsaccount_add"))
    assert page.status_code == 200
    data = {
        "membership": team_a.member.pk,
        "subdomain": site.subdomain,
        "api_key": site.api_key,
        "sync_mode": "off",
        "mappings-TOTAL_FORMS": 1,
        "mappings-INITIAL_FORMS": 0,
        "mappings-0-value": "bounced",
        "mappings-0-field_id": "999999",
    }
    seq = SequenceFactory(team=team_a.team, owner=team_a.member)
    response = client.post(reverse("admin:cats_sync_catsaccount_add"), data)
    assert response.status_code == 200  # the page shows the mapping error
    assert not CatsAccount.objects.exists()
    team_a.member.refresh_from_db()
    assert team_a.member.integration == Membership.Integration.NONE
    add(seq, "not-yet@example.com")
    assert not SyncTask.objects.exists()
    # The member is still offered, and the corrected page connects with mode Off as chosen.
    del data["mappings-0-value"], data["mappings-0-field_id"]
    data["mappings-TOTAL_FORMS"] = 0
    response = client.post(reverse("admin:cats_sync_catsaccount_add"), data)
    assert response.status_code == 302
    account = CatsAccount.objects.get()
    assert account.is_connected and account.sync_mode == CatsAccount.SyncMode.OFF


# --- keys that cannot be read ---------------------------------------------------------------------


def test_work_paused_by_an_unreadable_key_resumes_when_the_key_is_restored(
    team_a, site, seq, cats_sandbox, settings
):
    from cryptography.fernet import Fernet

    right = settings.CATS_ENCRYPTION_KEYS
    connect(team_a.member, site)
    settings.CATS_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    contact = add(seq, "locked@example.com")
    drain()
    task = SyncTask.objects.get()
    assert task.state == SyncTask.State.PAUSED and task.last_error == msg.ERR_KEY_UNREADABLE
    assert es_of(contact, seq).error_code == EnrollmentSync.Error.KEY_UNREADABLE
    sweep()
    assert SyncTask.objects.get().state == SyncTask.State.PAUSED  # still unreadable
    settings.CATS_ENCRYPTION_KEYS = right
    sweep()
    drain()
    es = es_of(contact, seq)
    assert es.synced_at and es.error_code == ""
    assert len(candidates(cats_sandbox.snapshot(site.id), "locked@example.com")) == 1


def test_a_malformed_encryption_key_stops_startup_naming_the_variable():
    env = {**os.environ, "DEBUG": "true", "CATS_ENCRYPTION_KEYS": "not-a-key,also-bad"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "CATS_ENCRYPTION_KEYS: value 1 of 2 is not a Fernet key" in result.stderr


def test_every_sync_error_shares_one_base_class():
    from cats_sync.client import CatsError
    from cats_sync.errors import BudgetSpent, CatsSyncError, KeyUnreadable, NeedsPerson, Wait

    for error in (crypto.KeyDecryptionError, CatsError, BudgetSpent, NeedsPerson):
        assert issubclass(error, CatsSyncError)
    assert issubclass(crypto.KeyDecryptionError, KeyUnreadable)
    assert issubclass(BudgetSpent, Wait)


# --- resync runs end by themselves, with true counts ----------------------------------------------


def test_a_run_ends_when_its_last_task_ends_without_anyone_looking(team_a, site, seq):
    for i in range(3):
        add(seq, f"run{i}@example.com")
    connect(team_a.member, site)
    run = cats.resync_start(
        enrollments=Enrollment.objects.filter(sequence=seq),
        started_by=None,
        team=team_a.team,
        description="three",
    )
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
    run = cats.resync_start(
        enrollments=Enrollment.objects.filter(sequence=seq),
        started_by=None,
        team=team_a.team,
        description="lost",
    )
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
    run = cats.resync_start(
        enrollments=Enrollment.objects.filter(sequence=seq),
        started_by=None,
        team=team_a.team,
        description="later",
    )
    due = timezone.now() + timedelta(minutes=13)
    SyncTask.objects.update(not_before=due, waiting_on="retry")
    progress = cats.resync_progress(run=run)
    assert progress.eta >= due


def test_the_run_page_states_how_long_failures_are_retried(team_a, site, seq, login):
    add(seq, "page@example.com")
    connect(team_a.member, site)
    run = cats.resync_start(
        enrollments=Enrollment.objects.filter(sequence=seq),
        started_by=team_a.owner.user,
        team=team_a.team,
        description="page",
    )
    page = login(team_a.owner).get(reverse("admin:cats_sync_resyncrun_change", args=[run.pk]))
    assert cats.retry_bound_text() in page.content.decode()
    run.refresh_from_db()
    assert run.state == ResyncRun.State.RUNNING  # a GET changes nothing


def test_a_running_resync_can_be_cancelled_and_leaves_the_rest_for_later(team_a, site, seq, login):
    for i in range(3):
        add(seq, f"cancel{i}@example.com")
    connect(team_a.member, site)
    run = cats.resync_start(
        enrollments=Enrollment.objects.filter(sequence=seq),
        started_by=team_a.member.user,
        team=team_a.team,
        description="to cancel",
    )
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
