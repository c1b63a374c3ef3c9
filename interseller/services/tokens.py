"""API tokens of the events API: shown once, stored as a SHA-256 digest."""

from __future__ import annotations

import hashlib
import secrets

from django.db import transaction
from django.utils import timezone

from ..models import ApiToken, Team


def _token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


TOKEN_PREFIX = "isk_"


@transaction.atomic
def api_token_create(*, team: Team, name: str, created_by=None) -> tuple[ApiToken, str]:
    """Returns the token row and the raw secret, which is never stored and shown only once."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        team=team, name=name, prefix=raw[:12], digest=_token_digest(raw), created_by=created_by
    )
    return token, raw


def api_token_authenticate(raw: str) -> ApiToken | None:
    if not raw:
        return None
    token = (
        ApiToken.objects.select_related("team")
        .filter(digest=_token_digest(raw), revoked_at__isnull=True)
        .first()
    )
    if token is not None:
        now = timezone.now()
        # Writing on every request would serialise API traffic on SQLite; a minute is enough.
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def api_token_revoke(*, token: ApiToken) -> bool:
    if token.revoked_at:
        return False
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    return True
