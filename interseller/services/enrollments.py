"""Stopping an enrollment from outside the outreach engine (an integration saw a recruiter
move the candidate on): the core's one place that writes the "stopped" state."""

from __future__ import annotations

from datetime import datetime

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
