"""POST /api/v1/contacts: creating and updating contacts, and adding them to a sequence."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from interseller import api, services
from interseller.models import Contact, Enrollment
from interseller.signals import contact_added_to_sequence
from tests.factories import ContactFactory, SequenceFactory
from tests.support.api import CONTACTS

# --- POST /api/v1/contacts ------------------------------------------------------------------


def test_new_contact_is_created_with_201_and_normalised_email(post, team_a):
    response = post(
        CONTACTS,
        {"email": "  Ada@Prospect.Example ", "first_name": "Ada", "company": "Analytical"},
    )
    assert response.status_code == 201
    body = response.json()
    contact = Contact.objects.get()
    assert body["id"] == contact.pk
    assert body["email"] == contact.email == "ada@prospect.example"
    assert body["first_name"] == "Ada"
    assert body["status"] == "created"
    assert "enrollment" not in body
    # Without a sequence, the team's first owner owns the contact.
    assert contact.owner == team_a.owner
    assert contact.team == team_a.team


def test_existing_contact_is_updated_with_200_and_blanks_do_not_erase(post, team_a):
    ContactFactory(
        team=team_a.team, owner=team_a.member, email="ada@prospect.example", phone="555-0100"
    )
    response = post(CONTACTS, {"email": "ADA@prospect.example", "phone": "", "company": "New Co"})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "updated"
    assert body["phone"] == "555-0100"
    assert body["company"] == "New Co"
    assert Contact.objects.count() == 1


def test_contact_added_to_sequence_is_owned_by_the_sequence_owner(post, team_a, sequence_a):
    response = post(CONTACTS, {"email": "ada@prospect.example", "sequence_id": sequence_a.pk})
    assert response.status_code == 201
    enrollment = Enrollment.objects.get()
    assert response.json()["enrollment"] == {
        "id": enrollment.pk,
        "sequence_id": sequence_a.pk,
        "state": "active",
        "created": True,
    }
    assert enrollment.contact.owner == sequence_a.owner


def test_adding_an_enrolled_contact_again_reports_the_existing_enrollment(
    post, sequence_a, enrolled
):
    response = post(CONTACTS, {"email": "ada@prospect.example", "sequence_id": sequence_a.pk})
    assert response.status_code == 200
    assert response.json()["enrollment"]["created"] is False
    assert response.json()["enrollment"]["id"] == enrolled.pk
    assert Enrollment.objects.count() == 1


def test_owner_email_picks_a_team_member(post, team_a):
    response = post(
        CONTACTS,
        {"email": "ada@prospect.example", "owner_email": team_a.member2.user.email.upper()},
    )
    assert response.status_code == 201
    assert Contact.objects.get().owner == team_a.member2
    assert response.json()["owner_email"] == team_a.member2.user.email


def test_owner_email_of_another_team_is_400(post, team_a, team_b):
    response = post(
        CONTACTS, {"email": "ada@prospect.example", "owner_email": team_b.owner.user.email}
    )
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["owner_email"]
    assert not Contact.objects.exists()


def test_sequence_of_another_team_is_404_and_stores_nothing(post, team_a, team_b):
    other = SequenceFactory(team=team_b.team, owner=team_b.owner)
    response = post(CONTACTS, {"email": "ada@prospect.example", "sequence_id": other.pk})
    assert response.status_code == 404
    assert response.json() == {"errors": {"sequence_id": [api.MSG_NO_SEQUENCE]}}
    assert not Contact.objects.exists()


def test_unknown_sequence_is_404(post, team_a):
    response = post(CONTACTS, {"email": "ada@prospect.example", "sequence_id": 999999})
    assert response.status_code == 404


def test_contact_is_not_kept_when_adding_it_to_the_sequence_fails(post, team_a, sequence_a):
    # An integration refusing the enrollment (its receiver runs inside the transaction) must
    # take the contact created a moment earlier in the same request down with it.
    def refuse(sender, enrollment, **kwargs):
        raise ValidationError("The ATS refused this candidate.")

    contact_added_to_sequence.connect(refuse, dispatch_uid="test-refuse")
    try:
        response = post(CONTACTS, {"email": "ada@prospect.example", "sequence_id": sequence_a.pk})
    finally:
        contact_added_to_sequence.disconnect(dispatch_uid="test-refuse")
    assert response.status_code == 400
    assert response.json() == {"errors": {"email": ["The ATS refused this candidate."]}}
    assert not Contact.objects.exists()
    assert not Enrollment.objects.exists()


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "email", api.MSG_REQUIRED),
        ({"email": None}, "email", api.MSG_REQUIRED),
        ({"email": "   "}, "email", api.MSG_BLANK),
        ({"email": 42}, "email", "Must be a string."),
        ({"email": "not-an-email"}, "email", "'not-an-email' is not a valid email address."),
        ({"email": "a@b.example", "nickname": "x"}, "nickname", api.MSG_UNKNOWN_FIELD),
        ({"email": "a@b.example", "sequence_id": "1"}, "sequence_id", "Must be an integer."),
        ({"email": "a@b.example", "sequence_id": -(2**70)}, "sequence_id", api.MSG_ID_RANGE),
        ({"email": "a@b.example", "sequence_id": True}, "sequence_id", "Must be an integer."),
        ({"email": "a@b.example", "first_name": ["Ada"]}, "first_name", "Must be a string."),
        ({"email": "a@b.example", "linkedin_url": "nope"}, "linkedin_url", "Enter a valid URL."),
        (
            {"email": "a@b.example", "first_name": "x" * 151},
            "first_name",
            "Ensure this value has at most 150 characters (it has 151).",
        ),
    ],
)
def test_invalid_contact_fields_are_400_per_field(post, team_a, body, field, message):
    response = post(CONTACTS, body)
    assert response.status_code == 400
    assert response.json() == {"errors": {field: [message]}}
    assert not Contact.objects.exists()


def test_all_field_errors_are_reported_together(post, team_a):
    response = post(CONTACTS, {"first_name": 1, "extra": True})
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"email", "first_name", "extra"}


def test_contacts_are_scoped_to_the_tokens_team(client, team_a, team_b):
    _, raw_a = services.api_token_create(team=team_a.team, name="a")
    _, raw_b = services.api_token_create(team=team_b.team, name="b")
    for raw in (raw_a, raw_b):
        response = client.post(
            CONTACTS,
            data={"email": "shared@prospect.example"},
            content_type="application/json",
            headers={"Authorization": f"Bearer {raw}"},
        )
        assert response.status_code == 201
    assert {c.team for c in Contact.objects.all()} == {team_a.team, team_b.team}
