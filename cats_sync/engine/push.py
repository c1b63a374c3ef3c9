"""A push task: bring one synced contact in line with its sequence's job order and the
current custom field mapping (services/push.py plans it and says what it costs).

Every step records what it did before the next one, so a task that runs twice, or dies
half-way, sends nothing twice: the move is written down before any request (`push_moving`),
the new pipeline is kept as soon as CATS answers, a status already reached costs nothing, the
old pipeline is forgotten once removed, and only values CATS does not hold are sent.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from interseller.models import EmailEvent

from ..errors import NeedsPerson
from ..models import (
    CandidateLink,
    CatsJob,
    CatsWorkflowStatus,
    EnrollmentSync,
    SequenceSync,
    SyncTask,
)
from ..services.metadata import mapping_snapshot
from ..services.push import carry_title, target_job_id, titles_reached
from .context import StepContext
from .fields import fields_update
from .pipelines import pipeline_ensure, status_advance

Outcome = SyncTask.Outcome


def push_changes(ctx: StepContext) -> str:
    with transaction.atomic():
        es = EnrollmentSync.objects.select_for_update().get(pk=ctx.es.pk)
    ctx.es = es
    if not es.synced_at or not es.candidate_id or es.site_id != ctx.site.pk:
        return Outcome.UNCHANGED  # only synced contacts of this site are pushed
    enrollment = ctx.task.enrollment
    holds_before = _holds(es, enrollment.contact.email)
    moved = False
    # Stopped by CATS: a recruiter has taken the candidate over, their pipeline stays.
    if not es.push_moving and not es.stopped_at:
        sequence_job = (
            SequenceSync.objects.filter(sequence_id=enrollment.sequence_id)
            .values_list("job_id", flat=True)
            .first()
        )
        target = target_job_id(sequence_job_id=sequence_job, account=ctx.account, current=es.job_id)
        if target and target != es.job_id:
            _move_record(es, target)
    if es.push_moving:
        _move(ctx)
        moved = True
    current = mapping_snapshot(ctx.account)
    if es.field_mapping != current:
        # The contact now carries the current mapping (the spec froze it; the person asked).
        es.field_mapping = current
        EnrollmentSync.objects.filter(pk=es.pk).update(field_mapping=current)
    fields_update(ctx)
    if moved or _holds(es, enrollment.contact.email) != holds_before:
        return Outcome.PUSHED
    return Outcome.UNCHANGED


def _move_record(es: EnrollmentSync, target: int) -> None:
    """Write the move down before any request: a rerun finishes it."""
    es.previous_job_id, es.previous_pipeline_id = es.job_id, es.pipeline_id
    es.job_id, es.pipeline_id, es.status_id, es.status_seen_at = target, None, None, None
    es.moved_at, es.push_moving = timezone.now(), True
    EnrollmentSync.objects.filter(pk=es.pk).update(
        previous_job_id=es.previous_job_id,
        previous_pipeline_id=es.previous_pipeline_id,
        job_id=target,
        pipeline_id=None,
        status_id=None,
        status_seen_at=None,
        moved_at=es.moved_at,
        push_moving=True,
    )


def _move(ctx: StepContext) -> None:
    es = ctx.es
    if not es.pipeline_id:
        ours = (
            EnrollmentSync.objects.filter(
                site_id=es.site_id,
                candidate_id=es.candidate_id,
                job_id=es.job_id,
                pipeline_id__isnull=False,
            )
            .exclude(pk=es.pk)
            .values("pipeline_id", "status_id", "status_seen_at")
            .first()
        )
        if ours is not None:
            # Another of our contacts has the candidate on this job already: no request.
            es.pipeline_id, es.status_id = ours["pipeline_id"], ours["status_id"]
            es.status_seen_at = ours["status_seen_at"]
            EnrollmentSync.objects.filter(pk=es.pk).update(**ours)
        else:
            pipeline_ensure(ctx)
    if ctx.account.status_sync:
        _carry_status(ctx)
    run = ctx.task.run
    if run is not None and run.remove_old_job and es.previous_pipeline_id:
        _remove_old(ctx)
    if not ctx.problems:
        es.push_moving = False
        EnrollmentSync.objects.filter(pk=es.pk).update(push_moving=False)


def _carry_status(ctx: StepContext) -> None:
    """One move to the furthest status our emails reached. A workflow may make a status wait
    for an earlier one (prerequisites, not cached): if CATS refuses the jump, the statuses are
    taken one by one, in workflow order, as the emails took them."""
    titles, statuses = _titles(ctx), _statuses(ctx)
    title = carry_title(titles, statuses)
    if not title:
        return
    try:
        status_advance(ctx, title)
        return
    except NeedsPerson as problem:
        if problem.code != EnrollmentSync.Error.REJECTED:
            ctx.problems.append(problem)  # the removal below still goes ahead
            return
    position = {s.title: s.position for s in statuses}
    steps = sorted((t for t in titles if t in position), key=position.__getitem__)
    for step in steps[: steps.index(title) + 1] if title in steps else [title]:
        try:
            status_advance(ctx, step)
        except NeedsPerson as problem:
            ctx.problems.append(problem)
            return


def _titles(ctx: StepContext) -> set[str]:
    return titles_reached(
        EmailEvent.objects.filter(enrollment_id=ctx.es.enrollment_id)
        .values_list("kind", "sentiment")
        .distinct()
    )


def _statuses(ctx: StepContext) -> list[CatsWorkflowStatus]:
    job = CatsJob.objects.filter(site=ctx.site, cats_id=ctx.es.job_id).first()
    if job is None or not job.workflow_id:
        return []
    return list(CatsWorkflowStatus.objects.filter(site=ctx.site, workflow_id=job.workflow_id))


def _remove_old(ctx: StepContext) -> None:
    """Take the candidate off the old job order, unless another of our contacts is still on
    that pipeline (the last one to leave removes it)."""
    es = ctx.es
    old = es.previous_pipeline_id
    if (
        EnrollmentSync.objects.filter(site_id=es.site_id, pipeline_id=old)
        .exclude(pk=es.pk)
        .exists()
    ):
        return
    ctx.client.delete_pipeline(old)
    EnrollmentSync.objects.filter(site_id=es.site_id, previous_pipeline_id=old).update(
        previous_pipeline_id=None
    )
    es.previous_pipeline_id = None


def _holds(es: EnrollmentSync, email: str) -> dict:
    return (
        CandidateLink.objects.filter(site_id=es.site_id, email=email, candidate_id=es.candidate_id)
        .values_list("custom_values", flat=True)
        .first()
        or {}
    )
