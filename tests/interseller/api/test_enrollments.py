"""GET /api/v1/enrollments: the outreach engine learns which enrollments were stopped (by an
integration, through `enrollment_stop`), team-scoped, paged, since a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from interseller import services
from interseller.models import Enrollment
from tests.factories import ContactFactory, SequenceFactory

URL = "/api/v1/enrollments"
T = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


@pytest.fixture
def get(client, token_a):
    def _get(params=None, *, token=None):
        headers = {"Authorization": f"Bearer {token or token_a}"} if token != "" else {}
        return client.get(URL, params or {}, headers=headers)

    return _get


def enroll(team, sequence, email):
    contact = ContactFactory(team=team.team, owner=team.member, email=email)
    return services.contact_add_to_sequence(contact=contact, sequence=sequence).enrollment


def test_stopped_enrollments_are_listed_with_reason_and_time(get, team_a, sequence_a):
    stopped = enroll(team_a, sequence_a, "stopped@example.com")
    enroll(team_a, sequence_a, "active@example.com")
    assert services.enrollment_stop(enrollment_id=stopped.pk, reason="Moved to Submitted", at=T)

    body = get({"state": "stopped"}).json()

    (row,) = body["results"]
    assert row["id"] == stopped.pk
    assert row["contact_email"] == "stopped@example.com"
    assert row["sequence_id"] == sequence_a.pk
    assert (row["state"], row["stopped_reason"]) == ("stopped", "Moved to Submitted")
    assert row["stopped_at"] == row["state_changed_at"] == "2026-11-20T09:00:00Z"
    assert body["next"] is None


def test_stopping_twice_keeps_the_first_reason(team_a, sequence_a):
    enrollment = enroll(team_a, sequence_a, "a@example.com")
    assert services.enrollment_stop(enrollment_id=enrollment.pk, reason="first", at=T)
    assert not services.enrollment_stop(enrollment_id=enrollment.pk, reason="second")
    enrollment.refresh_from_db()
    assert (enrollment.stopped_reason, enrollment.stopped_at) == ("first", T)


def test_changed_since_leaves_out_older_changes(get, team_a, sequence_a):
    old = enroll(team_a, sequence_a, "old@example.com")
    new = enroll(team_a, sequence_a, "new@example.com")
    services.enrollment_stop(enrollment_id=old.pk, reason="r", at=T)
    services.enrollment_stop(enrollment_id=new.pk, reason="r", at=T + timedelta(hours=2))

    since = get({"state": "stopped", "changed_since": "2026-11-20T10:00:00+00:00"}).json()

    assert [r["id"] for r in since["results"]] == [new.pk]


def test_other_teams_stops_are_never_listed(get, team_a, team_b, sequence_a):
    theirs = SequenceFactory(team=team_b.team, owner=team_b.member)
    other = enroll(team_b, theirs, "b@example.com")
    services.enrollment_stop(enrollment_id=other.pk, reason="r", at=T)

    assert get({"state": "stopped"}).json()["results"] == []


def test_pages_follow_the_order_of_changes(get, team_a, sequence_a):
    rows = [enroll(team_a, sequence_a, f"p{i}@example.com") for i in range(5)]
    for i, enrollment in enumerate(rows):
        services.enrollment_stop(enrollment_id=enrollment.pk, reason="r", at=T + timedelta(i))

    first = get({"state": "stopped", "page_size": 2}).json()
    second = get({"state": "stopped", "page_size": 2, "page": 2}).json()
    last = get({"state": "stopped", "page_size": 2, "page": 3}).json()

    assert [r["id"] for r in first["results"] + second["results"] + last["results"]] == [
        e.pk for e in rows
    ]
    assert "page=2" in first["next"]
    assert last["next"] is None


@pytest.mark.parametrize(
    "params,field",
    [
        ({"state": "halted"}, "state"),
        ({"changed_since": "yesterday"}, "changed_since"),
        ({"page": "0"}, "page"),
        ({"page": str(10**20)}, "page"),  # an offset no database takes (SQLite: a 500)
        ({"page_size": "1000"}, "page_size"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_parameters_are_400_per_field(get, team_a, params, field):
    answer = get(params)
    assert answer.status_code == 400
    assert set(answer.json()["errors"]) == {field}


def test_token_required_and_only_get(client, get):
    assert get(token="").status_code == 401
    assert get(token="not-a-token").status_code == 401
    assert client.post(URL).status_code == 405


def test_a_stopped_enrollment_stays_stopped_through_bounce_and_reply(team_a, sequence_a):
    enrollment = enroll(team_a, sequence_a, "a@example.com")
    services.enrollment_stop(enrollment_id=enrollment.pk, reason="r", at=T)
    for n, kind in enumerate(["reply_received", "bounced", "unsubscribed"]):
        services.email_event_record(
            enrollment=enrollment, external_id=f"e{n}", kind=kind, occurred_at=T
        )
    enrollment.refresh_from_db()
    assert enrollment.state == Enrollment.State.STOPPED
    assert enrollment.bounced_at == enrollment.unsubscribed_at == T
