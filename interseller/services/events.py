"""Email events from the outreach engine, folded into their enrollment in any order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..models import EmailEvent, Enrollment
from ..signals import email_event_recorded
from ..text import text_clean
from .messages import MSG_SENTIMENT_NOT_REPLY


@dataclass(frozen=True)
class EventResult:
    event: EmailEvent
    created: bool
    # The enrollment as the new event left it (None for a replayed event: it changed nothing).
    enrollment: Enrollment | None = None


# Each kind of event: the time fields it moves ("first" keeps the earliest, "last" the latest).
_TIMES = {
    EmailEvent.Kind.MESSAGE_SENT: (("first_messaged_at", min), ("last_messaged_at", max)),
    EmailEvent.Kind.REPLY_RECEIVED: (("responded_at", min),),
    EmailEvent.Kind.BOUNCED: (("bounced_at", min),),
    EmailEvent.Kind.UNSUBSCRIBED: (("unsubscribed_at", min),),
}
# The state an event puts the enrollment in, and the states it may move it from (None: any).
_STATES = {
    EmailEvent.Kind.REPLY_RECEIVED: (
        Enrollment.State.REPLIED,
        # A reply ends an active sequence; bounce/unsubscribe are terminal and stay.
        (Enrollment.State.ACTIVE, Enrollment.State.FINISHED),
    ),
    # A stopped enrollment stays stopped (the times above still record the bounce).
    EmailEvent.Kind.BOUNCED: (
        Enrollment.State.BOUNCED,
        tuple(s for s in Enrollment.State if s != Enrollment.State.STOPPED),
    ),
    EmailEvent.Kind.UNSUBSCRIBED: (
        Enrollment.State.UNSUBSCRIBED,
        tuple(s for s in Enrollment.State if s != Enrollment.State.STOPPED),
    ),
}


def _apply_event(enrollment: Enrollment, event: EmailEvent) -> list[str]:
    """Fold one event into the enrollment; order-independent so late events land right."""
    changed: list[str] = []
    at = event.occurred_at
    for name, pick in _TIMES.get(event.kind, ()):
        current = getattr(enrollment, name)
        if current is None or pick(at, current) != current:
            setattr(enrollment, name, at)
            changed.append(name)
    if event.kind in _STATES:
        state, from_states = _STATES[event.kind]
        if enrollment.state != state and (from_states is None or enrollment.state in from_states):
            enrollment.state = state
            enrollment.state_changed_at = timezone.now()
            changed += ["state", "state_changed_at"]
    if event.sentiment and enrollment.sentiment != event.sentiment:
        enrollment.sentiment = event.sentiment
        changed.append("sentiment")
    return changed


@dataclass(frozen=True)
class DateWindow:
    """The dates from `earliest` up to `ahead` past the present."""

    earliest: datetime
    ahead: timedelta

    def contains(self, when: datetime) -> bool:
        if timezone.is_naive(when):
            when = timezone.make_aware(when)
        return self.earliest <= when <= timezone.now() + self.ahead


# When an email event may have happened: not before 2000 (no outreach we record is older) and
# at most a day ahead of our clock (the sender's clock may run ahead of ours). A date outside
# is a bug upstream; one past 9999-12-31 in UTC cannot even be read back, and breaks every page
# that lists the event. Keep MSG_EVENT_DATE_WINDOW in step.
EVENT_DATE_WINDOW = DateWindow(earliest=datetime(2000, 1, 1, tzinfo=UTC), ahead=timedelta(days=1))
MSG_EVENT_DATE_WINDOW = "Must be between 2000-01-01T00:00:00Z and one day from now."


@transaction.atomic
def email_event_record(
    *,
    enrollment: Enrollment,
    external_id: str,
    kind: str,
    occurred_at: datetime | str,
    subject: str = "",
    snippet: str = "",
    sentiment: str = "",
) -> EventResult:
    """Record what the outreach engine reports. Replaying an external id changes nothing.

    Refuses (ValidationError, per field) a date outside EVENT_DATE_WINDOW and text that cannot
    be stored, before reading or writing anything.
    """
    errors: dict[str, ValidationError] = {}
    try:
        # Like the model field, take an ISO 8601 string too.
        occurred_at = EmailEvent._meta.get_field("occurred_at").to_python(occurred_at)
    except ValidationError as exc:
        errors["occurred_at"] = exc
    else:
        if occurred_at is None or not EVENT_DATE_WINDOW.contains(occurred_at):
            errors["occurred_at"] = ValidationError(MSG_EVENT_DATE_WINDOW, code="date_window")
    texts = {"external_id": external_id, "subject": subject, "snippet": snippet}
    for name, value in texts.items():
        try:
            texts[name] = text_clean(value, multiline=name == "snippet")
        except ValidationError as exc:
            errors[name] = exc
    if errors:
        raise ValidationError(errors)
    external_id, subject, snippet = texts["external_id"], texts["subject"], texts["snippet"]
    team_id = enrollment.sequence.team_id
    existing = EmailEvent.objects.filter(team_id=team_id, external_id=external_id).first()
    if existing:
        return EventResult(existing, False)
    if sentiment and kind != EmailEvent.Kind.REPLY_RECEIVED:
        raise ValidationError({"sentiment": MSG_SENTIMENT_NOT_REPLY}, code="sentiment")
    # With its sequence, which the receivers read: one query, and only the enrollment locked.
    enrollment = (
        Enrollment.objects.select_for_update(of=("self",))
        .select_related("sequence")
        .get(pk=enrollment.pk)
    )
    first_reply = (
        kind == EmailEvent.Kind.REPLY_RECEIVED
        and not enrollment.events.filter(kind=EmailEvent.Kind.REPLY_RECEIVED).exists()
    )
    try:
        with transaction.atomic():
            event = EmailEvent.objects.create(
                team_id=team_id,
                enrollment=enrollment,
                external_id=external_id,
                kind=kind,
                occurred_at=occurred_at,
                subject=subject[:500],
                snippet=snippet,
                sentiment=sentiment,
            )
    except IntegrityError:
        return EventResult(EmailEvent.objects.get(team_id=team_id, external_id=external_id), False)
    changed = _apply_event(enrollment, event)
    if changed:
        enrollment.save(update_fields=sorted(set(changed)))
    email_event_recorded.send(
        sender=EmailEvent, event=event, enrollment=enrollment, first_reply=first_reply
    )
    return EventResult(event, True, enrollment)
