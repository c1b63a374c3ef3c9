"""A contact of team A, and its enrollment in team A's sequence."""

from __future__ import annotations

import pytest

from interseller import services
from interseller.models import Contact, Enrollment
from tests.factories import ContactFactory


@pytest.fixture
def contact(team_a) -> Contact:
    return ContactFactory(team=team_a.team, owner=team_a.member, email="ada@prospect.example")


@pytest.fixture
def enrollment(contact, sequence_a) -> Enrollment:
    return services.contact_add_to_sequence(contact=contact, sequence=sequence_a).enrollment
