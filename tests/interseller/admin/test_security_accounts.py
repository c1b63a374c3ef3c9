"""Who can change which user account: "Add teammate", role changes and removals.

Every test drives the admin over HTTP as the attacker would, then checks the victim's account
row and that the attacker's password does not open it.
"""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.test import Client

from interseller import services
from interseller.models import Membership
from tests.factories import PASSWORD, MembershipFactory, UserFactory
from tests.support.admin import url

pytestmark = pytest.mark.django_db

ATTACKER_PASSWORD = "chosen-by-the-attacker-91"


def account_state(user) -> tuple:
    user.refresh_from_db()
    return (
        user.password,
        user.first_name,
        user.last_name,
        user.email,
        user.is_staff,
        user.is_superuser,
        user.is_active,
    )


def add_teammate(client, team, email, password="", role="member", **names):
    return client.post(
        url("membership", "add"),
        {"team": team.pk, "email": email, "role": role, "password": password, **names},
    )


def can_sign_in(email: str, password: str) -> bool:
    return Client().login(username=email, password=password)


# --- the takeover ---------------------------------------------------------------------------


def test_manager_cannot_take_over_a_superuser_through_add_teammate(team_a, login):
    admin = UserFactory(username="root@corp.example", is_superuser=True, first_name="Root")
    before = account_state(admin)
    response = add_teammate(
        login(team_a.manager), team_a.team, "ROOT@corp.example", ATTACKER_PASSWORD
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["email"] == [services.MSG_TEAMMATE_PROTECTED.format(email="root@corp.example")]
    assert account_state(admin) == before
    assert not Membership.objects.filter(user=admin).exists()
    assert not can_sign_in("root@corp.example", ATTACKER_PASSWORD)
    assert can_sign_in("root@corp.example", PASSWORD)


def test_manager_cannot_take_over_another_teams_owner(team_a, team_b, login):
    victim = team_b.owner.user
    before = account_state(victim)
    response = add_teammate(
        login(team_a.manager), team_a.team, victim.email, ATTACKER_PASSWORD, first_name="Pwned"
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["email"] == [
        services.MSG_TEAMMATE_OTHER_TEAM.format(email=victim.email)
    ]
    assert account_state(victim) == before
    assert not Membership.objects.filter(team=team_a.team, user=victim).exists()
    assert not can_sign_in(victim.email, ATTACKER_PASSWORD)


def test_a_password_is_refused_for_an_existing_account_and_nothing_changes(team_a, login):
    loner = UserFactory(username="between.jobs@x.example")  # staff, in no team
    before = account_state(loner)
    response = add_teammate(login(team_a.owner), team_a.team, loner.email, ATTACKER_PASSWORD)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["password"] == [
        services.MSG_TEAMMATE_PASSWORD.format(email=loner.email)
    ]
    assert account_state(loner) == before
    assert not Membership.objects.filter(user=loner).exists()


def test_an_existing_account_in_no_team_is_linked_unchanged(team_a, login):
    loner = UserFactory(username="between.jobs@x.example", first_name="Ada")
    before = account_state(loner)
    response = add_teammate(
        login(team_a.manager), team_a.team, "Between.Jobs@x.example", first_name="Changed"
    )
    assert response.status_code == 302
    assert Membership.objects.filter(team=team_a.team, user=loner, role="member").exists()
    assert account_state(loner) == before
    assert can_sign_in(loner.email, PASSWORD)


def test_someone_in_a_team_the_adder_also_manages_can_be_linked(team_a, team_b, login):
    MembershipFactory(team=team_b.team, user=team_a.manager.user, role="manager")
    person = team_b.member.user
    before = account_state(person)
    response = add_teammate(login(team_a.manager), team_a.team, person.email)
    assert response.status_code == 302
    assert Membership.objects.filter(team=team_a.team, user=person).exists()
    assert account_state(person) == before


@pytest.mark.parametrize("flags", [{"is_active": False}, {"is_staff": False}])
def test_deactivated_or_non_staff_accounts_are_refused_not_promoted(team_a, login, flags):
    user = UserFactory(username="gone@x.example", **flags)
    before = account_state(user)
    response = add_teammate(login(team_a.owner), team_a.team, user.email)
    assert response.context["adminform"].form.errors["email"] == [
        services.MSG_TEAMMATE_INACTIVE.format(email=user.email)
    ]
    assert account_state(user) == before


def test_a_superuser_may_link_an_administrator_without_changing_it(team_a, login):
    acting = UserFactory(username="boss@corp.example", is_superuser=True)
    admin = UserFactory(username="ops@corp.example", is_superuser=True)
    before = account_state(admin)
    response = add_teammate(login(acting), team_a.team, admin.email)
    assert response.status_code == 302
    assert account_state(admin) == before


def test_email_shared_by_two_accounts_is_refused(team_a, login):
    UserFactory(username="one", email="twin@x.example")
    UserFactory(username="two", email="TWIN@x.example")
    response = add_teammate(login(team_a.owner), team_a.team, "twin@x.example")
    assert response.context["adminform"].form.errors["email"] == [
        services.MSG_TEAMMATE_AMBIGUOUS.format(email="twin@x.example")
    ]


def test_an_email_used_as_another_accounts_username_is_not_a_new_account(team_a, login):
    # A username equal to the email would collide on create; it is that account.
    other = UserFactory(username="clash@x.example", email="", is_superuser=True)
    before = account_state(other)
    response = add_teammate(login(team_a.owner), team_a.team, "clash@x.example", "pw-3xample-long")
    assert response.status_code == 200
    assert account_state(other) == before
    assert get_user_model().objects.filter(username__iexact="clash@x.example").count() == 1


def test_new_teammate_with_password_still_works(team_a, login):
    response = add_teammate(login(team_a.owner), team_a.team, "fresh@x.example", "pw-3xample-long")
    assert response.status_code == 302
    assert can_sign_in("fresh@x.example", "pw-3xample-long")


def test_service_refuses_the_takeover_whatever_the_caller(team_a, team_b):
    victim = team_b.owner.user
    before = account_state(victim)
    with pytest.raises(services.TeammateRefused):
        services.teammate_add(team=team_a.team, email=victim.email, password=ATTACKER_PASSWORD)
    assert account_state(victim) == before


# --- owners ---------------------------------------------------------------------------------


def test_manager_cannot_delete_an_owners_membership(team_a, login):
    MembershipFactory(team=team_a.team, role="owner")  # not the last owner: only the role counts
    client = login(team_a.manager)
    assert client.get(url("membership", "delete", team_a.owner.pk)).status_code == 403
    assert (
        client.post(url("membership", "delete", team_a.owner.pk), {"post": "yes"}).status_code
        == 403
    )
    response = client.post(
        url("membership"),
        {"action": "delete_selected", "post": "yes", ACTION_CHECKBOX_NAME: [team_a.owner.pk]},
    )
    assert response.status_code == 403
    assert Membership.objects.filter(pk=team_a.owner.pk).exists()


def test_manager_still_removes_a_member_and_the_account_stays(team_a, login):
    user = team_a.member2.user
    before = account_state(user)
    response = login(team_a.manager).post(
        url("membership", "delete", team_a.member2.pk), {"post": "yes"}
    )
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=team_a.member2.pk).exists()
    assert account_state(user) == before


def test_the_last_owner_cannot_be_removed_even_by_themselves(team_a, login):
    client = login(team_a.owner)
    page = client.get(url("membership", "delete", team_a.owner.pk))
    assert services.MSG_LAST_OWNER.format(team=team_a.team) in page.content.decode()
    client.post(url("membership", "delete", team_a.owner.pk), {"post": "yes"})
    assert Membership.objects.filter(pk=team_a.owner.pk).exists()


def test_removing_every_owner_at_once_is_refused(team_a, login):
    second = MembershipFactory(team=team_a.team, role="owner")
    client = login(UserFactory(username="su@x.example", is_superuser=True))
    client.post(
        url("membership"),
        {
            "action": "delete_selected",
            "post": "yes",
            ACTION_CHECKBOX_NAME: [team_a.owner.pk, second.pk],
        },
    )
    assert Membership.objects.filter(team=team_a.team, role="owner").count() == 2


def test_one_of_two_owners_can_leave(team_a, login):
    second = MembershipFactory(team=team_a.team, role="owner")
    response = login(team_a.owner).post(url("membership", "delete", second.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=second.pk).exists()


def test_the_last_owner_cannot_be_demoted(team_a, login):
    response = login(team_a.owner).post(
        url("membership", "change", team_a.owner.pk), {"role": "manager", "integration": "none"}
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["role"] == [
        services.MSG_LAST_OWNER.format(team=team_a.team)
    ]
    team_a.owner.refresh_from_db()
    assert team_a.owner.role == "owner"
    with pytest.raises(services.TeammateRefused):
        services.membership_role_change(membership=team_a.owner, role="member")


def test_manager_cannot_add_an_owner(team_a, login):
    response = add_teammate(login(team_a.manager), team_a.team, "boss2@x.example", role="owner")
    assert response.context["adminform"].form.errors["role"] == [
        services.MSG_ONLY_OWNERS_GRANT_OWNER
    ]
    assert not get_user_model().objects.filter(email="boss2@x.example").exists()
