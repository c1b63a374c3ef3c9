"""Sync correctness against a CATS that answers the open questions either way: duplicates and
"Exists in CATS", modes, moves between sites, disconnected members, mapped values."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import close_old_connections, connection

from cats_sync import messages as msg
from cats_sync import services as cats
from cats_sync.models import (
    CatsAccount,
    EnrollmentSync,
    FieldMapping,
    SequenceSync,
    SyncIssue,
    SyncTask,
)
from cats_sync.tasks import drain
from interseller import services
from interseller.models import Enrollment
from tests.factories import ContactFactory, SequenceFactory
from tests.support.cats import T0, add, candidates, connect, es_of, event, pipelines, sequence_sync

pytestmark = pytest.mark.django_db


@pytest.fixture
def site(sandbox, cats_variant):
    """A CATS that already holds two people, written in mixed case, one with a second address."""
    return sandbox.create_site(
        **cats_variant,
        candidates=[
            {
                "first_name": "Existing",
                "last_name": "Person",
                "emails": {"primary": "Existing.Person@Example.com"},
            },
            {
                "first_name": "Second",
                "last_name": "Address",
                "emails": {"primary": "work@corp.example", "secondary": "Alt.Mail@Corp.Example"},
            },
        ],
    )


# --- 1. mixed-case emails ---------------------------------------------------------------------


@pytest.mark.parametrize("dedup", [True, False])
def test_mixed_case_email_in_cats_is_found_whatever_case_either_side_stores(
    team_a, site, seq, cats_sandbox, dedup
):
    connect(team_a.member, site, deduplication=dedup)
    contact = add(seq, "existing.person@example.com")
    drain()
    snap = cats_sandbox.snapshot(site.id)
    [row] = candidates(snap, "existing.person@example.com")
    es = es_of(contact, seq)
    assert es.candidate_id == row["id"] and not es.created_candidate
    assert es.exists_in_cats is dedup
    assert (es.error_code == EnrollmentSync.Error.EXISTS_IN_CATS) is dedup


def test_mixed_case_secondary_email_is_found(team_a, site, seq, cats_sandbox):
    connect(team_a.member, site)
    contact = add(seq, "alt.mail@corp.example")
    drain()
    rows = candidates(cats_sandbox.snapshot(site.id), "alt.mail@corp.example")
    assert len(rows) == 1 and es_of(contact, seq).candidate_id == rows[0]["id"]


# --- 2. "Exists in CATS" is the spec's integration error ----------------------------------------


def test_exists_in_cats_is_an_error_that_does_not_stop_the_sync(team_a, site, seq, cats_sandbox):
    connect(team_a.member, site, default_job_id=site.jobs["Senior Backend Engineer"])
    contact = add(seq, "existing.person@example.com")
    drain()
    es = es_of(contact, seq)
    assert (es.error_code, es.error_message) == ("exists_in_cats", msg.EXISTS_IN_CATS)
    issue = SyncIssue.objects.get(enrollment_sync=es)
    assert issue.code == "exists_in_cats" and not issue.blocking
    # It still synced: on the job.
    assert es.synced_at and len(pipelines(cats_sandbox.snapshot(site.id), es.candidate_id)) == 1


# --- 3. what we created is never "pre-existing" -------------------------------------------------


def test_removing_and_adding_back_does_not_flag_our_own_candidate(team_a, site, seq, cats_sandbox):
    connect(team_a.member, site)
    contact = add(seq, "roundtrip@example.com")
    drain()
    services.contact_remove_from_sequence(contact=contact, sequence=seq)
    add(seq, "roundtrip@example.com")
    drain()
    es = es_of(contact, seq)
    assert es.exists_in_cats is False and es.error_code == ""
    assert len(candidates(cats_sandbox.snapshot(site.id), "roundtrip@example.com")) == 1


def test_same_contact_in_two_sequences_at_once_is_not_flagged(team_a, site, cats_sandbox):
    connect(team_a.member, site)
    one = SequenceFactory(team=team_a.team, owner=team_a.member)
    two = SequenceFactory(team=team_a.team, owner=team_a.member)
    contact = add(one, "twice@example.com")
    add(two, "twice@example.com")
    drain()
    for sequence in (one, two):
        es = es_of(contact, sequence)
        assert es.candidate_id and not es.exists_in_cats
    assert len(candidates(cats_sandbox.snapshot(site.id), "twice@example.com")) == 1


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_workers_adding_one_contact_to_two_sequences_never_flag_it(team_a, site, cats_sandbox):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent workers need PostgreSQL")
    connect(team_a.member, site)
    one = SequenceFactory(team=team_a.team, owner=team_a.member)
    two = SequenceFactory(team=team_a.team, owner=team_a.member)
    contact = add(one, "race@example.com")
    add(two, "race@example.com")
    ids = list(SyncTask.objects.values_list("id", flat=True))

    def worker(task_id):
        from cats_sync.engine import tasks_execute

        try:
            tasks_execute(task_ids=[task_id])
        finally:
            close_old_connections()

    threads = [threading.Thread(target=worker, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    SyncTask.objects.update(not_before=datetime.now(UTC))
    drain()
    assert len(candidates(cats_sandbox.snapshot(site.id), "race@example.com")) == 1
    assert not EnrollmentSync.objects.filter(exists_in_cats=True).exists()
    assert (
        EnrollmentSync.objects.filter(enrollment__contact=contact, synced_at__isnull=False).count()
        == 2
    )


# --- 4. resync honours "only when they reply" --------------------------------------------------


def test_resync_under_reply_mode_waits_for_replies(team_a, site, seq, cats_sandbox):
    quiet = add(seq, "quiet@example.com")
    replied = add(seq, "replied@example.com")
    event(replied, seq, "r1", "reply_received")
    connect(team_a.member, site, sync_mode=CatsAccount.SyncMode.ON_REPLY)
    enrollments = Enrollment.objects.filter(sequence=seq)
    plan = cats.resync_plan(enrollments=enrollments)
    assert plan.blocked == {msg.BLOCK_WAITS_FOR_REPLY: 1}
    cats.resync_start(enrollments=enrollments, started_by=None, team=team_a.team, description="r")
    drain()
    snap = cats_sandbox.snapshot(site.id)
    assert candidates(snap, "quiet@example.com") == []
    assert len(candidates(snap, "replied@example.com")) == 1
    # The quiet one is synced by its own reply, as usual.
    event(quiet, seq, "q1", "reply_received")
    drain()
    assert len(candidates(cats_sandbox.snapshot(site.id), "quiet@example.com")) == 1


# --- 6. a sequence moved to an owner on another CATS site ---------------------------------------


def test_sequence_moved_to_an_owner_on_another_site_drops_the_old_job(
    team_a, site, cats_sandbox, login
):
    from django.urls import reverse

    other = cats_sandbox.create_site()
    connect(team_a.member, site)
    connect(team_a.member2, other)
    seq = SequenceFactory(team=team_a.team, owner=team_a.member, title="Moving")
    old_job = site.jobs["Senior Backend Engineer"]
    sequence_sync(seq, job_id=old_job)
    client = login(team_a.owner)
    url = reverse("admin:interseller_sequence_change", args=[seq.pk])
    page = client.get(url)
    form = page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k != "id"}
    data.update(
        {
            "team": team_a.team.pk,
            "owner": team_a.member2.pk,
            "title": "Moving",
            "enrollments-TOTAL_FORMS": 0,
            "enrollments-INITIAL_FORMS": 0,
            "cats_sync-TOTAL_FORMS": 1,
            "cats_sync-INITIAL_FORMS": 1,
            "cats_sync-0-id": seq.cats_sync.pk,
            "cats_sync-0-sequence": seq.pk,
            "cats_sync-0-enabled": "on",
            "cats_sync-0-job_id": old_job,
        }
    )
    response = client.post(url, data, follow=True)
    assert response.status_code == 200, response.content[:2000]
    notice = msg.NOTICE_JOB_CLEARED_OWNER.format(job_id=old_job, owner=team_a.member2)
    assert notice in response.content.decode()
    row = SequenceSync.objects.get(sequence=seq)
    assert row.job_id is None and row.notice == notice
    contact = add(seq, "moved@example.com")
    drain()
    es = es_of(contact, seq)
    assert es.synced_at and es.error_code == ""
    assert len(candidates(cats_sandbox.snapshot(other.id), "moved@example.com")) == 1


def test_reconnecting_to_another_site_clears_that_sites_ids(team_a, site, cats_sandbox):
    other = cats_sandbox.create_site()
    account = connect(team_a.member, site, default_job_id=site.jobs["Senior Backend Engineer"])
    FieldMapping.objects.create(account=account, value="bounced", field_id=1, field_name="x")
    seq = SequenceFactory(team=team_a.team, owner=team_a.member)
    sequence_sync(seq, job_id=site.jobs["Product Designer"])
    connected = cats.cats_connect(
        membership=team_a.member, subdomain=other.subdomain, api_key=other.api_key
    )
    account.refresh_from_db()
    assert account.default_job_id is None and not account.mappings.exists()
    assert SequenceSync.objects.get(sequence=seq).job_id is None
    assert "another CATS site" in connected.notice


# --- 7. added while disconnected ----------------------------------------------------------------


def test_contact_added_while_disconnected_waits_paused_and_syncs_on_reconnect(
    team_a, site, seq, cats_sandbox
):
    account = connect(team_a.member, site)
    cats.cats_disconnect(account=account)
    add(seq, "meanwhile@example.com")
    task = SyncTask.objects.get()
    assert task.state == SyncTask.State.PAUSED
    drain()
    assert candidates(cats_sandbox.snapshot(site.id), "meanwhile@example.com") == []
    cats.cats_connect(membership=team_a.member, subdomain=site.subdomain, api_key=site.api_key)
    drain()
    assert len(candidates(cats_sandbox.snapshot(site.id), "meanwhile@example.com")) == 1


# --- 8. every mapped value reflects every event ------------------------------------------------


def test_unsubscribe_then_bounce_leaves_both_checkboxes_true(team_a, site, seq, cats_sandbox):
    account = connect(team_a.member, site)
    for value, name in (("bounced", "Bounced"), ("unsubscribed", "Unsubscribed")):
        cats.custom_fields_refresh(account=account)
        FieldMapping.objects.create(
            account=account,
            value=value,
            field_id=site.custom_fields[name],
            field_name=name,
            field_type="checkbox",
        )
    contact = add(seq, "both@example.com")
    drain()
    event(contact, seq, "u1", "unsubscribed", at=T0)
    drain()
    event(contact, seq, "b1", "bounced", at=T0 + timedelta(hours=1))
    drain()
    [row] = candidates(cats_sandbox.snapshot(site.id), "both@example.com")
    assert row["custom_fields_by_name"]["Unsubscribed"] is True
    assert row["custom_fields_by_name"]["Bounced"] is True


def test_bounce_time_is_kept_apart_from_state(team_a):
    seq = SequenceFactory(team=team_a.team, owner=team_a.member)
    contact = ContactFactory(team=team_a.team, owner=team_a.member)
    services.contact_add_to_sequence(contact=contact, sequence=seq)
    event(contact, seq, "b", "bounced", at=T0 + timedelta(hours=2))
    event(contact, seq, "u", "unsubscribed", at=T0)
    enrollment = Enrollment.objects.get(contact=contact)
    assert enrollment.bounced_at == T0 + timedelta(hours=2)
    assert enrollment.unsubscribed_at == T0
