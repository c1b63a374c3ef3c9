"""What each kind of task does: sync a contact, check it for duplicates, send an event."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from interseller.models import EmailEvent

from ..models import EnrollmentSync, SyncIssue, SyncTask
from ..services.issues import exists_in_cats_mark, issue_clear
from ..services.metadata import (
    mapping_snapshot,
    statuses_for,
)
from ..services.outbox import task_create
from ..services.stops import Why
from .activities import activity_write
from .candidates import candidate_ensure, candidate_find
from .context import StepContext
from .fields import field_values, fields_update
from .pipelines import pipeline_ensure, status_advance

Outcome = SyncTask.Outcome


def sync_enrollment(ctx: StepContext) -> str:
    """Link or create the candidate, put it on the job, send the mapped values, and queue
    every event the contact already had (backfill)."""
    es, account = ctx.es, ctx.account
    if es.synced_at:
        return Outcome.SKIPPED
    enrollment = ctx.task.enrollment
    site = account.site
    if es.site_id and es.site_id != site.pk:
        # The owner reconnected to another CATS site: ids of the old one mean nothing here.
        es.candidate_id = es.pipeline_id = es.status_id = None
        es.created_candidate = False
    es.site = site
    if es.field_mapping is None:
        # The mapping in force at the first sync stays with the contact (spec note).
        es.field_mapping = mapping_snapshot(account)
        EnrollmentSync.objects.filter(pk=es.pk).update(field_mapping=es.field_mapping)
    inline = field_values(es, enrollment)
    inline_payload = [
        {"id": int(spec["field_id"]), "value": value} for spec, value in inline.values()
    ]
    if not es.candidate_id:
        candidate = candidate_ensure(ctx, enrollment.contact, custom_fields=inline_payload)
        es.candidate_id = candidate.id
        es.created_candidate = candidate.created_now
        EnrollmentSync.objects.filter(pk=es.pk).update(
            site=site,
            candidate_id=es.candidate_id,
            created_candidate=es.created_candidate,
            pipeline_id=es.pipeline_id,
            status_id=es.status_id,
        )
        if not candidate.ours and account.deduplication:
            exists_in_cats_mark(enrollment_sync_id=es.pk)
            es.exists_in_cats = True
        issue_clear(enrollment_sync_id=es.pk, step=SyncIssue.Step.CANDIDATE)
    pipeline_ensure(ctx)
    # What went inline with a create is on the candidate's record; the rest is sent now.
    fields_update(ctx)
    with transaction.atomic():
        locked = EnrollmentSync.objects.select_for_update().get(pk=es.pk)
        locked.synced_at = timezone.now()
        locked.save(update_fields=["synced_at", "updated_at"])
        _backfill_events(ctx)
    issue_clear(enrollment_sync_id=es.pk, step=SyncIssue.Step.CONNECTION)
    issue_clear(enrollment_sync_id=es.pk, step=SyncIssue.Step.OTHER)
    return Outcome.CREATED if es.created_candidate else Outcome.LINKED


def _backfill_events(ctx: StepContext) -> None:
    enrollment = ctx.task.enrollment
    for event in EmailEvent.objects.filter(enrollment=enrollment).order_by("occurred_at"):
        task_create(
            kind=SyncTask.Kind.EVENT,
            enrollment=enrollment,
            account=ctx.account,
            event=event,
            priority=ctx.task.priority,
        )


def dedup_check(ctx: StepContext) -> str:
    """Deduplication without syncing: warn "Exists in CATS" if CATS has the email."""
    candidate = candidate_find(ctx, ctx.task.enrollment.contact)
    if candidate.id and not candidate.ours:
        exists_in_cats_mark(enrollment_sync_id=ctx.es.pk)
        return Outcome.EXISTS
    return Outcome.ABSENT


def event_process(ctx: StepContext) -> str:
    """The event's activity, statuses and mapped values. Each step records what it did, so a
    retry repeats only what is left; a step that needs a person does not stop the others."""
    with transaction.atomic():
        locked = EnrollmentSync.objects.select_for_update().get(pk=ctx.es.pk)
        if not locked.synced_at or not locked.candidate_id:
            return Outcome.DEFERRED  # the sync backfills it
    ctx.es = locked
    event, account = ctx.task.event, ctx.account
    if locked.stopped_why == Why.CANDIDATE_DELETED:
        return Outcome.DONE  # nothing in CATS to log it on
    if account.activity_tracking:
        _collect(ctx, activity_write, event)
    # Stopped by CATS: the event is still logged, but the pipeline is the recruiter's now.
    if account.status_sync and locked.pipeline_id and locked.stopped_at is None:
        for title in statuses_for(event.kind, event.sentiment):
            _collect(ctx, status_advance, title)
    fields_update(ctx)
    return Outcome.DONE


def _collect(ctx: StepContext, step, *args) -> None:
    from ..errors import NeedsPerson

    try:
        step(ctx, *args)
    except NeedsPerson as problem:
        ctx.problems.append(problem)
