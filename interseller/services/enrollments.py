"""An enrollment's state changed from outside the outreach engine: stopped by an integration
(a recruiter moved the candidate on in CATS) or by a person on its admin page. The core's one
place that writes "stopped", and that dates every such change for the enrollments API."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from ..models import Enrollment
from .webhooks import team_webhook_stopped_queue


@transaction.atomic
def enrollment_stop(*, enrollment_id: int, reason: str, at: datetime | None = None) -> bool:
    """Stop the enrollment's outreach for `reason` (shown to people and the engine).

    Stopping is terminal and done once: an enrollment already stopped keeps its first reason
    and time. Returns True when this call stopped it.
    """
    at = at or timezone.now()
    stopped = bool(
        Enrollment.objects.filter(pk=enrollment_id)
        .exclude(state=Enrollment.State.STOPPED)
        .update(
            state=Enrollment.State.STOPPED,
            state_changed_at=at,
            stopped_at=at,
            stopped_reason=reason[:300],
        )
    )
    if stopped:
        # The team's engine hears of it by a signed POST too, if the team set a URL.
        team_webhook_stopped_queue(enrollment_id=enrollment_id)
    return stopped


MSG_STOPPED_IS_FINAL = "A stopped enrollment stays stopped: add the contact to a sequence again."


def enrollment_state_set(*, enrollment: Enrollment, state: str, by: str) -> None:
    """A person set the state on the enrollment's page. Stopping goes through enrollment_stop
    (the engine and the team's webhook hear of it); a stopped enrollment never restarts."""
    current = Enrollment.objects.filter(pk=enrollment.pk).values_list("state", flat=True).first()
    if state == current:
        return
    if current == Enrollment.State.STOPPED:
        raise ValidationError(MSG_STOPPED_IS_FINAL)
    if state == Enrollment.State.STOPPED:
        enrollment_stop(enrollment_id=enrollment.pk, reason=f"Stopped by {by}")
    else:
        Enrollment.objects.filter(pk=enrollment.pk).update(
            state=state, state_changed_at=timezone.now()
        )
    enrollment.refresh_from_db(fields=["state", "state_changed_at", "stopped_at", "stopped_reason"])
