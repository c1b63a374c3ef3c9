"""POST /api/v1/events: recording email events, replays and refusals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from interseller import api, services
from interseller.models import EmailEvent, Enrollment
from tests.factories import ContactFactory, SequenceFactory
from tests.support.api import EVENTS, event

# --- POST /api/v1/events --------------------------------------------------------------------


def test_message_sent_is_recorded_with_201(post, sequence_a, enrolled):
    response = post(EVENTS, event(sequence_a))
    assert response.status_code == 201
    body = response.json()
    stored = EmailEvent.objects.get()
    assert stored.external_id == body["id"] == "evt-1"
    assert stored.kind == body["type"] == "message_sent"
    assert stored.occurred_at == datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    assert body["created"] is True
    assert body["contact_email"] == "ada@prospect.example"
    assert body["enrollment"]["id"] == enrolled.pk
    assert body["enrollment"]["state"] == "active"
    assert body["enrollment"]["first_messaged_at"] == "2024-05-01T09:30:00Z"
    assert body["enrollment"]["last_messaged_at"] == "2024-05-01T09:30:00Z"


def test_reply_with_sentiment_updates_the_enrollment(post, sequence_a, enrolled):
    response = post(
        EVENTS,
        event(
            sequence_a,
            id="evt-2",
            type="reply_received",
            occurred_at="2024-05-02T10:00:00+02:00",
            sentiment="interested",
            snippet="Sounds good, let's talk",
        ),
    )
    assert response.status_code == 201
    body = response.json()
    assert body["sentiment"] == "interested"
    assert body["enrollment"]["state"] == "replied"
    assert body["enrollment"]["sentiment"] == "interested"
    assert body["enrollment"]["responded_at"] == "2024-05-02T08:00:00Z"
    enrolled.refresh_from_db()
    assert enrolled.state == Enrollment.State.REPLIED


def test_replayed_event_id_is_200_with_the_same_result_and_no_second_event(
    post, sequence_a, enrolled
):
    first = post(EVENTS, event(sequence_a, type="bounced"))
    again = post(EVENTS, event(sequence_a, type="bounced"))
    assert first.status_code == 201
    assert again.status_code == 200
    first_body, again_body = first.json(), again.json()
    assert first_body.pop("created") is True
    assert again_body.pop("created") is False
    assert first_body == again_body
    assert EmailEvent.objects.count() == 1


def test_email_case_does_not_matter_for_events(post, sequence_a, enrolled):
    response = post(EVENTS, event(sequence_a, contact_email=" ADA@Prospect.example"))
    assert response.status_code == 201


def test_event_for_a_contact_not_in_the_sequence_is_422(post, team_a, sequence_a):
    ContactFactory(team=team_a.team, owner=team_a.member, email="ada@prospect.example")
    response = post(EVENTS, event(sequence_a))
    assert response.status_code == 422
    message = services.MSG_NOT_IN_SEQUENCE.format(
        email="ada@prospect.example", sequence=sequence_a.title
    )
    assert response.json() == {"errors": {"contact_email": [message]}}
    assert not EmailEvent.objects.exists()


def test_event_for_an_unknown_contact_is_422(post, sequence_a):
    response = post(EVENTS, event(sequence_a, contact_email="nobody@prospect.example"))
    assert response.status_code == 422
    assert (
        "nobody@prospect.example is not in the sequence"
        in (response.json()["errors"]["contact_email"][0])
    )


def test_event_for_another_teams_sequence_is_404(post, team_b, enrolled):
    other = SequenceFactory(team=team_b.team, owner=team_b.owner)
    contact = ContactFactory(team=team_b.team, owner=team_b.owner, email="ada@prospect.example")
    services.contact_add_to_sequence(contact=contact, sequence=other)
    response = post(EVENTS, event(other))
    assert response.status_code == 404
    assert not EmailEvent.objects.exists()


@pytest.mark.parametrize(
    "occurred_at",
    [
        "2024-05-01T09:30:00",  # no timezone
        "2024-05-01 09:30:00Z",  # not RFC 3339
        "2024-05-01",
        "01/05/2024 09:30",
        "2024-13-01T09:30:00Z",
        "2024-05-01T25:30:00Z",
        "yesterday",
    ],
)
def test_occurred_at_must_be_rfc3339_with_timezone(post, sequence_a, enrolled, occurred_at):
    response = post(EVENTS, event(sequence_a, occurred_at=occurred_at))
    assert response.status_code == 400
    assert response.json() == {"errors": {"occurred_at": [api.MSG_DATETIME]}}


def test_times_are_answered_in_utc_so_a_replay_reads_like_the_first_answer(
    post, sequence_a, enrolled
):
    sent = event(sequence_a, occurred_at="2024-05-02T10:00:00+02:00")
    first, again = post(EVENTS, sent), post(EVENTS, sent)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["occurred_at"] == again.json()["occurred_at"] == "2024-05-02T08:00:00Z"


@pytest.mark.parametrize(
    "occurred_at",
    ["2024-05-01T09:30:00.123456Z", "2024-05-01t09:30:00z", "2024-05-01T09:30:00-05:00"],
)
def test_rfc3339_variants_are_accepted(post, sequence_a, enrolled, occurred_at):
    assert post(EVENTS, event(sequence_a, occurred_at=occurred_at)).status_code == 201


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        (
            {"type": "opened"},
            "type",
            api.MSG_CHOICE.format(choices=", ".join(EmailEvent.Kind.values)),
        ),
        (
            {"sentiment": "maybe", "type": "reply_received"},
            "sentiment",
            "Must be one of: interested, not_interested.",
        ),
        ({"sentiment": "interested"}, "sentiment", services.MSG_SENTIMENT_NOT_REPLY),
        ({"id": ""}, "id", api.MSG_BLANK),
        ({"id": 17}, "id", "Must be a string."),
        ({"id": "x" * 201}, "id", "Must be at most 200 characters."),
        ({"sequence_id": "1"}, "sequence_id", "Must be an integer."),
        # No row can have it (SQLite even refused to look: a 500).
        ({"sequence_id": 2**64}, "sequence_id", api.MSG_ID_RANGE),
        ({"sequence_id": 0}, "sequence_id", api.MSG_ID_RANGE),
        ({"contact_email": "ada@"}, "contact_email", "'ada@' is not a valid email address."),
        ({"subject": 5}, "subject", "Must be a string."),
        ({"occurred_at": 1714555800}, "occurred_at", "Must be a string."),
        ({"when": "now"}, "when", api.MSG_UNKNOWN_FIELD),
    ],
)
def test_invalid_event_fields_are_400_per_field(
    post, sequence_a, enrolled, overrides, field, message
):
    response = post(EVENTS, event(sequence_a, **overrides))
    assert response.status_code == 400
    assert response.json() == {"errors": {field: [message]}}
    assert not EmailEvent.objects.exists()
    enrolled.refresh_from_db()
    assert enrolled.first_messaged_at is None


def test_missing_event_fields_are_each_reported(post, sequence_a):
    response = post(EVENTS, {})
    assert response.status_code == 400
    assert response.json()["errors"] == {
        name: [api.MSG_REQUIRED]
        for name in ("id", "type", "sequence_id", "contact_email", "occurred_at")
    }


# --- queries per event ------------------------------------------------------------------------
def test_an_event_costs_few_queries(post, sequence_a, enrolled, django_assert_max_num_queries):
    """Token, enrollment (with its sequence and contact), replay check, lock, insert, what
    cats_sync reads of the contact: 11 with the test's savepoints, however busy the team."""
    assert post(EVENTS, event(sequence_a, id="first")).status_code == 201
    with django_assert_max_num_queries(11):
        response = post(EVENTS, event(sequence_a, id="second"))
    assert response.status_code == 201
    assert response.json()["contact_email"] == "ada@prospect.example"


