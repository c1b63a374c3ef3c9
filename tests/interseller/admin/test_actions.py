"""Admin actions on contacts and tokens, and adding teammates through the admin."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model

from interseller import services
from interseller.forms import MSG_ONLY_OWNERS_GRANT_OWNER
from interseller.models import ApiToken, Enrollment, Membership
from interseller.services import MSG_TEAMMATE_EXISTS
from tests.support.admin import url

pytestmark = pytest.mark.django_db


# --- contact actions ---------------------------------------------------------------------------


def test_add_to_sequence_action_shows_choice_then_reports_added_and_already_there(world, login):
    a = world["a"]
    client = login(a["graph"].owner)
    ids = [a["mine"].pk, a["theirs"].pk]
    page = client.post(url("contact"), {"action": "add_to_sequence", ACTION_CHECKBOX_NAME: ids})
    assert page.status_code == 200
    body = page.content.decode()
    assert "a member seq" in body and "b member seq" not in body
    done = client.post(
        url("contact"),
        {
            "action": "add_to_sequence",
            ACTION_CHECKBOX_NAME: ids,
            "apply": "1",
            "sequence": a["own_seq"].pk,
        },
        follow=True,
    )
    assert "Added 1 contact(s)" in done.content.decode()
    assert "1 already there" in done.content.decode()
    assert Enrollment.objects.filter(sequence=a["own_seq"]).count() == 2


def test_remove_from_sequence_action_removes_enrollments(world, login):
    a = world["a"]
    client = login(a["graph"].owner)
    ids = [a["mine"].pk]
    done = client.post(
        url("contact"),
        {
            "action": "remove_from_sequence",
            ACTION_CHECKBOX_NAME: ids,
            "apply": "1",
            "sequence": a["own_seq"].pk,
        },
        follow=True,
    )
    assert "Removed 1 contact(s)" in done.content.decode()
    assert not Enrollment.objects.filter(contact=a["mine"], sequence=a["own_seq"]).exists()


def test_add_to_sequence_refuses_another_teams_sequence(world, login):
    a, b = world["a"], world["b"]
    client = login(a["graph"].owner)
    response = client.post(
        url("contact"),
        {
            "action": "add_to_sequence",
            ACTION_CHECKBOX_NAME: [a["mine"].pk],
            "apply": "1",
            "sequence": b["own_seq"].pk,
        },
    )
    assert response.status_code == 200  # the form again, with an error
    assert not Enrollment.objects.filter(sequence=b["own_seq"], contact=a["mine"]).exists()


def test_token_added_in_admin_is_shown_once_and_stored_hashed(world, login):
    a = world["a"]
    client = login(a["graph"].owner)
    response = client.post(
        url("apitoken", "add"), {"team": a["graph"].team.pk, "name": "Engine 2"}, follow=True
    )
    body = response.content.decode()
    assert "will not be shown again" in body
    raw = body.split("will not be shown again: ")[1].split("<")[0].strip()
    token = ApiToken.objects.get(name="Engine 2")
    assert raw not in (token.digest, token.prefix)
    assert services.api_token_authenticate(raw) == token
    again = client.get(url("apitoken", "change", token.pk)).content.decode()
    assert raw not in again


def test_revoke_token_action(world, login):
    a = world["a"]
    client = login(a["graph"].owner)
    client.post(url("apitoken"), {"action": "revoke", ACTION_CHECKBOX_NAME: [a["token"].pk]})
    a["token"].refresh_from_db()
    assert a["token"].revoked_at is not None


# --- teammates ---------------------------------------------------------------------------------


def test_manager_adds_teammate_as_staff_with_password(world, login):
    a = world["a"]
    client = login(a["graph"].manager)
    response = client.post(
        url("membership", "add"),
        {
            "team": a["graph"].team.pk,
            "email": "Newbie@Acme.example",
            "first_name": "New",
            "last_name": "Bie",
            "role": "member",
            "password": "a-long-unusual-passphrase",
        },
    )
    assert response.status_code == 302
    user = get_user_model().objects.get(email="newbie@acme.example")
    assert user.is_staff and user.check_password("a-long-unusual-passphrase")
    assert Membership.objects.filter(team=a["graph"].team, user=user, role="member").exists()


def test_teammate_without_password_signs_in_by_sso_only(world, login):
    a = world["a"]
    client = login(a["graph"].owner)
    client.post(
        url("membership", "add"),
        {"team": a["graph"].team.pk, "email": "sso@acme.example", "role": "member"},
    )
    user = get_user_model().objects.get(email="sso@acme.example")
    assert user.is_staff and not user.has_usable_password()


def test_adding_existing_teammate_is_refused_on_the_form(world, login):
    a = world["a"]
    client = login(a["graph"].owner)
    email = a["graph"].member.user.email
    response = client.post(
        url("membership", "add"), {"team": a["graph"].team.pk, "email": email, "role": "member"}
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["email"] == [
        MSG_TEAMMATE_EXISTS.format(email=email, team=a["graph"].team)
    ]
    assert Membership.objects.filter(team=a["graph"].team, user__email=email).count() == 1


def test_manager_cannot_make_an_owner(world, login):
    a = world["a"]
    client = login(a["graph"].manager)
    response = client.post(
        url("membership", "change", a["graph"].member.pk), {"role": "owner", "integration": "none"}
    )
    assert response.status_code == 200
    assert MSG_ONLY_OWNERS_GRANT_OWNER in response.content.decode()
    a["graph"].member.refresh_from_db()
    assert a["graph"].member.role == "member"


def test_owner_can_promote_to_manager(world, login):
    a = world["a"]
    client = login(a["graph"].owner)
    response = client.post(
        url("membership", "change", a["graph"].member.pk),
        {"role": "manager", "integration": "none"},
    )
    assert response.status_code == 302
    a["graph"].member.refresh_from_db()
    assert a["graph"].member.role == "manager"
