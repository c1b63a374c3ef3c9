"""Email events: what each one does to its enrollment, replays, and the signal they send
(interseller.services.events)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError

from interseller import services
from interseller.models import EmailEvent, Enrollment
from interseller.signals import email_event_recorded
from tests.factories import ContactFactory, SequenceFactory
from tests.support.domain import received


def at(day: int, hour: int = 9) -> datetime:
    return datetime(2024, 5, day, hour, tzinfo=UTC)


def record(enrollment: Enrollment, external_id: str, kind: str, when: datetime, **kwargs):
    return services.email_event_record(
        enrollment=enrollment, external_id=external_id, kind=kind, occurred_at=when, **kwargs
    )


# --- email events ---------------------------------------------------------------------------


def test_messages_set_first_and_last_messaged(enrollment):
    record(enrollment, "m1", EmailEvent.Kind.MESSAGE_SENT, at(1))
    record(enrollment, "m2", EmailEvent.Kind.MESSAGE_SENT, at(3))
    enrollment.refresh_from_db()
    assert enrollment.first_messaged_at == at(1)
    assert enrollment.last_messaged_at == at(3)
    assert enrollment.state == Enrollment.State.ACTIVE


def test_out_of_order_messages_still_land_right(enrollment):
    record(enrollment, "m3", EmailEvent.Kind.MESSAGE_SENT, at(3))
    record(enrollment, "m1", EmailEvent.Kind.MESSAGE_SENT, at(1))
    record(enrollment, "m2", EmailEvent.Kind.MESSAGE_SENT, at(2))
    enrollment.refresh_from_db()
    assert (enrollment.first_messaged_at, enrollment.last_messaged_at) == (at(1), at(3))


def test_reply_sets_responded_at_state_and_sentiment(enrollment):
    record(
        enrollment,
        "r1",
        EmailEvent.Kind.REPLY_RECEIVED,
        at(4),
        sentiment=Enrollment.Sentiment.INTERESTED,
    )
    enrollment.refresh_from_db()
    assert enrollment.responded_at == at(4)
    assert enrollment.state == Enrollment.State.REPLIED
    assert enrollment.sentiment == Enrollment.Sentiment.INTERESTED


def test_an_earlier_reply_arriving_late_moves_responded_at_back(enrollment):
    record(enrollment, "r2", EmailEvent.Kind.REPLY_RECEIVED, at(5))
    record(enrollment, "r1", EmailEvent.Kind.REPLY_RECEIVED, at(4))
    enrollment.refresh_from_db()
    assert enrollment.responded_at == at(4)


def test_reply_after_a_bounce_keeps_the_bounce(enrollment):
    record(enrollment, "b1", EmailEvent.Kind.BOUNCED, at(2))
    record(enrollment, "r1", EmailEvent.Kind.REPLY_RECEIVED, at(3))
    enrollment.refresh_from_db()
    assert enrollment.state == Enrollment.State.BOUNCED
    assert enrollment.responded_at == at(3)


@pytest.mark.parametrize(
    ("kind", "state"),
    [
        (EmailEvent.Kind.BOUNCED, Enrollment.State.BOUNCED),
        (EmailEvent.Kind.UNSUBSCRIBED, Enrollment.State.UNSUBSCRIBED),
    ],
)
def test_bounce_and_unsubscribe_set_the_state(enrollment, kind, state):
    record(enrollment, "e1", kind, at(2))
    enrollment.refresh_from_db()
    assert enrollment.state == state


def test_replaying_an_external_id_changes_nothing(enrollment):
    first = record(enrollment, "m1", EmailEvent.Kind.MESSAGE_SENT, at(1))
    enrollment.refresh_from_db()
    before = Enrollment.objects.values().get(pk=enrollment.pk)

    with received(email_event_recorded) as calls:
        again = record(enrollment, "m1", EmailEvent.Kind.REPLY_RECEIVED, at(9))

    assert again.created is False
    assert again.event == first.event
    assert EmailEvent.objects.count() == 1
    assert Enrollment.objects.values().get(pk=enrollment.pk) == before
    assert calls == []


def test_same_external_id_in_another_team_is_a_different_event(enrollment, team_b):
    other_seq = SequenceFactory(team=team_b.team, owner=team_b.owner)
    other_contact = ContactFactory(team=team_b.team, owner=team_b.owner)
    other = services.contact_add_to_sequence(contact=other_contact, sequence=other_seq).enrollment
    record(enrollment, "m1", EmailEvent.Kind.MESSAGE_SENT, at(1))
    result = record(other, "m1", EmailEvent.Kind.MESSAGE_SENT, at(1))
    assert result.created is True
    assert EmailEvent.objects.count() == 2


@pytest.mark.parametrize(
    "kind",
    [EmailEvent.Kind.MESSAGE_SENT, EmailEvent.Kind.BOUNCED, EmailEvent.Kind.UNSUBSCRIBED],
)
def test_sentiment_on_anything_but_a_reply_is_refused(enrollment, kind):
    with pytest.raises(ValidationError) as error:
        record(enrollment, "e1", kind, at(1), sentiment=Enrollment.Sentiment.INTERESTED)
    assert error.value.message_dict == {"sentiment": [services.MSG_SENTIMENT_NOT_REPLY]}
    assert not EmailEvent.objects.exists()


def test_event_signal_fires_once_per_new_event_and_flags_the_first_reply(enrollment):
    with received(email_event_recorded) as calls:
        record(enrollment, "m1", EmailEvent.Kind.MESSAGE_SENT, at(1))
        record(enrollment, "r1", EmailEvent.Kind.REPLY_RECEIVED, at(2))
        record(enrollment, "r1", EmailEvent.Kind.REPLY_RECEIVED, at(2))
        record(enrollment, "r2", EmailEvent.Kind.REPLY_RECEIVED, at(3))
    assert [(c["event"].external_id, c["first_reply"]) for c in calls] == [
        ("m1", False),
        ("r1", True),
        ("r2", False),
    ]
    assert all(c["enrollment"].pk == enrollment.pk for c in calls)


def test_event_signal_carries_the_updated_enrollment(enrollment):
    with received(email_event_recorded) as calls:
        record(enrollment, "r1", EmailEvent.Kind.REPLY_RECEIVED, at(2))
    assert calls[0]["enrollment"].state == Enrollment.State.REPLIED
