from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.dispatch import Signal

from interseller import services
from interseller.models import ApiToken, Contact, EmailEvent, Enrollment, Membership
from interseller.signals import contact_added_to_sequence, email_event_recorded

from .factories import ContactFactory, SequenceFactory, UserFactory


def at(day: int, hour: int = 9) -> datetime:
    return datetime(2024, 5, day, hour, tzinfo=UTC)


@contextmanager
def received(signal: Signal) -> Iterator[list[dict]]:
    calls: list[dict] = []

    def receiver(sender, **kwargs):
        calls.append(kwargs)

    signal.connect(receiver, weak=False)
    try:
        yield calls
    finally:
        signal.disconnect(receiver)


@pytest.fixture
def contact(team_a) -> Contact:
    return ContactFactory(team=team_a.team, owner=team_a.member, email="ada@prospect.example")


@pytest.fixture
def enrollment(contact, sequence_a) -> Enrollment:
    return services.contact_add_to_sequence(contact=contact, sequence=sequence_a).enrollment


def record(enrollment: Enrollment, external_id: str, kind: str, when: datetime, **kwargs):
    return services.email_event_record(
        enrollment=enrollment, external_id=external_id, kind=kind, occurred_at=when, **kwargs
    )


# --- contacts: normalisation and constraints ------------------------------------------------


def test_upsert_stores_the_email_trimmed_and_lower_cased(team_a):
    result = services.contact_upsert(
        team=team_a.team, owner=team_a.owner, email="  Ada@EXAMPLE.org "
    )
    assert result.contact.email == "ada@example.org"


def test_upsert_with_differently_cased_email_finds_the_same_contact(team_a, contact):
    result = services.contact_upsert(
        team=team_a.team, owner=team_a.owner, email="ADA@prospect.example"
    )
    assert result.contact == contact
    assert result.created is False
    assert Contact.objects.count() == 1


def test_same_email_is_allowed_in_two_teams(team_a, team_b):
    a = services.contact_upsert(team=team_a.team, owner=team_a.owner, email="x@prospect.example")
    b = services.contact_upsert(team=team_b.team, owner=team_b.owner, email="x@prospect.example")
    assert a.created and b.created
    assert a.contact.pk != b.contact.pk


def test_database_refuses_a_duplicate_email_in_one_team(team_a, contact):
    with pytest.raises(IntegrityError), transaction.atomic():
        Contact.objects.create(team=team_a.team, owner=team_a.owner, email=contact.email)


def test_database_refuses_an_upper_case_email(team_a):
    with pytest.raises(IntegrityError), transaction.atomic():
        Contact.objects.create(team=team_a.team, owner=team_a.owner, email="Ada@prospect.example")


@pytest.mark.parametrize("email", ["", "   ", "not-an-email", "a@", "@b.example"])
def test_upsert_refuses_a_missing_or_invalid_email(team_a, email):
    with pytest.raises(ValidationError):
        services.contact_upsert(team=team_a.team, owner=team_a.owner, email=email)
    assert not Contact.objects.exists()


def test_invalid_email_message_quotes_the_address():
    with pytest.raises(ValidationError) as error:
        services.email_validate(" nope ")
    assert error.value.messages == [services.MSG_EMAIL_INVALID.format(email="nope")]


def test_upsert_refuses_an_owner_from_another_team(team_a, team_b):
    with pytest.raises(ValidationError) as error:
        services.contact_upsert(team=team_a.team, owner=team_b.owner, email="a@prospect.example")
    assert error.value.messages == [services.MSG_OWNER_OTHER_TEAM]


# --- contacts: created / updated / unchanged ------------------------------------------------


def test_upsert_creates_a_new_contact(team_a):
    result = services.contact_upsert(
        team=team_a.team,
        owner=team_a.member,
        email="grace@prospect.example",
        fields={"first_name": " Grace ", "company": "Navy", "unknown": "ignored"},
    )
    assert result.status == "created"
    assert result.contact.first_name == "Grace"
    assert result.contact.owner == team_a.member


def test_upsert_updates_only_changed_fields_and_keeps_the_owner(team_a, contact):
    result = services.contact_upsert(
        team=team_a.team,
        owner=team_a.owner,
        email=contact.email,
        fields={"company": "New Co", "first_name": contact.first_name},
    )
    assert result.status == "updated"
    assert result.changed_fields == ("company",)
    contact.refresh_from_db()
    assert contact.company == "New Co"
    assert contact.owner == team_a.member


def test_upsert_with_the_same_values_is_unchanged(team_a, contact):
    result = services.contact_upsert(
        team=team_a.team,
        owner=team_a.member,
        email=contact.email,
        fields={"company": contact.company},
    )
    assert result.status == "unchanged"


def test_blank_values_never_erase_what_is_known(team_a):
    services.contact_upsert(
        team=team_a.team,
        owner=team_a.owner,
        email="ada@prospect.example",
        fields={"phone": "555-0100", "company": "Analytical"},
    )
    result = services.contact_upsert(
        team=team_a.team,
        owner=team_a.owner,
        email="ada@prospect.example",
        fields={"phone": "", "company": None, "location": "   "},
    )
    assert result.status == "unchanged"
    contact = Contact.objects.get()
    assert (contact.phone, contact.company) == ("555-0100", "Analytical")


# --- enrollments ----------------------------------------------------------------------------


