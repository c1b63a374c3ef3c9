"""One site of the demo seed (the open questions answered as the notes do, unless a test
makes its own site) and a CatsClient for its key. The client is given the sandbox's URL, so the
Django setting is not touched."""

from __future__ import annotations

import pytest

from cats_sync.client import CatsClient
from tests.support.cats import make_client
from tests.support.sandbox import SiteHandle


@pytest.fixture
def site(cats_sandbox) -> SiteHandle:
    return cats_sandbox.create_site()


@pytest.fixture
def cats(cats_sandbox, site) -> CatsClient:
    return make_client(cats_sandbox, site.api_key)
