"""Importing into a sequence syncs each contact to CATS once, in the request or in the
background; big files are imported by a worker as an ImportJob."""

from __future__ import annotations

import pytest
from django.urls import reverse

from interseller import imports, tasks
from interseller.imports import jobs as import_jobs
from interseller.models import Contact, Enrollment, ImportJob
from tests.factories import ContactFactory
from tests.support.admin import message_texts
from tests.support.spreadsheets import (
    CHANGELIST_URL,
    confirm,
    csv_bytes,
    fixture_bytes,
    import_file,
    team_emails,
    teammate_file,
    upload,
)

pytestmark = pytest.mark.django_db


# --- sequence assignment syncs to CATS, as if added by hand -----------------------------------
@pytest.mark.parametrize("in_background", [False, True], ids=["in-request", "background"])
def test_importing_into_a_sequence_syncs_each_contact_to_cats_once(
    team_a, login, sequence_a, cats_sandbox, settings, in_background
):
    from cats_sync.models import CatsAccount, EnrollmentSync
    from tests.support.cats import candidates, connect, drain

    if in_background:
        settings.IMPORT_BACKGROUND_ROWS = 1
    settings.CATS_API_URL = cats_sandbox.url
    site = cats_sandbox.create_site(
        candidates=[
            {
                "first_name": "Grace",
                "last_name": "Hopper",
                "emails": {"primary": "grace.hopper@navy.example"},
            }
        ]
    )
    connect(
        team_a.member, site, sync_mode=CatsAccount.SyncMode.ON_ADD, deduplication=True
    )  # the sequence's owner: their connection and settings apply
    before = len(cats_sandbox.snapshot(site.id)["candidates"])
    client = login(team_a.member)
    _, done = import_file(
        client, fixture_bytes("linkedin_recruiter.csv"), team=team_a.team, sequence=sequence_a
    )
    if in_background:
        assert tasks.import_job_run(ImportJob.objects.get().pk) == "done"
    # An import is bulk work: one task per contact, none of them ahead of a person's add.
    from cats_sync.models import SyncTask

    assert (
        sorted(SyncTask.objects.values_list("priority", "state"))
        == [(SyncTask.Priority.BULK, SyncTask.State.PENDING)] * 3
    )
    drain()
    snap = cats_sandbox.snapshot(site.id)
    assert len(snap["candidates"]) == before + 2
    for email in ("ada@analytical.example", "linus@kernel.example"):
        [candidate] = candidates(snap, email)
        es = EnrollmentSync.objects.get(enrollment__contact__email=email)
        assert es.candidate_id == candidate["id"] and es.created_candidate
    # Already in CATS: no second record, and the dedup warning.
    assert len(candidates(snap, "grace.hopper@navy.example")) == 1
    es = EnrollmentSync.objects.get(enrollment__contact__email="grace.hopper@navy.example")
    assert es.exists_in_cats is True and es.created_candidate is False
    assert es.candidate_id == site.candidates[0]


# --- big files: imported by a worker ----------------------------------------------------------
def job_url(job) -> str:
    return reverse("admin:interseller_importjob_change", args=[job.pk])


def stored_file(job) -> bytes:
    return b"".join(bytes(d) for d in job.parts.order_by("index").values_list("data", flat=True))


@pytest.fixture
def background(settings):
    settings.IMPORT_BACKGROUND_ROWS = 2


