"""Workers racing on PostgreSQL (row locks): one candidate, one pipeline, one claim."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from cats_sync import crypto
from cats_sync import services as cats
from cats_sync.engine import runner, tasks_execute
from cats_sync.models import CandidateLink, SyncTask
from cats_sync.tasks import drain, sweep
from interseller.models import Enrollment
from tests.factories import SequenceFactory
from tests.support.cats import (
    add,
    candidates,
    connect,
    es_of,
    pipelines,
    resync_sequence,
    sequence_sync,
)

pytestmark = pytest.mark.django_db


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
    run = resync_sequence(seq, "eta")
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
