"""A candidate on a job order (its pipeline) and the pipeline's status, forward only."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from .. import messages
from ..client import CatsNotFound, CatsRejected
from ..errors import NeedsPerson, Wait
from ..models import CatsJob, CatsWorkflowStatus, EnrollmentSync, SyncIssue, WebhookDelivery
from ..services.issues import issue_clear
from ..services.metadata import workflows_recheck_due, workflows_refresh
from .candidates import candidate_forget
from .context import StepContext


def pipeline_ensure(ctx: StepContext) -> None:
    """Put the candidate on the enrollment's job order, once."""
    es = ctx.es
    if not es.job_id or es.pipeline_id:
        return
    try:
        added = ctx.client.pipeline_add(es.candidate_id, es.job_id)
    except (CatsNotFound, CatsRejected) as exc:
        # CATS does not say which of the two ids it refused: ask about each.
        if _missing(ctx.client.get_job, es.job_id):
            raise NeedsPerson(
                messages.ERR_JOB_MISSING.format(job_id=es.job_id),
                code=EnrollmentSync.Error.JOB_MISSING,
                step=SyncIssue.Step.JOB,
            ) from exc
        if _missing(ctx.client.get_candidate, es.candidate_id):
            candidate_forget(site=ctx.site, candidate_id=es.candidate_id, es=es)
            raise Wait(
                messages.WAIT_CANDIDATE_DELETED, until=timezone.now() + timedelta(seconds=2)
            ) from exc
        raise NeedsPerson(
            messages.ERR_REJECTED.format(message=exc.message),
            code=EnrollmentSync.Error.REJECTED,
            step=SyncIssue.Step.JOB,
        ) from exc
    es.pipeline_id = added.id
    # Where the pipeline stands: at the workflow's start when we made it, else as CATS said.
    es.status_id = _as_int((added.existing or {}).get("status_id"))
    known = added.existing is None or es.status_id is not None
    es.status_seen_at = timezone.now() if known else None
    EnrollmentSync.objects.filter(pk=es.pk).update(
        pipeline_id=es.pipeline_id, status_id=es.status_id, status_seen_at=es.status_seen_at
    )
    issue_clear(enrollment_sync_id=es.pk, step=SyncIssue.Step.JOB)


def _missing(get, cats_id: int) -> bool:
    try:
        get(cats_id)
    except CatsNotFound:
        return True
    return False


def _workflow_statuses(ctx: StepContext, workflow_id: int) -> list[CatsWorkflowStatus]:
    rows = list(CatsWorkflowStatus.objects.filter(site=ctx.site, workflow_id=workflow_id))
    if not rows and workflows_recheck_due(ctx.site):
        workflows_refresh(account=ctx.account, client=ctx.client)
        rows = list(CatsWorkflowStatus.objects.filter(site=ctx.site, workflow_id=workflow_id))
    return rows