def test_a_big_file_is_queued_on_confirm_and_imported_by_the_worker_once(
    team_a, login, sequence_a, background, monkeypatch, django_capture_on_commit_callbacks
):
    data = fixture_bytes("linkedin_recruiter.csv")
    client = login(team_a.member)
    dry = upload(client, data, team=team_a.team, sequence=sequence_a)
    assert dry.context["in_background"]
    assert 'id="import-in-background"' in dry.content.decode()
    with django_capture_on_commit_callbacks() as callbacks:
        done = confirm(client, dry)
    job = ImportJob.objects.get()
    assert done.status_code == 302 and done.url == job_url(job)
    assert Contact.objects.count() == 0  # nothing imported inside the request
    assert (job.state, job.total_rows, job.team, job.owner, job.sequence) == (
        ImportJob.State.QUEUED,
        3,
        team_a.team,
        team_a.member,
        sequence_a,
    )
    assert stored_file(job) == data and job.created_by == team_a.member.user
    # Enqueued once the job row is committed.
    queued = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda *a, **k: queued.append(a))
    for callback in callbacks:
        callback()
    assert queued == [("interseller.tasks.import_job_run", job.pk)]

    page = client.get(job_url(job))
    html = page.content.decode()
    assert page.status_code == 200
    assert imports.MSG_JOB_QUEUED.format(rows=3) in message_texts(page)
    assert '<meta http-equiv="refresh" content="3">' in html
    assert "Waiting for a worker" in html

    assert tasks.import_job_run(job.pk) == "done"
    job.refresh_from_db()
    assert (job.state, job.processed_rows, job.created, job.updated, job.unchanged) == (
        ImportJob.State.DONE,
        3,
        3,
        0,
        0,
    )
    assert (job.added_to_sequence, job.already_in_sequence) == (3, 0)
    assert not job.parts.exists() and job.started_at and job.finished_at
    assert team_emails(team_a.team) == {
        "ada@analytical.example",
        "grace.hopper@navy.example",
        "linus@kernel.example",
    }
    assert set(Contact.objects.values_list("owner", flat=True)) == {team_a.member.pk}
    assert Enrollment.objects.filter(sequence=sequence_a, added_by=team_a.member).count() == 3

    html = client.get(job_url(job)).content.decode()
    # The same words the import in the request ends with.
    assert (
        "Import finished: 3 new, 0 updated and 0 unchanged contacts. 3 added to the sequence "
        "“Backend engineers” (0 already in it)."
    ) in html
    assert 'http-equiv="refresh"' not in html

    # A second delivery of the task does nothing.
    assert tasks.import_job_run(job.pk) == "nothing to do"
    assert Contact.objects.count() == 3 and Enrollment.objects.count() == 3
    job.refresh_from_db()
    assert job.created == 3


def test_a_small_file_is_still_imported_in_the_request(team_a, login, background):
    _, done = import_file(login(team_a.owner), fixture_bytes("google_sheets.tsv"), team=team_a.team)
    assert done.url == CHANGELIST_URL
    assert not ImportJob.objects.exists()
    assert team_emails(team_a.team) == {"katherine@nasa.example", "dorothy@nasa.example"}


def queue_job(client, team, data: bytes = b"", **kwargs) -> ImportJob:
    done = confirm(
        client, upload(client, data or fixture_bytes("linkedin_recruiter.csv"), team=team, **kwargs)
    )
    job = ImportJob.objects.get()
    assert done.url == job_url(job)
    return job


def test_a_file_that_became_invalid_fails_the_job_and_imports_nothing(team_a, login, background):
    client = login(team_a.member)
    job = queue_job(client, team_a.team, teammate_file("grace@x.example"))
    # Meanwhile a teammate adds the same person: the worker checks the file again.
    ContactFactory(team=team_a.team, owner=team_a.member2, email="grace@x.example")
    assert tasks.import_job_run(job.pk) == "failed"
    job.refresh_from_db()
    assert job.error == (
        "Nothing was imported: row 7: grace@x.example belongs to a contact of another "
        "teammate; ask them or a manager to update it"
    )
    assert job.processed_rows == 0 and not job.parts.exists()
    assert list(Contact.objects.values_list("email", flat=True)) == ["grace@x.example"]
    html = client.get(job_url(job)).content.decode()
    assert "belongs to a contact of another teammate" in html
    assert 'http-equiv="refresh"' not in html


@pytest.fixture
def one_row_chunks(monkeypatch):
    """Chunks of one row, so a three-row file is written in three commits."""
    monkeypatch.setattr(import_jobs, "JOB_CHUNK_ROWS", 1)


EMAILS = {"ada@analytical.example", "grace.hopper@navy.example", "linus@kernel.example"}


def test_an_error_part_way_keeps_the_chunks_written_and_says_up_to_which_row(
    team_a, login, background, one_row_chunks, monkeypatch
):
    existing = ContactFactory(
        team=team_a.team, owner=team_a.owner, email="grace.hopper@navy.example", company="Old"
    )
    client = login(team_a.owner)
    job = queue_job(client, team_a.team)
    real = import_jobs.contacts_upsert_many

    def failing_on_grace(**kwargs):
        if kwargs["rows"][0][0] == "grace.hopper@navy.example":
            raise RuntimeError("disk full")
        return real(**kwargs)

    monkeypatch.setattr(import_jobs, "contacts_upsert_many", failing_on_grace)
    assert tasks.import_job_run(job.pk) == "failed"
    job.refresh_from_db()
    assert job.error == (
        "The import stopped: The import stopped unexpectedly. Try again, or ask an administrator "
        "to look at the server log. Rows 1 to 2 of the file were imported (1 of 3 rows); the "
        "rest were not. Import the file again once it is fixed: rows already imported are "
        "updated, never added twice."
    )
    existing.refresh_from_db()
    assert existing.company == "Old"  # its chunk rolled back whole
    assert team_emails(team_a.team) == {"ada@analytical.example", "grace.hopper@navy.example"}
    html = client.get(job_url(job)).content.decode()
    assert "Rows 1 to 2 of the file were imported" in html
    assert '<td id="p-created">1</td>' in html


