"""`replay(*names)`: a CatsClient whose HTTP goes to the named recordings instead of CATS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cats_sync.client import CatsClient
from tests.support.recordings import CATS_URL, ReplayAdapter, replay_session


class Replayed(CatsClient):
    """The client as production builds it, plus what the replay saw it send."""

    adapter: ReplayAdapter


@pytest.fixture
def replay() -> Iterator:
    adapters: list[ReplayAdapter] = []

    def _replay(*names: str) -> Replayed:
        session, adapter = replay_session(list(names))
        adapters.append(adapter)
        client = Replayed("recorded-key", base_url=CATS_URL, session=session, retry_backoff=0)
        client.adapter = adapter
        return client

    yield _replay
    # A recording a test names but the client never asked for is a test that checks less
    # than it says.
    unused = [name for adapter in adapters for name in adapter.unused()]
    assert unused == [], f"recordings never requested: {unused}"
