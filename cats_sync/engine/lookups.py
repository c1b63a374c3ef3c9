"""Looking emails up in CATS: many at once where we can, whatever case CATS stores.

A batch of sync tasks shares one search per site (EMAIL_CHUNK emails a request). How the
account's search treats case is undocumented, so it is probed once per site, on connecting
(`services.metadata.search_mode`): filters when they find any case, a free-text search per
email when they do not. Rows are always compared here, case-insensitively.
"""

from __future__ import annotations

from ..client import CatsClient
from ..errors import Wait
from ..models import CatsSite
from ..services.metadata import search_mode


class Lookups:
    """Search results gathered for a batch: {site id: {email: [rows]}}, plus the waits a
    batched search hit, so the batch's tasks wait too instead of each asking alone."""

    def __init__(self) -> None:
        self.rows: dict[int, dict[str, list[dict]]] = {}
        self.waits: dict[int, Wait] = {}

    def prefetch(self, *, site: CatsSite, client: CatsClient, emails: list[str]) -> None:
        if not emails:
            return
        try:
            how = search_mode(site, client)
            found = client.find_candidates_by_emails(emails, how=how)
        except Wait as exc:
            self.waits[site.pk] = exc
            return
        self.rows.setdefault(site.pk, {}).update(found)

    def wait_for(self, site: CatsSite) -> Wait | None:
        return self.waits.get(site.pk)

    def cached(self, site: CatsSite, email: str) -> list[dict] | None:
        return self.rows.get(site.pk, {}).get(email.lower())

    def find(
        self, *, site: CatsSite, client: CatsClient, email: str, fresh: bool = False
    ) -> list[dict]:
        """Rows of candidates holding this email; `fresh` asks CATS even if the batch knew."""
        if not fresh:
            rows = self.cached(site, email)
            if rows is not None:
                return rows
        how = search_mode(site, client)
        rows = client.find_candidates_by_email(email, how=how)
        self.rows.setdefault(site.pk, {})[email.lower()] = rows
        return rows


def first_id(rows: list[dict]) -> int | None:
    ids = sorted(int(r["id"]) for r in rows if str(r.get("id", "")).isdigit())
    return ids[0] if ids else None