def test_a_worker_killed_mid_import_is_resumed_by_the_sweeper_without_duplicates(
    team_a, login, sequence_a, background, one_row_chunks, monkeypatch
):
    from django.utils import timezone

    client = login(team_a.owner)
    job = queue_job(client, team_a.team, sequence=sequence_a)
    real = import_jobs.contacts_upsert_many
    calls = []

    def killed_on_second_chunk(**kwargs):
        calls.append(kwargs["rows"][0][0])
        if len(calls) == 2:
            real(**kwargs)  # written, then the worker dies before its commit
            raise SystemExit("worker killed")
        return real(**kwargs)

    monkeypatch.setattr(import_jobs, "contacts_upsert_many", killed_on_second_chunk)
    with pytest.raises(SystemExit):
        tasks.import_job_run(job.pk)
    job.refresh_from_db()
    assert (job.state, job.processed_rows, job.next_row) == (ImportJob.State.RUNNING, 1, 2)
    assert team_emails(team_a.team) == {"ada@analytical.example"}
    html = client.get(job_url(job)).content.decode()
    assert "Importing: 1 of 3 rows written" in html and '<progress value="1" max="3"' in html

    # The sweeper leaves a run alone while it beats...
    queued = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda *a, **k: queued.append(a))
    assert tasks.import_jobs_sweep() == {"resumed": 0, "failed": 0, "requeued": 0}
    # ...and resumes it once the heartbeat is older than the lease.
    ImportJob.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - timezone.timedelta(seconds=imports.import_job_lease() + 1)
    )
    assert tasks.import_jobs_sweep() == {"resumed": 1, "failed": 0, "requeued": 0}
    assert queued == [("interseller.tasks.import_job_run", job.pk)]
    assert tasks.import_job_run(job.pk) == "done"
    job.refresh_from_db()
    assert (job.processed_rows, job.created, job.added_to_sequence, job.recoveries) == (3, 3, 3, 1)
    assert team_emails(team_a.team) == EMAILS
    assert Contact.objects.count() == 3
    assert Enrollment.objects.filter(sequence=sequence_a).count() == 3
    assert calls.count("ada@analytical.example") == 1  # the committed chunk was not redone


def test_a_job_that_keeps_stalling_is_failed_saying_what_was_imported(
    team_a, login, background, one_row_chunks, monkeypatch
):
    from django.utils import timezone

    client = login(team_a.owner)
    job = queue_job(client, team_a.team)
    monkeypatch.setattr(import_jobs, "import_job_slice", lambda: 0)
    monkeypatch.setattr("django_q.tasks.async_task", lambda *a, **k: None)
    assert tasks.import_job_run(job.pk) == "queued"  # one chunk, then handed over
    long_ago = timezone.now() - timezone.timedelta(seconds=imports.import_job_lease() + 1)
    ImportJob.objects.filter(pk=job.pk).update(
        state=ImportJob.State.RUNNING,
        heartbeat_at=long_ago,
        recoveries=imports.JOB_MAX_RECOVERIES,
    )
    assert tasks.import_jobs_sweep() == {"resumed": 0, "failed": 1, "requeued": 0}
    job.refresh_from_db()
    assert job.state == ImportJob.State.FAILED and not job.parts.exists()
    assert job.error.startswith(
        "The import stopped: Its worker stopped 4 times without finishing (it may have run out "
        "of memory or time). Rows 1 to 2 of the file were imported (1 of 3 rows)"
    )
    html = client.get(job_url(job)).content.decode()
    assert "Its worker stopped 4 times" in html and 'http-equiv="refresh"' not in html


def test_a_run_hands_the_rest_to_a_new_task_before_the_worker_timeout(
    team_a, login, background, one_row_chunks, monkeypatch, django_capture_on_commit_callbacks
):
    client = login(team_a.owner)
    job = queue_job(client, team_a.team)
    queued = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda *a, **k: queued.append(a))
    with django_capture_on_commit_callbacks(execute=True):
        assert imports.import_job_run(job_id=job.pk, max_seconds=0).state == "queued"
    assert queued == [("interseller.tasks.import_job_run", job.pk)]
    job.refresh_from_db()
    assert (job.state, job.processed_rows) == (ImportJob.State.QUEUED, 1)
    html = client.get(job_url(job)).content.decode()
    assert "Waiting for a worker to carry on: 1 of 3 rows written" in html
    assert tasks.import_job_run(job.pk) == "done"
    job.refresh_from_db()
    assert (job.processed_rows, job.created) == (3, 3)
    assert team_emails(team_a.team) == EMAILS


