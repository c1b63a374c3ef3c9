"""Each email event becomes one CATS activity, whatever the retries and lost answers."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from interseller.models import EmailEvent, Sequence

from .. import messages
from ..client import CatsRejected, CatsUnavailable
from ..errors import NeedsPerson, Wait
from ..models import ActivityLink, EnrollmentSync, SyncIssue
from ..services.issues import issue_clear
from .context import StepContext

KIND_WORDS = {
    EmailEvent.Kind.MESSAGE_SENT: "Email sent",
    EmailEvent.Kind.REPLY_RECEIVED: "Reply received",
    EmailEvent.Kind.BOUNCED: "Email bounced",
    EmailEvent.Kind.UNSUBSCRIBED: "Unsubscribed",
}
SNIPPET_CHARS = 280


def activity_marker(event: EmailEvent) -> str:
    return f"(Interseller event {event.external_id})"


def activity_notes(event: EmailEvent, sequence: Sequence) -> str:
    lines = [f"{KIND_WORDS[event.kind]} — Interseller sequence “{sequence.title}”"]
    if event.subject:
        lines.append(f"Subject: {event.subject}")
    if event.kind == EmailEvent.Kind.REPLY_RECEIVED and event.sentiment:
        lines.append(f"Sentiment: {event.get_sentiment_display()}")
    if event.snippet:
        snippet = " ".join(event.snippet.split())
        if len(snippet) > SNIPPET_CHARS:
            snippet = snippet[: SNIPPET_CHARS - 1] + "…"
        lines.append(f"“{snippet}”")
    # Lets a retry after a lost answer find the activity it may already have written.
    lines.append(activity_marker(event))
    return "\n".join(lines)


def activity_write(ctx: StepContext, event: EmailEvent) -> None:
    es = ctx.es
    try:
        with transaction.atomic():
            link, _ = ActivityLink.objects.get_or_create(event=event, defaults={"site": es.site})
    except IntegrityError:
        link = ActivityLink.objects.get(event=event)
    if link.activity_id:
        return
    if link.attempted_at:
        # An earlier create may have landed without our hearing of it: look before writing.
        marker = activity_marker(event)
        for row in ctx.client.list_candidate_activities(es.candidate_id):
            if marker in str(row.get("notes") or ""):
                ActivityLink.objects.filter(pk=link.pk).update(activity_id=int(row["id"]))
                issue_clear(enrollment_sync_id=es.pk, step=SyncIssue.Step.ACTIVITY)
                return
    ActivityLink.objects.filter(pk=link.pk).update(attempted_at=timezone.now())
    try:
        activity_id = ctx.client.create_activity(
            es.candidate_id,
            type="email",
            regarding_id=es.job_id,
            notes=activity_notes(event, ctx.task.enrollment.sequence),
            date=event.occurred_at,
        )
    except CatsUnavailable as exc:
        if not exc.write_may_have_happened:
            ActivityLink.objects.filter(pk=link.pk).update(attempted_at=None)
        raise
    except Wait:
        # Nothing left: the next attempt writes without listing activities first.
        ActivityLink.objects.filter(pk=link.pk).update(attempted_at=None)
        raise
    except CatsRejected as exc:
        ActivityLink.objects.filter(pk=link.pk).update(attempted_at=None)
        raise NeedsPerson(
            messages.ERR_ACTIVITY_REJECTED.format(message=exc.message),
            code=EnrollmentSync.Error.REJECTED,
            step=SyncIssue.Step.ACTIVITY,
        ) from exc
    ActivityLink.objects.filter(pk=link.pk).update(activity_id=activity_id)
    issue_clear(enrollment_sync_id=es.pk, step=SyncIssue.Step.ACTIVITY)
