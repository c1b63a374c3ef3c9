"""Errors a person acts on: a refused status stays until Retry moves it, and an error clears
exactly when its own step succeeds."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cats_sandbox import make_seed, status, workflow
from cats_sync import services as cats
from cats_sync.models import EnrollmentSync, FieldMapping, SyncIssue, SyncTask
from cats_sync.tasks import drain
from tests.support.cats import T0, add, candidates, connect, es_of, event, pipelines

pytestmark = pytest.mark.django_db


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
