"""What a change made in CATS means for our enrollments: a recruiter moving a candidate far
enough (or to a placed/hired status), or deleting it, stops the contact's sequence.

Told by a webhook delivery or found by reconciliation, a pipeline's status goes through
`status_observe`. A status the sync set itself (`EnrollmentSync.statuses_written`) coming back
is never a recruiter's move. Stopping is terminal: moving the pipeline back in CATS never
restarts a sequence. Ids CATS sends are only looked up in our own rows of that site.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from interseller.services import enrollment_stop

from ..models import (
    CatsAccount,
    CatsWorkflowStatus,
    EnrollmentSync,
    PipelineObservation,
    WebhookDelivery,
)
from .metadata import REQUIRED_STATUSES, workflows_recheck_due, workflows_refresh

# Statuses the sync itself moves pipelines to: never a default stop, never a recruiter's
# signal on their own.
OWN_STATUSES = frozenset(title.lower() for title in REQUIRED_STATUSES)
INTERESTED = "interested"
# A status whose title holds one of these always stops the sequence.
HIRED_WORDS = ("placed", "hired")


class Why:
    STATUS = "status"
    HIRED = "hired"
    CANDIDATE_DELETED = "candidate_deleted"


MSG_STOPPED_STATUS = "Stopped by CATS: moved to “{status}” in CATS"
MSG_STOPPED_DELETED = "Stopped by CATS: the candidate was deleted in CATS"


def stop_status_for(
    account: CatsAccount | None, statuses: list[CatsWorkflowStatus]
) -> CatsWorkflowStatus | None:
    """The status of this workflow from which on a recruiter's move stops the sequence: the
    member's choice when the workflow has it, else the first status after “Interested” that
    the sync does not set itself (e.g. Qualifying or Submitted)."""
    ordered = sorted(statuses, key=lambda s: s.position)
    chosen = (account.stop_status if account is not None else "").strip().lower()
    if chosen:
        match = next((s for s in ordered if s.title.lower() == chosen), None)
        if match is not None:
            return match
    interested = next((s for s in ordered if s.title.lower() == INTERESTED), None)
    if interested is None:
        return None
    return next(
        (
            s
            for s in ordered
            if s.position > interested.position and s.title.lower() not in OWN_STATUSES
        ),
        None,
    )


def stop_reason(
    account: CatsAccount | None, status: CatsWorkflowStatus | None, *, title: str = ""
) -> str | None:
    """Why moving to this status stops the sequence (Why.*), or None."""
    title = (status.title if status is not None else title).lower()
    if any(word in title for word in HIRED_WORDS):
        return Why.HIRED
    if status is None:
        return None
    statuses = list(
        CatsWorkflowStatus.objects.filter(site_id=status.site_id, workflow_id=status.workflow_id)
    )
    stop_at = stop_status_for(account, statuses)
    if stop_at is None or status.position < stop_at.position:
        return None
    if title in OWN_STATUSES and title != stop_at.title.lower():
        return None
    return Why.STATUS


def _source_words(source: str, delivery: WebhookDelivery | None) -> str:
    if delivery is not None:
        return f"webhook {delivery.request_id}"[:40]
    return source


def _observe(es: EnrollmentSync, words: str, source: str, delivery: WebhookDelivery | None) -> None:
    PipelineObservation.objects.create(
        enrollment_sync=es, source=source, at=timezone.now(), words=words[:300], delivery=delivery
    )


def enrollment_stop_by_cats(
    *,
    es: EnrollmentSync,
    why: str,
    words: str,
    source: str,
    status_id: int | None = None,
    delivery: WebhookDelivery | None = None,
) -> bool:
    """Stop the enrollment, recording who/what/when in our table and the reason on the core's
    enrollment. Done once: returns False when it was stopped already."""
    now = timezone.now()
    with transaction.atomic():
        stopped = EnrollmentSync.objects.filter(pk=es.pk, stopped_at__isnull=True).update(
            stopped_at=now,
            stopped_why=why,
            stopped_status_id=status_id,
            stopped_words=words[:300],
            stopped_source=_source_words(source, delivery),
        )
        if stopped:
            enrollment_stop(enrollment_id=es.enrollment_id, reason=words, at=now)
            es.stopped_at = now
    return bool(stopped)


def _status(es: EnrollmentSync, status_id: int) -> CatsWorkflowStatus | None:
    """The status from our cache, read from CATS once if the cache does not know it (a
    failure raises: the delivery is processed again)."""
    status = CatsWorkflowStatus.objects.filter(site_id=es.site_id, cats_id=status_id).first()
    account = es.account
    if (
        status is None
        and account is not None
        and account.is_connected
        and account.site_id == es.site_id
        and workflows_recheck_due(account.site)
    ):
        workflows_refresh(account=account)
        status = CatsWorkflowStatus.objects.filter(site_id=es.site_id, cats_id=status_id).first()
    return status


def status_observe(
    es: EnrollmentSync,
    status_id: int,
    *,
    source: str,
    delivery: WebhookDelivery | None = None,
) -> str:
    """CATS says the pipeline is at `status_id`. Returns what that did, in words."""
    status = _status(es, status_id)
    title = status.title if status is not None else f"#{status_id}"
    now = timezone.now()
    if status_id in (es.statuses_written or []):
        # Our own write coming back (or CATS confirming it): not a recruiter's move.
        # Nothing on the timeline: the status change is there already, as our own.
        if status_id == es.status_id:
            EnrollmentSync.objects.filter(pk=es.pk).update(status_seen_at=now)
        return "our own status"
    changed = status_id != es.status_id
    # None: we made the pipeline (at the workflow's start) and never set a status since.
    known_before = es.status_id is not None
    EnrollmentSync.objects.filter(pk=es.pk).update(status_id=status_id, status_seen_at=now)
    es.status_id, es.status_seen_at = status_id, now
    if (
        source == PipelineObservation.Source.RECONCILE
        and not known_before
        and (status is None or status.position == 0)
    ):
        return "unchanged"  # the workflow's first status, on a pipeline we made
    # A status told again (teammates on one CATS site each have a webhook; reconciliation
    # reads what a webhook told; our engine read it first) adds no line to the timeline, but
    # still stops a sequence its rule says to stop.
    if es.stopped_at is not None:
        if not changed:
            return "unchanged"
        _observe(
            es, f"Moved to “{title}” in CATS (the sequence was stopped already)", source, delivery
        )
        return "stopped already"
    account = es.account
    why = stop_reason(account, status)
    if why is None:
        if not changed:
            return "unchanged"
        _observe(es, f"Moved to “{title}” in CATS", source, delivery)
        return "moved"
    words = MSG_STOPPED_STATUS.format(status=title)
    if not enrollment_stop_by_cats(
        es=es, why=why, words=words, source=source, status_id=status_id, delivery=delivery
    ):
        return "unchanged"  # another delivery of the same move stopped it a moment ago
    _observe(es, words, source, delivery)
    return "stopped"


def observe_pipeline_status(
    *, site_id: int, pipeline_id: int, status_id: int | None, delivery: WebhookDelivery
) -> str:
    rows = list(
        EnrollmentSync.objects.filter(site_id=site_id, pipeline_id=pipeline_id).select_related(
            "account"
        )
    )
    if not rows:
        return "no pipeline of ours"
    outcomes = []
    for es in rows:
        if status_id is None:
            # Read it soon: reconciliation takes the never-checked first.
            EnrollmentSync.objects.filter(pk=es.pk).update(reconciled_at=None)
            _observe(
                es,
                "Moved in CATS; the delivery names no status: reconciliation reads it next",
                PipelineObservation.Source.WEBHOOK,
                delivery,
            )
            outcomes.append("to be read")
            continue
        outcomes.append(
            status_observe(
                es, status_id, source=PipelineObservation.Source.WEBHOOK, delivery=delivery
            )
        )
    return ", ".join(outcomes)


def pipeline_gone(es: EnrollmentSync, *, source: str, delivery: WebhookDelivery | None) -> None:
    """The pipeline was deleted in CATS: no status moves on it any more (a person may put the
    contact on a job again with Resync)."""
    EnrollmentSync.objects.filter(pk=es.pk).update(pipeline_id=None, status_id=None)
    _observe(es, "Removed from the job order in CATS", source, delivery)


def observe_pipeline_deleted(*, site_id: int, pipeline_id: int, delivery: WebhookDelivery) -> str:
    rows = list(EnrollmentSync.objects.filter(site_id=site_id, pipeline_id=pipeline_id))
    for es in rows:
        pipeline_gone(es, source=PipelineObservation.Source.WEBHOOK, delivery=delivery)
    return f"{len(rows)} pipeline(s) of ours removed" if rows else "no pipeline of ours"


def observe_candidate_deleted(*, site_id: int, candidate_id: int, delivery: WebhookDelivery) -> str:
    rows = list(EnrollmentSync.objects.filter(site_id=site_id, candidate_id=candidate_id))
    stopped = 0
    for es in rows:
        if enrollment_stop_by_cats(
            es=es,
            why=Why.CANDIDATE_DELETED,
            words=MSG_STOPPED_DELETED,
            source=PipelineObservation.Source.WEBHOOK,
            delivery=delivery,
        ):
            stopped += 1
            # Once on the timeline, however many connections' webhooks tell it.
            _observe(es, MSG_STOPPED_DELETED, PipelineObservation.Source.WEBHOOK, delivery)
    return f"stopped {stopped} enrollment(s)" if rows else "no candidate of ours"
