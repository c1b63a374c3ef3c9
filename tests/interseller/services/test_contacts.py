"""Contacts: one per email and team, created, updated or unchanged, and put on sequences
(interseller.services.contacts)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from interseller import services
from interseller.models import Contact, Enrollment
from interseller.signals import contact_added_to_sequence, contacts_added_to_sequence
from tests.factories import ContactFactory, SequenceFactory
from tests.support.domain import received

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


def test_archived_sequence_takes_no_new_contacts(team_a):
    from interseller.services import MSG_SEQUENCE_ARCHIVED

    sequence = SequenceFactory(team=team_a.team, owner=team_a.member, archived=True, title="Old")
    contact = ContactFactory(team=team_a.team, owner=team_a.member)
    with pytest.raises(ValidationError) as exc:
        services.contact_add_to_sequence(contact=contact, sequence=sequence)
    assert MSG_SEQUENCE_ARCHIVED.format(sequence="Old") in str(exc.value)
    assert not Enrollment.objects.filter(sequence=sequence).exists()


# --- many at once (the import) ----------------------------------------------------------------
def _rows(*emails: str, company: str = "Acme") -> list[tuple[str, dict[str, str]]]:
    return [(e, {"company": company, "phone": ""}) for e in emails]


def test_upsert_many_counts_like_one_at_a_time_and_signals_once(team_a, sequence_a, enrollment):
    ContactFactory(team=team_a.team, owner=team_a.owner, email="same@x.example", company="Acme")
    changed = ContactFactory(
        team=team_a.team, owner=team_a.owner, email="moved@x.example", company="Old", phone="1"
    )
    with received(contacts_added_to_sequence) as sent:
        result = services.contacts_upsert_many(
            team=team_a.team,
            owner=team_a.member,
            rows=_rows(
                "new@x.example", "same@x.example", "moved@x.example", enrollment.contact.email
            ),
            sequence=sequence_a,
            added_by=team_a.owner,
        )
    assert (result.created, result.updated, result.unchanged) == (1, 2, 1)
    assert (result.added_to_sequence, result.already_in_sequence) == (3, 1)
    changed.refresh_from_db()
    assert (changed.company, changed.phone, changed.owner) == ("Acme", "1", team_a.owner)
    assert Contact.objects.get(email="new@x.example").owner == team_a.member
    [call] = sent
    assert sorted(e.contact.email for e in call["enrollments"]) == [
        "moved@x.example",
        "new@x.example",
        "same@x.example",
    ]
    assert call["added_by"] == team_a.owner


def test_upsert_many_refuses_a_teammates_contact_for_a_member(team_a):
    ContactFactory(team=team_a.team, owner=team_a.member2, email="theirs@x.example")
    with pytest.raises(services.TeammatesContact) as caught:
        services.contacts_upsert_many(
            team=team_a.team,
            owner=team_a.member,
            rows=_rows("mine@x.example", "theirs@x.example"),
            only_own=team_a.member,
        )
    assert caught.value.email == "theirs@x.example"


def test_upsert_many_falls_back_to_one_at_a_time_when_a_contact_appeared(
    team_a, sequence_a, monkeypatch
):
    def lost_race(objs, *args, **kwargs):
        raise IntegrityError("contact_team_email_unique")

    monkeypatch.setattr(Contact.objects, "bulk_create", lost_race)
    result = services.contacts_upsert_many(
        team=team_a.team,
        owner=team_a.member,
        rows=_rows("a@x.example", "b@x.example"),
        sequence=sequence_a,
    )
    assert (result.created, result.added_to_sequence) == (2, 2)
    assert Enrollment.objects.filter(sequence=sequence_a).count() == 2


def test_a_teammates_contact_that_appears_during_a_members_import_is_never_updated(
    team_a, sequence_a, monkeypatch
):
    """The race the fallback exists for: the bulk insert loses to a teammate's new contact."""
    from interseller.services import contacts as contacts_service

    def lost_race(objs, *args, **kwargs):
        raise IntegrityError("contact_team_email_unique")

    real_upsert = contacts_service.contact_upsert

    def teammate_first(**kwargs):
        if kwargs["email"] == "b@x.example":  # the teammate saved it a moment earlier
            Contact.objects.get_or_create(
                team=team_a.team,
                email="b@x.example",
                defaults={"owner": team_a.member2, "company": "Theirs"},
            )
        return real_upsert(**kwargs)

    monkeypatch.setattr(Contact.objects, "bulk_create", lost_race)
    monkeypatch.setattr(contacts_service, "contact_upsert", teammate_first)
    with pytest.raises(services.TeammatesContact) as caught:
        services.contacts_upsert_many(
            team=team_a.team,
            owner=team_a.member,
            rows=_rows("a@x.example", "b@x.example"),
            sequence=sequence_a,
            only_own=team_a.member,
        )
    # Refused (the import's transaction undoes its chunk), never updated over the teammate.
    assert caught.value.email == "b@x.example"