def status_advance(ctx: StepContext, title: str) -> None:
    """Move the pipeline to the status called `title`, never backwards: progress a recruiter
    made in CATS stays; a status already reached costs no request."""
    es, client = ctx.es, ctx.client
    job = CatsJob.objects.filter(site=ctx.site, cats_id=es.job_id).first()
    workflow_id = job.workflow_id if job and job.workflow_id else None
    if workflow_id is None and es.status_id:
        # The status we set last tells the workflow without asking CATS.
        workflow_id = (
            CatsWorkflowStatus.objects.filter(site=ctx.site, cats_id=es.status_id)
            .values_list("workflow_id", flat=True)
            .first()
        )
    pipeline = None
    if workflow_id is None:
        pipeline = _read_pipeline(ctx)
        workflow_id = int(pipeline.get("workflow_id") or 0)
    statuses = _workflow_statuses(ctx, workflow_id)
    target = next((s for s in statuses if s.title == title), None)
    if target is None and workflows_recheck_due(ctx.site):
        # Created in CATS since we last looked (a person fixed it and pressed Retry)?
        workflows_refresh(account=ctx.account, client=client)
        statuses = _workflow_statuses(ctx, workflow_id)
        target = next((s for s in statuses if s.title == title), None)
    if target is None:
        workflow_title = statuses[0].workflow_title if statuses else f"#{workflow_id}"
        raise NeedsPerson(
            messages.ERR_STATUS_MISSING.format(status=title, workflow=workflow_title),
            code=EnrollmentSync.Error.STATUS_MISSING,
            step=SyncIssue.Step.STATUS,
            key=title,
        )
    by_id = {s.cats_id: s for s in statuses}
    known = by_id.get(es.status_id) if es.status_id else None
    if known is not None and known.position >= target.position:
        issue_clear(enrollment_sync_id=es.pk, step=SyncIssue.Step.STATUS, key=title)
        return
    if pipeline is None and not status_record_fresh(ctx):
        # A recruiter may have moved it since we last knew: never move it back.
        pipeline = _read_pipeline(ctx)
    if pipeline is not None:
        current = by_id.get(_as_int(pipeline.get("status_id")))
        if current is not None:
            _status_seen(es, current.cats_id)
        if current is not None and current.position >= target.position:
            issue_clear(enrollment_sync_id=es.pk, step=SyncIssue.Step.STATUS, key=title)
            return
    _status_written(es, target.cats_id)
    try:
        client.change_pipeline_status(
            es.pipeline_id,
            target.cats_id,
            fire_triggers=ctx.account.fire_triggers,
            trigger_ids=list(target.trigger_ids),
        )
    except (CatsRejected, CatsNotFound) as exc:
        if pipeline is None:
            # Refused on the strength of our own record: see where CATS has it, so the error
            # (or the skip) is about the pipeline as it is.
            EnrollmentSync.objects.filter(pk=es.pk).update(status_seen_at=None)
            es.status_seen_at = None
            current = by_id.get(_as_int(_read_pipeline(ctx).get("status_id")))
            if current is not None:
                _status_seen(es, current.cats_id)
            if current is not None and current.position >= target.position:
                issue_clear(enrollment_sync_id=es.pk, step=SyncIssue.Step.STATUS, key=title)
                return
        raise NeedsPerson(
            messages.ERR_STATUS_REFUSED.format(status=title, message=exc.message),
            code=EnrollmentSync.Error.REJECTED,
            step=SyncIssue.Step.STATUS,
            key=title,
        ) from exc
    _status_seen(es, target.cats_id)
    issue_clear(enrollment_sync_id=es.pk, step=SyncIssue.Step.STATUS, key=title)


# How long our record of a pipeline's status is trusted without a webhook keeping it current.
STATUS_TRUST = timedelta(minutes=10)


def status_record_fresh(ctx: StepContext) -> bool:
    """Whether our record of where the pipeline stands can stand in for a GET: we set or read
    it lately (and CATS' webhooks, when registered, tell us of every move since)."""
    es = ctx.es
    if es.status_seen_at is None:
        return False
    if _deliveries_waiting(ctx.account, es):
        return False
    if ctx.account.webhooks_active:
        # Every move CATS told us of is processed (a lost one is reconciliation's to catch).
        return True
    return es.status_seen_at > timezone.now() - STATUS_TRUST


def _deliveries_waiting(account, es: EnrollmentSync) -> bool:
    """A webhook delivery about this pipeline (or its candidate, or that names neither) not
    processed yet may be the recruiter's move we are about to undo: read the pipeline instead
    of trusting our record. The echo of a status we wrote ourselves is no such move, and
    other contacts' deliveries are not about this one (a live stream always has some)."""
    about_it = Q(pipeline_id=es.pipeline_id) | Q(pipeline_id__isnull=True, candidate_id=None)
    if es.candidate_id is not None:
        about_it |= Q(candidate_id=es.candidate_id)
    return (
        WebhookDelivery.objects.filter(
            about_it,
            account=account,
            state__in=[WebhookDelivery.State.RECEIVED, WebhookDelivery.State.PROCESSING],
        )
        .exclude(
            event="pipeline.status_changed",
            pipeline_id=es.pipeline_id,
            status_id__in=list(es.statuses_written or []),
        )
        .exists()
    )


def _status_written(es: EnrollmentSync, status_id: int) -> None:
    """Remember a status we set (before sending it: its webhook may come back at once), so
    that CATS telling us of it is never taken for a recruiter's move."""
    written = list(es.statuses_written or [])
    if status_id not in written:
        written.append(status_id)
        es.statuses_written = written
        EnrollmentSync.objects.filter(pk=es.pk).update(statuses_written=written)


def _status_seen(es: EnrollmentSync, status_id: int | None) -> None:
    es.status_id = status_id
    es.status_seen_at = timezone.now()
    EnrollmentSync.objects.filter(pk=es.pk).update(
        status_id=status_id, status_seen_at=es.status_seen_at
    )


def _read_pipeline(ctx: StepContext) -> dict:
    try:
        return ctx.client.get_pipeline(ctx.es.pipeline_id) or {}
    except CatsNotFound as exc:
        raise NeedsPerson(
            messages.ERR_STATUS_REFUSED.format(
                status="…", message="the pipeline no longer exists in CATS"
            ),
            code=EnrollmentSync.Error.REJECTED,
            step=SyncIssue.Step.STATUS,
        ) from exc


def _as_int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
