"""Imports too big for a request, run by django-q2 workers as an ImportJob with progress.

The dry run checked the file (these same bytes) before the job was queued. A member's job
first checks again, whole, what the team's contacts decide (a row that became a teammate's
contact), so that nothing is written if one is refused. Then the rows are written in chunks
of JOB_CHUNK_ROWS, each checked again and committed with the job's progress (the row of the
file it got to, and the counts): a worker that times out or dies loses at most the chunk it
was writing, the next run starts after the last committed chunk, and no row is written twice.
A run hands over to a fresh task well before the worker's timeout; a run whose heartbeat
stopped is resumed by the sweeper (`import_jobs_sweep`, every minute), and a job that stalls
JOB_MAX_RECOVERIES times is failed saying what was imported, so none stays "running" forever.
The file is kept in parts (storage.py) and read as a stream, a chunk of rows at a time, so
a worker's memory does not grow with the file.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from ..models import ImportJob, Membership, Sequence, Team
from ..services import TeammatesContact, contacts_upsert_many
from .execute import import_only_own
from .limits import EMAIL_QUERY_CHUNK
from .messages import (
    MSG_IMPORT_FAILED,
    MSG_JOB_CRASHED,
    MSG_JOB_NO_OWNER,
    MSG_JOB_SEQUENCE_GONE,
    MSG_JOB_STALLED,
    MSG_JOB_STOPPED,
    MSG_ROW_TEAMMATES_CONTACT,
    ImportRefused,
)
from .plan import RowError, import_plan
from .reading import sheet_read_chunks
from .sheet import Sheet
from .storage import import_job_file_delete, import_job_file_open, import_job_file_store

logger = logging.getLogger(__name__)

# How many invalid rows a failed job lists.
JOB_ERRORS_KEPT = 200
# Rows written (and committed, with the job's progress) at a time; within one email query.
JOB_CHUNK_ROWS = EMAIL_QUERY_CHUNK
# Times the sweeper resumes a job whose worker stopped before it fails the job.
JOB_MAX_RECOVERIES = 3


def import_job_create(
    *,
    team: Team,
    owner: Membership,
    created_by,
    sequence: Sequence | None,
    sheet: Sheet,
    data: bytes,
    file_name: str,
) -> ImportJob:
    """Queue a confirmed import for a worker; it starts once the caller's transaction commits."""
    job = ImportJob.objects.create(
        team=team,
        owner=owner,
        created_by=created_by,
        sequence=sequence,
        sequence_title=sequence.title if sequence else "",
        file_name=file_name[:255],
        file_description=sheet.description[:100],
        total_rows=len(sheet.rows),
    )
    import_job_file_store(job=job, data=data)
    transaction.on_commit(lambda: _job_enqueue(job.pk))
    return job


def _job_enqueue(job_id: int) -> None:
    from django_q.tasks import async_task

    try:
        async_task("interseller.tasks.import_job_run", job_id, group="contact-import")
    except Exception:
        # Broker down: the job row is committed, and the sweeper finds queued jobs.
        logger.warning("Could not enqueue import job %s; the sweeper will", job_id)


def import_job_progress(job: ImportJob) -> int:
    """Rows written so far: each chunk commits with the job's count, so the page is live."""
    return job.processed_rows


def import_job_lease() -> int:
    """Seconds after which a running job whose heartbeat stopped belonged to a worker that died.

    A run beats at every chunk (a few seconds) and ends itself after `import_job_slice()`;
    only a dead worker stays silent this long.
    """
    return 90


def import_job_slice() -> float:
    """Seconds a run writes before it hands the rest to a new task: half the worker's timeout
    (Q_CLUSTER["timeout"]), so django-q2 never kills an import for taking long."""
    return int(settings.Q_CLUSTER.get("timeout", 240)) / 2


def _job_fail(job: ImportJob, error: str, *, token: str | None = None) -> None:
    """Fail the job with what the person is told: nothing imported, or up to which row."""
    job.refresh_from_db(fields=["processed_rows", "next_row", "total_rows"])
    if job.processed_rows:
        text = MSG_JOB_STOPPED.format(
            error=error[0].upper() + error[1:],
            row=job.next_row,
            processed=job.processed_rows,
            total=job.total_rows,
        )
    else:
        text = MSG_IMPORT_FAILED.format(error=error)
    jobs = ImportJob.objects.filter(pk=job.pk)
    if token is not None:
        jobs = jobs.filter(claim_token=token)
    if jobs.update(
        state=ImportJob.State.FAILED,
        error=text,
        finished_at=timezone.now(),
        claim_token="",
    ):
        import_job_file_delete(job_id=job.pk)
    job.state, job.error = ImportJob.State.FAILED, text


