"""A site of the demo seed on the sandbox, and raw HTTP as its key."""

from __future__ import annotations

import pytest

from tests.support.sandbox import Api, SiteHandle


@pytest.fixture
def site(cats_sandbox) -> SiteHandle:
    return cats_sandbox.create_site()


@pytest.fixture
def api(cats_sandbox, site) -> Api:
    return Api(cats_sandbox.url, site.api_key)
