"""The gate every request to a CATS site passes: its request budget, CATS' own 429 block, and
the outage back-off. Shared by every worker and teammate on the site, through its row.

Budget. CATS allows about 500 requests an hour per account on a rolling window. We log each
request we send and count the window ourselves; CATS' X-Rate-Limit-Remaining, when lower (the
key is used elsewhere too), wins while it is fresh. The limit comes from X-Rate-Limit-Limit;
the window is learned from how CATS' count drops as our own requests age out (and grows back
after a 429 our count did not expect), so an account with another window is used fully.
Live work may spend the whole budget; bulk work stops short of a reserve so contacts being
messaged right now are never starved. A 429
blocks the site for exactly its Retry-After; its (zero) remaining count is not learned, the
next successful answer tells the truth.

Outage. A failure (5xx, timeout, no connection) counts against the site, a success clears the
count. After OUTAGE_AFTER failures in a row nothing more is sent but one probe at a time, each
after a back-off that doubles (with jitter) up to CATS_OUTAGE_BACKOFF_CAP seconds; the probe
that gets an answer ends the outage and wakes the site's waiting work at once. Requests that
provably did nothing (no connection, 503) are not charged to the budget.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from . import messages, queue
from .errors import BudgetSpent, RateLimited, SiteOutage
from .models import CatsRequest, CatsSite

BULK_RESERVE_FRACTION = 0.2
# Failures in a row that make an outage; fewer are the task's own bad luck, retried.
OUTAGE_AFTER = 3


def outage_backoff_base() -> float:
    return float(getattr(settings, "CATS_OUTAGE_BACKOFF_BASE", 5))


def outage_backoff_cap() -> float:
    return float(getattr(settings, "CATS_OUTAGE_BACKOFF_CAP", 60))


def probe_lease() -> timedelta:
    """How long one probe may be in flight before another worker may probe instead."""
    return timedelta(seconds=settings.CATS_CONNECT_TIMEOUT + settings.CATS_READ_TIMEOUT + 5)


# Kept for callers that name the budget's wait.
BudgetExhausted = BudgetSpent


@dataclass(frozen=True)
class BudgetView:
    limit: int
    used: int
    remaining: int
    window_seconds: int

    @property
    def per_hour(self) -> float:
        return self.limit * 3600 / self.window_seconds

    def bulk_seconds(self, requests: float) -> float:
        """How long bulk work needs to send `requests` more on this site: what is left now
        beyond the live reserve goes at once, the rest at the pace bulk work may spend."""
        usable_now = max(self.remaining - int(self.limit * BULK_RESERVE_FRACTION), 0)
        needed = requests - usable_now
        if needed <= 0:
            return 0.0
        per_second = self.per_hour * (1 - BULK_RESERVE_FRACTION) / 3600
        return needed / max(per_second, 1e-6)


def _remaining(site: CatsSite, now: datetime) -> tuple[int, int, datetime]:
    window = timedelta(seconds=site.rate_window_seconds)
    window_start = now - window
    used = CatsRequest.objects.filter(site=site, at__gt=window_start).count()
    remaining = site.rate_limit - used
    seen = site.header_seen_at
    if site.header_remaining is not None and seen and seen > window_start:
        # CATS' count at `seen`, less what we sent since, plus what has aged out of its
        # window since (others' requests age out too, but we cannot see those: the header's
        # count only ever errs on the careful side).
        since = CatsRequest.objects.filter(site=site, at__gt=seen).count()
        aged = CatsRequest.objects.filter(
            site=site, at__gt=seen - window, at__lte=window_start
        ).count()
        remaining = min(remaining, site.header_remaining - since + aged)
    return used, remaining, window_start


def budget_view(site: CatsSite) -> BudgetView:
    used, remaining, _ = _remaining(site, timezone.now())
    return BudgetView(site.rate_limit, used, max(remaining, 0), site.rate_window_seconds)


def budget_take(*, site_id: int, bulk: bool = False, purpose: str = "") -> int:
    """Let one request through to the site, or raise a Wait saying when to come back.

    `purpose="reconcile"` is the safety net's read: bulk (never the live reserve) and at most
    its share of the window (`reconcile_allowance`). Returns the id of the logged request
    (see `budget_refund`).
    """
    if purpose == RECONCILE:
        bulk = True
    now = timezone.now()
    with transaction.atomic():
        site = CatsSite.objects.select_for_update().get(pk=site_id)
        if site.blocked_until and site.blocked_until > now:
            raise RateLimited(
                messages.WAIT_RATE.format(at=timezone.localtime(site.blocked_until)),
                until=site.blocked_until,
            )
        if site.outage_failures >= OUTAGE_AFTER:
            if site.outage_until and site.outage_until > now:
                raise SiteOutage(
                    messages.WAIT_OUTAGE.format(at=timezone.localtime(site.outage_until)),
                    until=site.outage_until,
                )
            if site.outage_probe_at and site.outage_probe_at > now - probe_lease():
                until = site.outage_probe_at + probe_lease()
                raise SiteOutage(
                    messages.WAIT_OUTAGE.format(at=timezone.localtime(until)), until=until
                )
            # This request is the probe: nobody else sends until it is answered.
            CatsSite.objects.filter(pk=site.pk).update(outage_probe_at=now)
        used, remaining, window_start = _remaining(site, now)
        reserve = int(site.rate_limit * BULK_RESERVE_FRACTION) if bulk else 0
        if remaining - reserve <= 0:
            until = _slot_frees_at(site, window_start, now, needed=reserve - remaining + 1)
            probe = None
            if remaining > 0 and purpose != RECONCILE:
                probe = _probe_at(site, window_start, now, reserve=reserve)
            if probe is None or probe > now:
                if probe is not None:
                    until = min(until, probe)
                raise BudgetSpent(
                    messages.WAIT_BUDGET.format(at=timezone.localtime(until)), until=until
                )
            # The probe: CATS' answer says whether our requests have aged out of its window.
            purpose = PROBE
        if purpose == RECONCILE and reconcile_allowance(site, now=now) <= 0:
            until = now + timedelta(seconds=60)
            raise BudgetSpent(
                messages.WAIT_BUDGET.format(at=timezone.localtime(until)), until=until
            )
        return CatsRequest.objects.create(site=site, at=now, purpose=purpose).pk


RECONCILE = "reconcile"
# A bulk request sent to learn CATS' count while ours said to wait (see _probe_at).
PROBE = "probe"


def reconcile_share() -> float:
    """The share of a site's budget the reconciliation may use (CATS_RECONCILE_SHARE)."""
    share = float(getattr(settings, "CATS_RECONCILE_SHARE", 0.1))
    return min(max(share, 0.0), 1.0 - BULK_RESERVE_FRACTION)


