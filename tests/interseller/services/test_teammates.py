"""Adding teammates: staff users who sign in by SSO or a password, never promoted by it
(interseller.services.teammates)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from interseller import services
from interseller.models import Membership
from tests.factories import UserFactory

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
