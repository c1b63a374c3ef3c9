"""Team A's API token, a poster that sends JSON with it, and an enrolled contact."""

from __future__ import annotations

import json

import pytest

from interseller import services
from tests.factories import ContactFactory


@pytest.fixture
def token_a(team_a) -> str:
    _, raw = services.api_token_create(team=team_a.team, name="engine")
    return raw


@pytest.fixture
def post(client, token_a):
    def _post(url, body, *, token=None, content_type="application/json", **extra):
        data = body if isinstance(body, (str, bytes)) else json.dumps(body)
        return client.post(
            url,
            data=data,
            content_type=content_type,
            headers={"Authorization": f"Bearer {token or token_a}"},
            **extra,
        )

    return _post


@pytest.fixture
def enrolled(team_a, sequence_a):
    contact = ContactFactory(team=team_a.team, owner=team_a.member, email="ada@prospect.example")
    return services.contact_add_to_sequence(contact=contact, sequence=sequence_a).enrollment
