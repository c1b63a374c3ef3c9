"""Fixtures for every test: two teams, a sequence, signing in, and the CATS sandbox (the
plugin tests/support/sandbox.py) with each way the CATS API notes leave open."""

from __future__ import annotations

import pytest

from cats_sandbox import VARIANTS
from tests.factories import SequenceFactory, TeamGraph, build_team

# Only the root conftest may name plugins (pytest refuses them in nested ones).
pytest_plugins = ["tests.support.sandbox"]


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