def _chunks(job: ImportJob, *, after_row: int = 0):
    """The file's rows after `after_row`, JOB_CHUNK_ROWS at a time, read as they are needed."""
    for part in sheet_read_chunks(import_job_file_open(job_id=job.pk), size=JOB_CHUNK_ROWS):
        if part.rows[-1][0] <= after_row:
            continue
        if part.rows[0][0] <= after_row:
            part.rows = [r for r in part.rows if r[0] > after_row]
        yield part


def _beat(job_id: int, token: str, **values) -> bool:
    """Record progress and that the run is alive; False once another run took the job over."""
    return bool(
        ImportJob.objects.filter(
            pk=job_id, claim_token=token, state=ImportJob.State.RUNNING
        ).update(heartbeat_at=timezone.now(), **values)
    )


def _check(job: ImportJob, token: str, only_own) -> tuple[list[RowError], int] | None:
    """What the team's contacts decide, checked again for every row before any is written
    (a member's row may have become a teammate's contact since the dry run): the first
    JOB_ERRORS_KEPT errors and how many there are, or None when another run took the job
    over meanwhile. What the file alone decides (formats, duplicates) was checked by the dry
    run on these same bytes; each chunk is checked again as it is written."""
    errors: list[RowError] = []
    total = 0
    for part in _chunks(job):
        plan = import_plan(sheet=part, team=job.team, sequence=job.sequence, only_own=only_own)
        total += len(plan.errors)
        errors.extend(plan.errors[: max(0, JOB_ERRORS_KEPT - len(errors))])
        if not _beat(job.pk, token):
            return None
    return errors, total


def _errors_text(errors: list[RowError], total: int) -> str:
    lines = [str(e) for e in errors]
    if total > len(errors):
        lines.append(f"… and {total - len(errors)} more.")
    return "\n".join(lines)