def reconcile_per_window(site: CatsSite) -> int:
    return int(site.rate_limit * reconcile_share())


def reconcile_allowance(site: CatsSite, *, now: datetime | None = None) -> int:
    """Reconciliation reads the site may still send in the current window."""
    now = now or timezone.now()
    start = now - timedelta(seconds=site.rate_window_seconds)
    spent = CatsRequest.objects.filter(site=site, at__gt=start, purpose=RECONCILE).count()
    return reconcile_per_window(site) - spent


# A wait longer than this (by the window we assume) is checked with CATS first: see _probe_at.
PROBE_MIN_SECONDS = 5
PROBE_GROWTH = 0.5


def _probe_at(
    site: CatsSite, window_start: datetime, now: datetime, *, reserve: int
) -> datetime | None:
    """When one request may go out to ask CATS' count, though ours says the bulk share is spent.

    The window is only an assumption (an hour until CATS' answers teach a shorter one), and
    nothing teaches it while nothing is sent: a burst that spends the share in a second would
    otherwise wait out the whole assumed window. So after a burst, one request (never past our
    count's limit: at most one of the live reserve, and only while it is there) goes out
    PROBE_MIN_SECONDS after our newest, then after growing gaps (half the age of the oldest
    request counted), until an answer shows our requests aging out (the window is learned
    from it) or the assumed window frees the slot anyway. Probes never take more than half the
    reserve in a window. None: no probe (nothing of ours to age out, or enough probes).
    """
    in_window = CatsRequest.objects.filter(site=site, at__gt=window_start)
    times = in_window.aggregate(
        oldest=Min("at"), newest=Max("at"), probes=Count("pk", filter=Q(purpose=PROBE))
    )
    oldest, newest = times["oldest"], times["newest"]
    if oldest is None or times["probes"] >= reserve // 2:
        return None
    gap = max(PROBE_MIN_SECONDS, (newest - oldest).total_seconds() * PROBE_GROWTH)
    return newest + timedelta(seconds=gap)


def _slot_frees_at(
    site: CatsSite, window_start: datetime, now: datetime, *, needed: int
) -> datetime:
    """When the rolling window has aged out enough requests to let `needed` more through."""
    ages = (
        CatsRequest.objects.filter(site=site, at__gt=window_start)
        .order_by("at")
        .values_list("at", flat=True)[max(needed - 1, 0) : max(needed, 1)]
    )
    oldest = next(iter(ages), None)
    until = (oldest or now) + timedelta(seconds=site.rate_window_seconds)
    return until if until > now else now + timedelta(seconds=1)


def budget_refund(*, request_id: int) -> None:
    """The request provably never reached CATS: it does not count."""
    CatsRequest.objects.filter(pk=request_id).delete()


