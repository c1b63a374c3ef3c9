"""The safety net under webhooks: re-read the pipelines of active enrollments, longest-unknown
first (never one whose status we set or read in the last RECENT minutes), at a pace that uses
at most CATS_RECONCILE_SHARE of the site's budget (bulk priority, so never the live reserve).
A move a lost delivery never told us of is caught within `reconcile_bound`, which the health
page states.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import DateTimeField, F, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from interseller.models import Enrollment

from ..budget import RECONCILE, reconcile_allowance, reconcile_per_window
from ..client import CatsAuthError, CatsNotFound
from ..errors import CatsSyncError, KeyUnreadable, Wait
from ..models import CatsAccount, CatsIncident, CatsSite, EnrollmentSync, PipelineObservation
from .clients import cats_client_for
from .connection import cats_account_mark_invalid
from .incidents import incident_open
from .stops import pipeline_gone, status_observe

log = logging.getLogger(__name__)

# The sweeper runs every minute; each run reads at most a minute's share of the window.
TICK = timedelta(minutes=1)
# A pipeline whose status we set or read this lately is not read again: a read would tell
# nothing newer than we know, and would spend the budget right after each write.
RECENT = timedelta(minutes=5)
_NEVER = Value(datetime(1970, 1, 1, tzinfo=UTC), output_field=DateTimeField())


def reconcile_queryset(site: CatsSite):
    """The enrollments whose pipeline the safety net watches on this site."""
    return EnrollmentSync.objects.filter(
        site=site,
        pipeline_id__isnull=False,
        stopped_at__isnull=True,
        enrollment__state=Enrollment.State.ACTIVE,
        account__status=CatsAccount.Status.CONNECTED,
        account__site=site,
    )


def sites_to_reconcile() -> list[int]:
    """Sites with at least one pipeline to watch (the sweeper wakes only those)."""
    rows = EnrollmentSync.objects.filter(
        pipeline_id__isnull=False,
        stopped_at__isnull=True,
        enrollment__state=Enrollment.State.ACTIVE,
        account__status=CatsAccount.Status.CONNECTED,
        site_id=F("account__site_id"),
    )
    return sorted(set(rows.values_list("site_id", flat=True).distinct()))


def per_tick(site: CatsSite) -> int:
    per_window = reconcile_per_window(site)
    if per_window <= 0:
        return 0
    return max(1, math.ceil(per_window * TICK.total_seconds() / site.rate_window_seconds))


@dataclass(frozen=True)
class Bound:
    watched: int
    per_window: int
    window_seconds: int
    within: timedelta | None  # None: the share is 0, nothing is re-read

    @property
    def within_words(self) -> str:
        if self.within is None:
            return "never"
        minutes = math.ceil(self.within.total_seconds() / 60)
        if minutes < 120:
            return f"{minutes} minute{'s' if minutes != 1 else ''}"
        return f"{math.ceil(minutes / 60)} hours"


def reconcile_bound(site: CatsSite, watched: int | None = None) -> Bound:
    """How long a move missed by webhooks can go unseen, at most (budget permitting)."""
    if watched is None:
        watched = reconcile_queryset(site).count()
    per_window = reconcile_per_window(site)
    if per_window <= 0:
        return Bound(watched, 0, site.rate_window_seconds, None)
    # A full round of reads, at the slower of the two paces (a minute's reads per tick; the
    # share of the rolling window), plus the tick a move may just have missed.
    # A pipeline seen lately waits RECENT before it is read.
    by_share = math.ceil(watched * site.rate_window_seconds / per_window)
    by_tick = math.ceil(watched / per_tick(site)) * TICK.total_seconds()
    seconds = max(by_share, by_tick, RECENT.total_seconds()) + TICK.total_seconds()
    return Bound(watched, per_window, site.rate_window_seconds, timedelta(seconds=seconds))


def reconcile_site(*, site_id: int, limit: int | None = None) -> int:
    """One tick: read up to a minute's share of pipelines. Returns how many were read."""
    site = CatsSite.objects.filter(pk=site_id).first()
    if site is None:
        return 0
    take = min(per_tick(site) if limit is None else limit, reconcile_allowance(site))
    if take <= 0:
        return 0
    # Longest unknown first: since we last read it here, or set or read it while syncing.
    known = Greatest(Coalesce("reconciled_at", _NEVER), Coalesce("status_seen_at", _NEVER))
    rows = list(
        reconcile_queryset(site)
        .annotate(_known=known)
        .filter(_known__lt=timezone.now() - RECENT)
        .select_related("account__site")
        .order_by("_known", "pk")[:take]
    )
    clients: dict[int, object] = {}
    refused: set[int] = set()  # accounts whose key failed this tick: their rows wait
    read = 0
    for es in rows:
        account = es.account
        if account.pk in refused:
            continue
        try:
            client = clients.get(account.pk)
            if client is None:
                client = clients[account.pk] = cats_client_for(account, purpose=RECONCILE)
            try:
                pipeline = client.get_pipeline(es.pipeline_id) or {}
            except CatsNotFound:
                pipeline = None
        except Wait:
            break  # the share (or the budget) is spent: the next tick goes on
        except CatsAuthError:
            # The key is refused: the member hears of it (and the sync pauses) as if a sync
            # task had met it; reconciliation skips the account until they reconnect.
            cats_account_mark_invalid(account=account)
            refused.add(account.pk)
            continue
        except KeyUnreadable:
            incident_open(account=account, kind=CatsIncident.Kind.KEY_UNREADABLE)
            refused.add(account.pk)
            continue
        except CatsSyncError as exc:
            log.warning("Reconciliation could not read pipeline %s: %s", es.pipeline_id, exc)
            EnrollmentSync.objects.filter(pk=es.pk).update(reconciled_at=timezone.now())
            continue
        read += 1
        EnrollmentSync.objects.filter(pk=es.pk).update(reconciled_at=timezone.now())
        if pipeline is None:
            pipeline_gone(es, source=PipelineObservation.Source.RECONCILE, delivery=None)
            continue
        try:
            status_id = int(pipeline.get("status_id"))
        except (TypeError, ValueError):
            continue
        status_observe(es, status_id, source=PipelineObservation.Source.RECONCILE)
    return read
