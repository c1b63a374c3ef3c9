from __future__ import annotations

from dataclasses import dataclass

import pytest

from cats_sandbox import VARIANTS
from interseller.models import Membership, Team

from .factories import MembershipFactory, SequenceFactory, TeamFactory

pytest_plugins = ["tests.sandbox_plugin"]


@dataclass
class TeamGraph:
    team: Team
    owner: Membership
    manager: Membership
    member: Membership
    member2: Membership


def build_team(name: str) -> TeamGraph:
    team = TeamFactory(name=name)
    return TeamGraph(
        team=team,
        owner=MembershipFactory(team=team, role=Membership.Role.OWNER),
        manager=MembershipFactory(team=team, role=Membership.Role.MANAGER),
        member=MembershipFactory(team=team, role=Membership.Role.MEMBER),
        member2=MembershipFactory(team=team, role=Membership.Role.MEMBER),
    )


@pytest.fixture(params=sorted(VARIANTS))
def cats_variant(request) -> dict:
    """Each way the CATS API notes leave open, answered as documented and the other way
    (cats_sandbox.VARIANTS): tests that check CATS' state run against every one."""
    return dict(VARIANTS[request.param])


@pytest.fixture
def team_a(db) -> TeamGraph:
    return build_team("Acme Recruiting")


@pytest.fixture
def team_b(db) -> TeamGraph:
    return build_team("Bravo Talent")


@pytest.fixture
def sequence_a(team_a):
    return SequenceFactory(team=team_a.team, owner=team_a.member, title="Backend engineers")


@pytest.fixture
def login(client):
    """Log the test client in as a membership's user (or any user)."""

    def _login(who):
        user = getattr(who, "user", who)
        client.force_login(user)
        return client

    return _login
