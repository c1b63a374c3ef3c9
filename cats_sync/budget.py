"""One request budget per CATS site, shared by every worker and teammate on that site.

CATS allows about 500 requests an hour per account on a rolling window. We log each request
we send and count the window ourselves; CATS' X-Rate-Limit-Remaining header, when lower (the
key is used elsewhere too), wins. Live syncs may spend the whole budget; bulk backfill stops
short of a reserve so contacts being messaged right now are never starved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from .models import CatsRequest, CatsSite

BULK_RESERVE_FRACTION = 0.2


class BudgetExhausted(Exception):
    def __init__(self, until: datetime):
        super().__init__(f"CATS request budget spent until {until:%H:%M:%S}")
        self.until = until


@dataclass(frozen=True)
class BudgetView:
    limit: int
    used: int
    remaining: int
    window_seconds: int

    @property
    def per_hour(self) -> float:
        return self.limit * 3600 / self.window_seconds


def _remaining(site: CatsSite, now: datetime) -> tuple[int, int, datetime]:
    window_start = now - timedelta(seconds=site.rate_window_seconds)
    used = CatsRequest.objects.filter(site=site, at__gt=window_start).count()
    remaining = site.rate_limit - used
    if site.header_remaining is not None and site.header_seen_at:
        if site.header_seen_at > window_start:
            since = CatsRequest.objects.filter(site=site, at__gt=site.header_seen_at).count()
            remaining = min(remaining, site.header_remaining - since)
    return used, remaining, window_start


def budget_view(site: CatsSite) -> BudgetView:
    used, remaining, _ = _remaining(site, timezone.now())
    return BudgetView(site.rate_limit, used, max(remaining, 0), site.rate_window_seconds)


def budget_take(*, site_id: int, bulk: bool = False) -> None:
    """Spend one request, or raise BudgetExhausted with the time to come back."""
    now = timezone.now()
    with transaction.atomic():
        site = CatsSite.objects.select_for_update().get(pk=site_id)
        if site.blocked_until and site.blocked_until > now:
            raise BudgetExhausted(site.blocked_until)
        used, remaining, window_start = _remaining(site, now)
        reserve = int(site.rate_limit * BULK_RESERVE_FRACTION) if bulk else 0
        if remaining - reserve <= 0:
            # The window frees a slot when its oldest request ages out.
            oldest = (
                CatsRequest.objects.filter(site=site, at__gt=window_start)
                .order_by("at")
                .values_list("at", flat=True)
                .first()
            )
            until = (oldest or now) + timedelta(seconds=site.rate_window_seconds)
            if until <= now:
                until = now + timedelta(seconds=5)
            raise BudgetExhausted(until)
        CatsRequest.objects.create(site=site, at=now)


def budget_observe(*, site_id: int, limit: int | None, remaining: int | None) -> None:
    """Fold CATS' own count into ours after a response."""
    updates: dict = {}
    if limit:
        updates["rate_limit"] = limit
    if remaining is not None:
        updates["header_remaining"] = remaining
        updates["header_seen_at"] = timezone.now()
    if updates:
        CatsSite.objects.filter(pk=site_id).update(**updates)


def budget_block(*, site_id: int, seconds: int) -> datetime:
    """CATS said 429: nobody on this site sends anything until it said to come back."""
    until = timezone.now() + timedelta(seconds=max(seconds, 1))
    CatsSite.objects.filter(pk=site_id).update(blocked_until=until)
    return until


def budget_prune(*, older_than_seconds: int = 2 * 3600) -> int:
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    deleted, _ = CatsRequest.objects.filter(at__lt=cutoff).delete()
    return deleted