def site_answered(*, site_id: int, status: int, limit: int | None, remaining: int | None) -> bool:
    """CATS answered (any HTTP answer but a 5xx). Learns the limit, the remaining count and the
    window from its headers, and ends an outage.

    Returns True when this answer ended an outage (the caller wakes the site's work).
    """
    updates: dict = {}
    if status == 429:
        _window_grow(site_id)
    else:
        if limit:
            updates["rate_limit"] = limit
        if remaining is not None:
            updates["header_remaining"] = remaining
            updates["header_seen_at"] = timezone.now()
            if limit:
                window = _window_learned(site_id, used=limit - remaining)
                if window is not None:
                    updates["rate_window_seconds"] = window
    ended = bool(
        CatsSite.objects.filter(pk=site_id, outage_failures__gt=0).update(
            outage_failures=0, outage_until=None, outage_probe_at=None, **updates
        )
    )
    if not ended and updates:
        CatsSite.objects.filter(pk=site_id).update(**updates)
    if "rate_window_seconds" in updates:
        # Work told to wait out the longer window we assumed may go sooner: it asks again.
        queue.site_wake(site_id=site_id, waiting_on=["budget"])
    return ended


# Our requests younger than this may still be in flight, not yet counted by CATS.
IN_FLIGHT_SECONDS = 5
WINDOW_FLOOR_SECONDS = 10
WINDOW_CEILING_SECONDS = 3600


def _window_learned(site_id: int, *, used: int) -> int | None:
    """A shorter window than we assume, if CATS counts fewer of our requests than our log.

    CATS says `used` requests count now. Were we the key's only user, those are our newest
    `used` requests; if our log holds more than that inside the window we assume, the window
    ends before the next older one. Others using the key only raise `used`, so this never
    shrinks the window too far; requests still in flight are left out of the reckoning.
    """
    site = CatsSite.objects.filter(pk=site_id).values("rate_window_seconds").first()
    if site is None:
        return None
    now = timezone.now()
    window = site["rate_window_seconds"]
    settled_before = now - timedelta(seconds=IN_FLIGHT_SECONDS)
    fresh = CatsRequest.objects.filter(site_id=site_id, at__gte=settled_before).count()
    counted = max(used - fresh, 0)
    settled = CatsRequest.objects.filter(
        site_id=site_id, at__lt=settled_before, at__gt=now - timedelta(seconds=window)
    ).order_by("-at")
    older = settled.values_list("at", flat=True)[counted : counted + 2]
    if len(older) < 2:
        return None  # our log agrees with CATS (or says too little to tell)
    aged_out = older[0]
    learned = max(int((now - aged_out).total_seconds()) + 1, WINDOW_FLOOR_SECONDS)
    return learned if learned < window else None


def _window_grow(site_id: int) -> None:
    """A 429 while our count said there was room: the window is longer than we assume."""
    site = CatsSite.objects.filter(pk=site_id).values("rate_window_seconds", "rate_limit").first()
    if site is None:
        return
    window = site["rate_window_seconds"]
    ours = CatsRequest.objects.filter(
        site_id=site_id, at__gt=timezone.now() - timedelta(seconds=window)
    ).count()
    # Far below the limit: not a request or two CATS counted that we did not (our own
    # key check, another user of the key), but a window longer than we assume.
    if ours < site["rate_limit"] // 2 and window < WINDOW_CEILING_SECONDS:
        CatsSite.objects.filter(pk=site_id).update(
            rate_window_seconds=min(window * 2, WINDOW_CEILING_SECONDS)
        )


def site_failed(*, site_id: int) -> bool:
    """CATS failed to answer. Returns True when the site is (now) in an outage."""
    with transaction.atomic():
        site = CatsSite.objects.select_for_update().get(pk=site_id)
        failures = site.outage_failures + 1
        updates: dict = {"outage_failures": failures, "outage_probe_at": None}
        if failures >= OUTAGE_AFTER:
            step = failures - OUTAGE_AFTER
            delay = min(outage_backoff_base() * 2**step, outage_backoff_cap())
            delay *= 0.5 + random.random() / 2  # workers of other sites must not stampede
            updates["outage_until"] = timezone.now() + timedelta(seconds=delay)
        CatsSite.objects.filter(pk=site_id).update(**updates)
    return failures >= OUTAGE_AFTER


def budget_block(*, site_id: int, seconds: int) -> datetime:
    """CATS said 429: nobody on this site sends anything until it said to come back."""
    until = timezone.now() + timedelta(seconds=max(seconds, 1))
    CatsSite.objects.filter(pk=site_id).update(blocked_until=until)
    return until


def budget_prune(*, older_than_seconds: int = 25 * 3600) -> int:
    """Forget requests older than the health page's day of history (and any window)."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    deleted, _ = CatsRequest.objects.filter(at__lt=cutoff).delete()
    return deleted
