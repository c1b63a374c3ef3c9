"""API tokens: stored as a digest, one team each, revocable (interseller.services.tokens)."""

from __future__ import annotations

import pytest

from interseller import services
from interseller.models import ApiToken

# --- API tokens -----------------------------------------------------------------------------


def test_api_token_is_stored_only_as_a_digest(team_a):
    token, raw = services.api_token_create(team=team_a.team, name="engine")
    assert raw.startswith(services.TOKEN_PREFIX)
    assert token.prefix == raw[:12]
    stored = ApiToken.objects.values().get(pk=token.pk)
    assert raw not in [str(v) for v in stored.values()]
    assert token.digest != raw and len(token.digest) == 64


def test_api_token_authenticates_its_team_and_records_use(team_a):
    token, raw = services.api_token_create(team=team_a.team, name="engine")
    found = services.api_token_authenticate(raw)
    assert found == token
    assert found.team == team_a.team
    token.refresh_from_db()
    assert token.last_used_at is not None


@pytest.mark.parametrize("raw", ["", "isk_wrong", "isk_"])
def test_unknown_api_token_is_refused(team_a, raw):
    services.api_token_create(team=team_a.team, name="engine")
    assert services.api_token_authenticate(raw) is None


def test_revoked_api_token_is_refused(team_a):
    token, raw = services.api_token_create(team=team_a.team, name="engine")
    assert services.api_token_revoke(token=token) is True
    assert services.api_token_revoke(token=token) is False
    assert services.api_token_authenticate(raw) is None
    token.refresh_from_db()
    assert not token.is_active


def test_each_api_token_is_different(team_a):
    _, one = services.api_token_create(team=team_a.team, name="a")
    _, two = services.api_token_create(team=team_a.team, name="b")
    assert one != two
