"""Imports too big for a request, run by a django-q2 worker as an ImportJob with progress."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..models import ImportJob, Membership, Sequence, Team
from .execute import (
    ImportFailed,
    import_execute,
    import_only_own,
)
from .messages import (
    MSG_IMPORT_FAILED,
    MSG_JOB_CRASHED,
    MSG_JOB_NO_OWNER,
    MSG_JOB_SEQUENCE_GONE,
    ImportRefused,
)
from .plan import import_plan
from .reading import sheet_read
from .sheet import Sheet

logger = logging.getLogger(__name__)


# How many invalid rows a failed job lists.
JOB_ERRORS_KEPT = 200


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
        data=data,
        total_rows=len(sheet.rows),
    )
    transaction.on_commit(lambda: _job_enqueue(job.pk))
    return job


def _job_enqueue(job_id: int) -> None:
    from django_q.tasks import async_task

    async_task("interseller.tasks.import_job_run", job_id, group="contact-import")


def import_job_progress_key(job_id: int) -> str:
    return f"interseller:import-job:{job_id}:processed"


def import_job_progress(job: ImportJob) -> int:
    """Rows written so far.

    The import is one transaction, so the job row says nothing until it commits; while it
    runs, the worker reports through the cache. That is live with Redis (REDIS_URL); with the
    per-process local-memory cache the page shows the count when the job ends.
    """
    if job.state == ImportJob.State.RUNNING:
        return max(job.processed_rows, cache.get(import_job_progress_key(job.pk)) or 0)
    return job.processed_rows


def import_job_lease() -> int:
    """Seconds after which a job still `running` belonged to a worker that died.

    django-q2 kills a task at Q_CLUSTER["timeout"] and hands it out again at "retry"; the
    killed run's transaction rolled back, so running the job again is safe.
    """
    return int(settings.Q_CLUSTER.get("timeout", 240)) + 30


def _job_fail(job: ImportJob, error: str) -> None:
    job.state = ImportJob.State.FAILED
    job.error = MSG_IMPORT_FAILED.format(error=error)
    job.processed_rows = 0
    job.finished_at = timezone.now()
    job.data = b""
    job.save(update_fields=["state", "error", "processed_rows", "finished_at", "data"])


def import_job_run(*, job_id: int) -> ImportJob | None:
    """Run a queued job: the same checks and writes as an import confirmed in the request.

    Safe to run twice: only a queued job (or one whose worker died) is claimed. Returns the
    job, or None when there was nothing to do.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=import_job_lease())
    claimed = (
        ImportJob.objects.filter(pk=job_id)
        .filter(
            Q(state=ImportJob.State.QUEUED) | Q(state=ImportJob.State.RUNNING, started_at__lt=stale)
        )
        .update(state=ImportJob.State.RUNNING, started_at=now, processed_rows=0)
    )
    if not claimed:
        return None
    job = ImportJob.objects.select_related("team", "owner__team", "sequence", "created_by").get(
        pk=job_id
    )
    team = job.team
    if job.owner is None:
        _job_fail(job, MSG_JOB_NO_OWNER.format(team=team))
        return job
    sequence = job.sequence
    if job.sequence_title and sequence is None:
        _job_fail(job, MSG_JOB_SEQUENCE_GONE.format(sequence=job.sequence_title))
        return job
    key = import_job_progress_key(job.pk)
    try:
        # Checked again, exactly as the dry run did: the team's contacts may have changed.
        plan = import_plan(
            sheet=sheet_read(bytes(job.data)),
            team=team,
            sequence=sequence,
            only_own=import_only_own(owner=job.owner, user=job.created_by),
        )
        if not plan.is_valid:
            lines = [str(e) for e in plan.errors[:JOB_ERRORS_KEPT]]
            if len(plan.errors) > JOB_ERRORS_KEPT:
                lines.append(f"… and {len(plan.errors) - JOB_ERRORS_KEPT} more.")
            _job_fail(job, "\n".join(lines))
            return job
        with transaction.atomic():
            outcome = import_execute(
                plan=plan,
                team=team,
                owner=job.owner,
                sequence=sequence,
                added_by=job.owner,
                only_own=import_only_own(owner=job.owner, user=job.created_by),
                progress=lambda done: cache.set(key, done, timeout=3600),
            )
            # In the import's transaction: the contacts and "done" commit together, so a
            # worker dying in between cannot leave an import that runs again.
            for name in (
                "created",
                "updated",
                "unchanged",
                "added_to_sequence",
                "already_in_sequence",
            ):
                setattr(job, name, getattr(outcome, name))
            job.processed_rows = len(plan.rows)
            job.state = ImportJob.State.DONE
            job.finished_at = timezone.now()
            job.data = b""
            job.save()
    except (ImportRefused, ImportFailed) as e:
        _job_fail(job, str(e))
        return job
    except Exception:
        logger.exception("Contact import job %s failed", job.pk)
        _job_fail(job, MSG_JOB_CRASHED)
        return job
    finally:
        cache.delete(key)
    return job
