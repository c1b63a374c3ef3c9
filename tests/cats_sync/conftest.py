"""The CATS sandbox with the app pointed at it, a site on it under each answer to the API
notes' open questions (`cats_variant`), and team A's member's sequence."""

from __future__ import annotations

import pytest

from tests.factories import SequenceFactory
from tests.support.sandbox import SandboxHelper, SiteHandle


@pytest.fixture
def sandbox(settings, cats_sandbox) -> SandboxHelper:
    settings.CATS_API_URL = cats_sandbox.url
    return cats_sandbox


@pytest.fixture
def site(sandbox, cats_variant) -> SiteHandle:
    """The demo seed's CATS site, run once per variant. A file that needs people already in
    CATS overrides this fixture with its own seed."""
    return sandbox.create_site(**cats_variant)


@pytest.fixture
def seq(team_a):
    return SequenceFactory(team=team_a.team, owner=team_a.member, title="Backend engineers")