def test_adding_to_a_sequence_enrolls_and_signals_once(contact, sequence_a, team_a):
    with received(contact_added_to_sequence) as calls:
        result = services.contact_add_to_sequence(
            contact=contact, sequence=sequence_a, added_by=team_a.owner
        )
    assert result.created is True
    assert result.enrollment.state == Enrollment.State.ACTIVE
    assert calls == [
        {
            "signal": contact_added_to_sequence,
            "enrollment": result.enrollment,
            "added_by": team_a.owner,
            "bulk": False,
        }
    ]


def test_adding_twice_is_a_no_op_that_says_so(contact, sequence_a, enrollment):
    with received(contact_added_to_sequence) as calls:
        result = services.contact_add_to_sequence(contact=contact, sequence=sequence_a)
    assert result.created is False
    assert result.enrollment == enrollment
    assert result.message == services.MSG_ALREADY_IN_SEQUENCE.format(
        contact=contact.email, sequence=sequence_a.title
    )
    assert calls == []
    assert Enrollment.objects.count() == 1


def test_another_teams_sequence_is_refused(contact, team_b):
    other = SequenceFactory(team=team_b.team, owner=team_b.owner)
    with received(contact_added_to_sequence) as calls, pytest.raises(ValidationError) as error:
        services.contact_add_to_sequence(contact=contact, sequence=other)
    assert error.value.messages == [services.MSG_SEQUENCE_OTHER_TEAM]
    assert calls == []
    assert not Enrollment.objects.exists()


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


# --- teammates ------------------------------------------------------------------------------


def test_teammate_add_creates_a_staff_user_who_signs_in_by_sso(team_a):
    membership = services.teammate_add(
        team=team_a.team, email=" New@Acme.example ", first_name="New", role="manager"
    )
    user = membership.user
    assert (user.username, user.email) == ("new@acme.example", "new@acme.example")
    assert user.is_staff and not user.is_superuser
    assert not user.has_usable_password()
    assert membership.role == Membership.Role.MANAGER


def test_teammate_add_with_a_password_makes_it_usable(team_a):
    membership = services.teammate_add(
        team=team_a.team, email="pw@acme.example", password="s3cret-Pa55"
    )
    assert membership.user.check_password("s3cret-Pa55")


def test_teammate_add_links_an_existing_account_without_touching_it(team_a, team_b):
    user = UserFactory(username="both@acme.example", first_name="Both")
    password = user.password
    membership = services.teammate_add(
        team=team_b.team, email="BOTH@acme.example", first_name="Other"
    )
    user.refresh_from_db()
    assert membership.user == user
    assert (user.password, user.first_name, user.is_staff) == (password, "Both", True)


def test_teammate_add_never_promotes_a_non_staff_account(team_b):
    user = UserFactory(username="plain@acme.example", is_staff=False)
    with pytest.raises(services.TeammateRefused):
        services.teammate_add(team=team_b.team, email="plain@acme.example")
    user.refresh_from_db()
    assert not user.is_staff


def test_teammate_add_twice_to_one_team_is_refused(team_a):
    email = team_a.member.user.email
    with pytest.raises(ValidationError) as error:
        services.teammate_add(team=team_a.team, email=email)
    assert error.value.messages == [
        services.MSG_TEAMMATE_EXISTS.format(email=email, team=team_a.team.name)
    ]


# --- API tokens -----------------------------------------------------------------------------


def test_api_token_is_stored_only_as_a_digest(team_a):
    token, raw = services.api_token_create(team=team_a.team, name="engine")
    assert raw.startswith(services.TOKEN_PREFIX)
    assert token.prefix == raw[:12]
    stored = ApiToken.objects.values().get(pk=token.pk)
    assert raw not in [str(v) for v in stored.values()]
    assert token.digest != raw and len(token.digest) == 64


def test_api_token_authenticates_its_team_and_records_use(team_a):
    token, raw = services.api_token_create(team=team_a.team, name="engine")
    found = services.api_token_authenticate(raw)
    assert found == token
    assert found.team == team_a.team
    token.refresh_from_db()
    assert token.last_used_at is not None


@pytest.mark.parametrize("raw", ["", "isk_wrong", "isk_"])
def test_unknown_api_token_is_refused(team_a, raw):
    services.api_token_create(team=team_a.team, name="engine")
    assert services.api_token_authenticate(raw) is None


def test_revoked_api_token_is_refused(team_a):
    token, raw = services.api_token_create(team=team_a.team, name="engine")
    assert services.api_token_revoke(token=token) is True
    assert services.api_token_revoke(token=token) is False
    assert services.api_token_authenticate(raw) is None
    token.refresh_from_db()
    assert not token.is_active


def test_each_api_token_is_different(team_a):
    _, one = services.api_token_create(team=team_a.team, name="a")
    _, two = services.api_token_create(team=team_a.team, name="b")
    assert one != two


def test_archived_sequence_takes_no_new_contacts(team_a):
    from interseller.services import MSG_SEQUENCE_ARCHIVED

    sequence = SequenceFactory(team=team_a.team, owner=team_a.member, archived=True, title="Old")
    contact = ContactFactory(team=team_a.team, owner=team_a.member)
    with pytest.raises(ValidationError) as exc:
        services.contact_add_to_sequence(contact=contact, sequence=sequence)
    assert MSG_SEQUENCE_ARCHIVED.format(sequence="Old") in str(exc.value)
    assert not Enrollment.objects.filter(sequence=sequence).exists()