def test_a_job_left_running_by_a_dead_worker_is_run_again(team_a, login, background):
    from django.utils import timezone

    job = queue_job(login(team_a.owner), team_a.team)
    recent = timezone.now()
    ImportJob.objects.filter(pk=job.pk).update(state=ImportJob.State.RUNNING, heartbeat_at=recent)
    assert tasks.import_job_run(job.pk) == "nothing to do"  # still running somewhere
    long_ago = recent - timezone.timedelta(seconds=imports.import_job_lease() + 1)
    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=long_ago)
    assert tasks.import_job_run(job.pk) == "done"
    assert Contact.objects.count() == 3


def test_a_queued_job_whose_message_was_lost_is_enqueued_again(
    team_a, login, background, monkeypatch
):
    from django.utils import timezone

    job = queue_job(login(team_a.owner), team_a.team)
    queued = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda *a, **k: queued.append(a))
    assert tasks.import_jobs_sweep()["requeued"] == 0  # just queued: give the worker time
    long_ago = timezone.now() - timezone.timedelta(seconds=imports.import_job_lease() + 1)
    ImportJob.objects.filter(pk=job.pk).update(created_at=long_ago)
    assert tasks.import_jobs_sweep()["requeued"] == 1
    assert queued == [("interseller.tasks.import_job_run", job.pk)]


def test_import_jobs_are_scoped_like_contacts(team_a, team_b, login, client, background):
    job = queue_job(login(team_a.member), team_a.team)
    assert client.get(job_url(job)).status_code == 200
    listing = client.get(reverse("admin:interseller_importjob_changelist") + "?q=linkedin")
    assert listing.status_code == 200 and "linkedin_recruiter.csv" not in listing.content.decode()
    listing = client.get(reverse("admin:interseller_importjob_changelist") + "?q=contacts")
    assert "contacts.csv" in listing.content.decode()
    for who, status in [
        (team_a.owner, 200),
        (team_a.manager, 200),
        (team_a.member2, 404),  # members see their own imports only
        (team_b.owner, 404),
    ]:
        assert login(who).get(job_url(job)).status_code == status, who
    changelist = login(team_b.owner).get(reverse("admin:interseller_importjob_changelist"))
    assert changelist.status_code == 200
    assert list(changelist.context["cl"].result_list) == []
    # Read-only: no add, change or delete for anyone but a superuser.
    assert login(team_a.owner).post(job_url(job), {"state": "done"}).status_code == 403
    assert client.get(reverse("admin:interseller_importjob_add")).status_code == 403


def test_a_job_handed_over_mid_file_reads_the_rest_from_its_parts_in_a_new_run(
    team_a, login, sequence_a, background, monkeypatch
):
    """The file is kept in the database in parts: each run (any worker) reads it again from
    them and carries on after the last row written; the parts go once the job is done."""
    from interseller.imports import storage

    monkeypatch.setattr(storage, "PART_BYTES", 10)  # characters and rows split across parts
    monkeypatch.setattr(import_jobs, "JOB_CHUNK_ROWS", 2)
    monkeypatch.setattr("django_q.tasks.async_task", lambda *a, **k: None)
    rows = [["Email", "First name", "Notes"]]
    rows += [[f"p{i}@x.example", f"Zoë {i}", "two\nlines"] for i in range(7)]
    data = csv_bytes(rows)
    job = queue_job(login(team_a.owner), team_a.team, data, sequence=sequence_a)
    assert job.parts.count() == -(-len(data) // 10) and stored_file(job) == data

    assert imports.import_job_run(job_id=job.pk, max_seconds=0).state == "queued"
    job.refresh_from_db()
    assert (job.processed_rows, job.next_row) == (2, 3)
    assert tasks.import_job_run(job.pk) == "done"
    job.refresh_from_db()
    assert (job.processed_rows, job.created, job.added_to_sequence) == (7, 7, 7)
    assert sorted(Contact.objects.values_list("email", "first_name")) == [
        (f"p{i}@x.example", f"Zoë {i}") for i in range(7)
    ]
    assert not job.parts.exists()