def test_an_event_of_a_contact_synced_to_cats_costs_few_queries(
    post, team_a, sequence_a, enrolled, cats_sandbox, settings, django_assert_max_num_queries
):
    """The bench's case (18 queries before): the contact is in CATS, so the event becomes a
    sync task. 14 with the test's savepoints (six of them): token, enrollment, replay check,
    lock, insert, enrollment update, the contact's CATS record, the task (its runner is woken
    on commit)."""
    from cats_sync.models import CatsAccount, SyncTask
    from tests.support.cats import connect, drain

    assert post(EVENTS, event(sequence_a, id="before")).status_code == 201  # token in use
    settings.CATS_API_URL = cats_sandbox.url
    site = cats_sandbox.create_site()
    connect(team_a.member, site, sync_mode=CatsAccount.SyncMode.ON_ADD)
    from cats_sync.services import resync_start

    resync_start(
        enrollments=Enrollment.objects.filter(pk=enrolled.pk),
        started_by=team_a.member.user,
        team=team_a.team,
        description="test",
    )
    drain()
    assert Enrollment.objects.get(pk=enrolled.pk).cats_sync.synced_at is not None
    with django_assert_max_num_queries(14):
        response = post(EVENTS, event(sequence_a, id="synced", occurred_at="2024-06-01T09:00:00Z"))
    assert response.status_code == 201
    assert SyncTask.objects.filter(
        kind=SyncTask.Kind.EVENT, event__external_id="synced", state=SyncTask.State.PENDING
    ).exists()
