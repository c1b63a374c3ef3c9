"""Integration errors a recruiter sees: one SyncIssue per step that failed, cleared exactly when
that step succeeds, with the newest one copied onto EnrollmentSync for list pages."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from .. import messages
from ..models import EnrollmentSync, SyncIssue

Step = SyncIssue.Step


def issue_raise(
    *,
    enrollment_sync_id: int,
    step: str,
    code: str,
    message: str,
    key: str = "",
    blocking: bool = True,
) -> None:
    now = timezone.now()
    with transaction.atomic():
        issue, created = SyncIssue.objects.get_or_create(
            enrollment_sync_id=enrollment_sync_id,
            step=step,
            key=key[:64],
            defaults={
                "code": code,
                "message": message[:500],
                "blocking": blocking,
                "first_seen_at": now,
                "last_seen_at": now,
            },
        )
        if not created:
            SyncIssue.objects.filter(pk=issue.pk).update(
                code=code, message=message[:500], blocking=blocking, last_seen_at=now
            )
        _headline(enrollment_sync_id)


def issue_clear(*, enrollment_sync_id: int, step: str, key: str | None = None) -> None:
    """The step worked: its issue (all keys of it, unless one is named) is gone."""
    issues = SyncIssue.objects.filter(enrollment_sync_id=enrollment_sync_id, step=step)
    if key is not None:
        issues = issues.filter(key=key[:64])
    with transaction.atomic():
        if issues.delete()[0]:
            _headline(enrollment_sync_id)


def issues_clear_for_account(*, account_id: int, step: str) -> None:
    """E.g. a reconnected account: no contact of it is blocked by the old key any more."""
    ids = list(
        SyncIssue.objects.filter(step=step, enrollment_sync__account_id=account_id).values_list(
            "enrollment_sync_id", flat=True
        )
    )
    SyncIssue.objects.filter(step=step, enrollment_sync_id__in=ids).delete()
    for es_id in set(ids):
        _headline(es_id)


def exists_in_cats_mark(*, enrollment_sync_id: int) -> None:
    """The spec's "Exists in CATS": a warning on the contact, not a stop."""
    EnrollmentSync.objects.filter(pk=enrollment_sync_id).update(exists_in_cats=True)
    issue_raise(
        enrollment_sync_id=enrollment_sync_id,
        step=Step.DEDUP,
        code=EnrollmentSync.Error.EXISTS_IN_CATS,
        message=messages.EXISTS_IN_CATS,
        blocking=False,
    )


def _headline(enrollment_sync_id: int) -> None:
    issues = SyncIssue.objects.filter(enrollment_sync_id=enrollment_sync_id)
    top = issues.order_by("-blocking", "-last_seen_at", "-pk").first()
    if top is None:
        values = {"error_code": "", "error_message": "", "error_at": None}
    else:
        values = {
            "error_code": top.code,
            "error_message": top.message,
            "error_at": top.last_seen_at,
        }
    EnrollmentSync.objects.filter(pk=enrollment_sync_id).update(**values)
