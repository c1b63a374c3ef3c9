"""Factories for the team / role / sequence graph."""

from dataclasses import dataclass

import factory
from django.contrib.auth import get_user_model

from interseller.models import Contact, Group, Membership, Sequence, Team

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}@example.com")
    email = factory.SelfAttribute("username")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    is_staff = True
    password = factory.django.Password(PASSWORD)


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    team = factory.SubFactory(TeamFactory)
    role = Membership.Role.MEMBER


class GroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Group

    team = factory.SubFactory(TeamFactory)
    name = factory.Sequence(lambda n: f"Group {n}")


class SequenceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Sequence

    owner = factory.SubFactory(MembershipFactory)
    team = factory.SelfAttribute("owner.team")
    title = factory.Sequence(lambda n: f"Sequence {n}")


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    owner = factory.SubFactory(MembershipFactory)
    team = factory.SelfAttribute("owner.team")
    email = factory.Sequence(lambda n: f"contact{n}@prospect.example")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    company = factory.Faker("company")
    title = "Engineer"


@dataclass
class TeamGraph:
    team: Team
    owner: Membership
    manager: Membership
    member: Membership
    member2: Membership


def build_team(name: str) -> TeamGraph:
    """A team with an owner, a manager and two members."""
    team = TeamFactory(name=name)
    return TeamGraph(
        team=team,
        owner=MembershipFactory(team=team, role=Membership.Role.OWNER),
        manager=MembershipFactory(team=team, role=Membership.Role.MANAGER),
        member=MembershipFactory(team=team, role=Membership.Role.MEMBER),
        member2=MembershipFactory(team=team, role=Membership.Role.MEMBER),
    )