def import_job_run(*, job_id: int, max_seconds: float | None = None) -> ImportJob | None:
    """Run (or resume) a queued job: for a member, the check against the team's contacts;
    then the rows not written yet, a chunk per transaction.

    Safe to run twice: only a queued job (or one whose worker died) is claimed, and each
    chunk is written only under the claim. After `max_seconds` (default `import_job_slice()`)
    the rest goes to a new task. Returns the job, or None when there was nothing to do.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=import_job_lease())
    token = uuid.uuid4().hex
    claimed = (
        ImportJob.objects.filter(pk=job_id)
        .filter(
            Q(state=ImportJob.State.QUEUED)
            | Q(state=ImportJob.State.RUNNING, heartbeat_at__lt=stale)
        )
        .update(
            state=ImportJob.State.RUNNING,
            started_at=Coalesce(F("started_at"), now),
            heartbeat_at=now,
            claim_token=token,
        )
    )
    if not claimed:
        return None
    started = time.monotonic()
    max_seconds = import_job_slice() if max_seconds is None else max_seconds
    job = ImportJob.objects.select_related("team", "owner__team", "sequence", "created_by").get(
        pk=job_id
    )
    if job.owner is None:
        _job_fail(job, MSG_JOB_NO_OWNER.format(team=job.team), token=token)
        return job
    if job.sequence_title and job.sequence is None:
        _job_fail(job, MSG_JOB_SEQUENCE_GONE.format(sequence=job.sequence_title), token=token)
        return job
    only_own = import_only_own(owner=job.owner, user=job.created_by)
    try:
        if not job.checked and only_own is not None:
            # A member's rows may have become teammates' contacts since the dry run: checked
            # whole before any is written. Owners and managers may update any contact of the
            # team, so nothing can have made their rows invalid since.
            checked = _check(job, token, only_own)
            if checked is None:
                return job
            errors, total = checked
            if errors:
                _job_fail(job, _errors_text(errors, total), token=token)
                return job
            if not _beat(job.pk, token, checked=True):
                return job
        for written, part in enumerate(_chunks(job, after_row=job.next_row)):
            # At least one chunk a run, so that every run gets further.
            if written and time.monotonic() - started > max_seconds:
                return _hand_over(job, token)
            outcome = _write_chunk(job, part, token, only_own)
            if outcome is None:
                return job  # taken over by another run
            if isinstance(outcome, str):
                _job_fail(job, outcome, token=token)
                return job
        done = ImportJob.objects.filter(pk=job.pk, claim_token=token).update(
            state=ImportJob.State.DONE,
            finished_at=timezone.now(),
            claim_token="",
        )
        if done:
            import_job_file_delete(job_id=job.pk)
            job.refresh_from_db()
    except ImportRefused as e:
        _job_fail(job, str(e), token=token)
    except Exception:
        logger.exception("Contact import job %s failed", job.pk)
        _job_fail(job, MSG_JOB_CRASHED, token=token)
    return job


def _write_chunk(job: ImportJob, part: Sheet, token: str, only_own) -> bool | str | None:
    """Write one chunk with the job's progress, in one transaction: True when written, a
    row error when the rows cannot be written as checked, None when another run owns it."""
    plan = import_plan(sheet=part, team=job.team, sequence=job.sequence, only_own=only_own)
    if plan.errors:
        # The check passed: a teammate's contact (or the like) appeared since.
        return str(plan.errors[0])
    try:
        with transaction.atomic():
            if not (
                ImportJob.objects.select_for_update()
                .filter(pk=job.pk, claim_token=token, state=ImportJob.State.RUNNING)
                .exists()
            ):
                return None
            result = contacts_upsert_many(
                team=job.team,
                owner=job.owner,
                rows=[(r.email, r.fields) for r in plan.rows],
                sequence=job.sequence,
                added_by=job.owner,
                only_own=only_own,
            )
            ImportJob.objects.filter(pk=job.pk).update(
                processed_rows=F("processed_rows") + len(part.rows),
                next_row=part.rows[-1][0],
                created=F("created") + result.created,
                updated=F("updated") + result.updated,
                unchanged=F("unchanged") + result.unchanged,
                added_to_sequence=F("added_to_sequence") + result.added_to_sequence,
                already_in_sequence=F("already_in_sequence") + result.already_in_sequence,
                heartbeat_at=timezone.now(),
            )
    except TeammatesContact as e:
        row = next(r.row for r in plan.rows if r.email == e.email)
        return MSG_ROW_TEAMMATES_CONTACT.format(row=row, email=e.email)
    except ValidationError as e:
        return " ".join(e.messages)
    return True


def _hand_over(job: ImportJob, token: str) -> ImportJob:
    """This run has worked its slice: the rest is a new task, long before the timeout."""
    if ImportJob.objects.filter(pk=job.pk, claim_token=token).update(
        state=ImportJob.State.QUEUED, claim_token=""
    ):
        transaction.on_commit(lambda: _job_enqueue(job.pk))
        job.state = ImportJob.State.QUEUED
    return job


def import_jobs_sweep() -> dict[str, int]:
    """Every minute: resume jobs whose worker died (no heartbeat for `import_job_lease()`),
    fail those that stalled JOB_MAX_RECOVERIES times, saying what was imported, and enqueue
    again queued jobs whose message was lost."""
    now = timezone.now()
    stale = now - timedelta(seconds=import_job_lease())
    resumed = failed = 0
    for job in ImportJob.objects.filter(state=ImportJob.State.RUNNING, heartbeat_at__lt=stale):
        if job.recoveries >= JOB_MAX_RECOVERIES:
            _job_fail(job, MSG_JOB_STALLED.format(times=job.recoveries + 1), token=job.claim_token)
            failed += 1
            continue
        if ImportJob.objects.filter(
            pk=job.pk, state=ImportJob.State.RUNNING, claim_token=job.claim_token
        ).update(state=ImportJob.State.QUEUED, claim_token="", recoveries=F("recoveries") + 1):
            _job_enqueue(job.pk)
            resumed += 1
    requeued = 0
    for job_id in ImportJob.objects.filter(
        Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True),
        state=ImportJob.State.QUEUED,
        created_at__lt=stale,
    ).values_list("pk", flat=True):
        _job_enqueue(job_id)
        requeued += 1
    return {"resumed": resumed, "failed": failed, "requeued": requeued}
