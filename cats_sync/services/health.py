"""Is our CATS sync healthy? The health page's answer, scoped like everything else (owners and
managers: their teams; members: their own), read from our tables only."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Max
from django.utils import timezone

from interseller.models import Enrollment, Membership, Sequence
from interseller.scoping import scoped_queryset

from .. import messages
from ..budget import BULK_RESERVE_FRACTION, budget_view
from ..models import (
    CatsAccount,
    CatsIncident,
    CatsJob,
    CatsRequest,
    CatsSite,
    EnrollmentSync,
    SequenceSync,
    SyncIssue,
    SyncTask,
)
from .reconcile import Bound, reconcile_bound
from .resync import REQUESTS_PER_CONTACT, resync_counts
from .webhooks import webhook_words

# What a waiting contact waits for, per sync mode that waits (the health page's words).
WAITS_FOR = {
    CatsAccount.SyncMode.ON_REPLY: (messages.BLOCK_WAITS_FOR_REPLY, "a reply"),
    CatsAccount.SyncMode.ON_INTEREST: (messages.BLOCK_WAITS_FOR_INTEREST, "an interested reply"),
}

BUCKET = timedelta(minutes=5)
HISTORY = timedelta(hours=24)

CONNECTION_WORDS = {
    CatsAccount.Status.CONNECTED: "Connected",
    CatsAccount.Status.INVALID: "Key refused by CATS: reconnect",
    CatsAccount.Status.DISCONNECTED: "Disconnected",
}
NEVER_CONNECTED = "Never connected"


@dataclass
class ConnectionRow:
    membership: Membership
    account: CatsAccount | None
    words: str
    ok: bool
    last_sync: datetime | None = None
    pending: int = 0
    paused: int = 0
    failed: int = 0
    # Not synced because the sync mode waits for a reply (or an interested one), and why.
    waiting: int = 0
    waiting_for: str = ""
    # How the connection hears of changes made in CATS (webhook, or reconciliation only).
    webhook: str = ""
    webhook_ok: bool = True

    @property
    def mode(self) -> str:
        return self.account.get_sync_mode_display() if self.account else "—"


@dataclass
class SequenceRow:
    sequence: Sequence
    enabled: bool
    job: str
    synced: int = 0
    pending: int = 0
    paused: int = 0
    failed: int = 0


@dataclass
class SiteRow:
    site: CatsSite
    used: int
    limit: int
    window_seconds: int
    bulk_left: int
    backlog: int
    drains_at: datetime | None
    buckets: list[int] = field(default_factory=list)
    in_outage: bool = False
    reconcile: Bound | None = None

    @property
    def chart_max(self) -> int:
        return max(self.buckets or [0]) or 1

    @property
    def bars(self) -> list[tuple[int, float, float, int]]:
        """(x, y, height, requests) of each 5-minute bar of a 288 × 60 chart."""
        top = self.chart_max
        return [(x, 60 - 60 * n / top, 60 * n / top, n) for x, n in enumerate(self.buckets) if n]


@dataclass
class ErrorGroup:
    code: str
    label: str
    count: int
    example: str


@dataclass
class Health:
    connections: list[ConnectionRow]
    sequences: list[SequenceRow]
    sites: list[SiteRow]
    errors: list[ErrorGroup]
    incidents: list[CatsIncident]
    site_url_missing: bool

    @property
    def problems(self) -> list[str]:
        """One line per thing to look at: the admin index's summary."""
        lines = [f"{row.membership}: {row.words}" for row in self.connections if not row.ok]
        lines += [f"{group.count} × {group.label}" for group in self.errors]
        lines += [f"{site.site}: CATS is not answering" for site in self.sites if site.in_outage]
        return lines


def health_for(request, *, summary: bool = False) -> Health:
    """The health page's data, scoped to the request's user. `summary`: only what the admin
    index's box shows (connections, errors, outages): no sequence table, no chart, no
    backlog or reconciliation figures, so the index stays fast."""
    memberships = list(scoped_queryset(request, Membership).order_by("team__name", "user__email"))
    accounts = {
        a.membership_id: a
        for a in CatsAccount.objects.filter(membership__in=memberships).select_related("site")
    }
    return Health(
        connections=_connections(memberships, accounts),
        sequences=[] if summary else _sequences(request),
        sites=_sites([a for a in accounts.values() if a.site_id], detail=not summary),
        errors=_errors(request),
        incidents=list(
            CatsIncident.objects.filter(
                account__in=accounts.values(), closed_at__isnull=True
            ).select_related("account__membership__user")
        ),
        site_url_missing=not settings.SITE_URL,
    )


def _connections(memberships, accounts) -> list[ConnectionRow]:
    counts = {
        (row["account_id"], row["state"]): row["n"]
        for row in SyncTask.objects.filter(account__in=accounts.values())
        .exclude(state__in=[SyncTask.State.DONE, SyncTask.State.RUNNING])
        .values("account_id", "state")
        .annotate(n=Count("pk"))
    }
    last = dict(
        EnrollmentSync.objects.filter(account__in=accounts.values())
        .values("account_id")
        .annotate(last=Max("synced_at"))
        .values_list("account_id", "last")
    )
    rows = []
    for membership in memberships:
        account = accounts.get(membership.pk)
        if account is None:
            rows.append(ConnectionRow(membership, None, NEVER_CONNECTED, ok=True))
            continue
        waiting, waiting_for = 0, ""
        if account.status == CatsAccount.Status.CONNECTED and account.sync_mode in WAITS_FOR:
            reason, waiting_for = WAITS_FOR[account.sync_mode]
            # One grouped query per member whose mode waits: the same count resync shows.
            waiting = resync_counts(
                enrollments=Enrollment.objects.filter(
                    sequence__owner=membership, sequence__archived=False
                )
            ).blocked.get(reason, 0)
        rows.append(
            ConnectionRow(
                membership,
                account,
                CONNECTION_WORDS[account.status],
                waiting=waiting,
                waiting_for=waiting_for,
                ok=account.status != CatsAccount.Status.INVALID,
                last_sync=last.get(account.pk),
                pending=counts.get((account.pk, SyncTask.State.PENDING), 0),
                paused=counts.get((account.pk, SyncTask.State.PAUSED), 0),
                failed=counts.get((account.pk, SyncTask.State.FAILED), 0),
                webhook=webhook_words(account),
                webhook_ok=account.webhook_id is not None or not account.is_connected,
            )
        )
    return rows


def _sequences(request) -> list[SequenceRow]:
    sequences = list(
        scoped_queryset(request, Sequence)
        .filter(archived=False)
        .select_related("owner__cats_account")
        .order_by("title")[:200]
    )
    ids = [s.pk for s in sequences]
    settings_ = {row.sequence_id: row for row in SequenceSync.objects.filter(sequence_id__in=ids)}
    synced = dict(
        Enrollment.objects.filter(sequence_id__in=ids, cats_sync__synced_at__isnull=False)
        .values("sequence_id")
        .annotate(n=Count("pk"))
        .values_list("sequence_id", "n")
    )
    tasks = Counter()
    for seq_id, state, n in (
        SyncTask.objects.filter(
            enrollment__sequence_id__in=ids,
            state__in=[SyncTask.State.PENDING, SyncTask.State.PAUSED, SyncTask.State.FAILED],
        )
        .values_list("enrollment__sequence_id", "state")
        .annotate(n=Count("pk"))
    ):
        tasks[(seq_id, state)] = n
    accounts = {s.pk: getattr(s.owner, "cats_account", None) for s in sequences}
    # A sequence without its own job order syncs to its owner's default: name that one too.
    job_ids = {r.job_id for r in settings_.values() if r.job_id}
    job_ids |= {a.default_job_id for a in accounts.values() if a and a.default_job_id}
    jobs = {(j.site_id, j.cats_id): str(j) for j in CatsJob.objects.filter(cats_id__in=job_ids)}
    rows = []
    for sequence in sequences:
        row = settings_.get(sequence.pk)
        account = accounts[sequence.pk]
        job = ""
        job_id = row.job_id if row and row.job_id else (account.default_job_id if account else None)
        if job_id:
            job = jobs.get((account.site_id if account else None, job_id), f"#{job_id}")
            if not (row and row.job_id):
                job += " (the owner's default)"
        rows.append(
            SequenceRow(
                sequence,
                enabled=row.enabled if row else True,
                job=job,
                synced=synced.get(sequence.pk, 0),
                pending=tasks[(sequence.pk, SyncTask.State.PENDING)],
                paused=tasks[(sequence.pk, SyncTask.State.PAUSED)],
                failed=tasks[(sequence.pk, SyncTask.State.FAILED)],
            )
        )
    return rows


def _sites(accounts, *, detail: bool = True) -> list[SiteRow]:
    now = timezone.now()
    rows = []
    for site in {a.site for a in accounts}:
        view = budget_view(site)
        reserve = int(view.limit * BULK_RESERVE_FRACTION)
        backlog, drains_at, buckets, reconcile = 0, None, [], None
        if detail:
            backlog = SyncTask.objects.filter(
                account__site=site, state=SyncTask.State.PENDING
            ).count()
            if backlog:
                seconds = view.bulk_seconds(backlog * REQUESTS_PER_CONTACT)
                drains_at = now + timedelta(seconds=seconds)
            start = now - HISTORY
            buckets = [0] * int(HISTORY / BUCKET)
            for at in CatsRequest.objects.filter(site=site, at__gt=start).values_list(
                "at", flat=True
            ):
                index = min(int((at - start) / BUCKET), len(buckets) - 1)
                buckets[index] += 1
            reconcile = reconcile_bound(site)
        rows.append(
            SiteRow(
                site=site,
                used=view.used,
                limit=view.limit,
                window_seconds=view.window_seconds,
                bulk_left=max(view.remaining - reserve, 0),
                backlog=backlog,
                drains_at=drains_at,
                buckets=buckets,
                in_outage=bool(site.outage_until and site.outage_until > now),
                reconcile=reconcile,
            )
        )
    return sorted(rows, key=lambda r: r.site.subdomain)


def _errors(request) -> list[ErrorGroup]:
    enrollments = scoped_queryset(request, Enrollment)
    issues = SyncIssue.objects.filter(enrollment_sync__enrollment__in=enrollments)
    labels = dict(EnrollmentSync.Error.choices)
    groups = []
    for row in issues.values("code").annotate(n=Count("pk")).order_by("-n"):
        example = (
            issues.filter(code=row["code"])
            .order_by("-last_seen_at")
            .values_list("message", flat=True)[:1]
        )
        groups.append(
            ErrorGroup(row["code"], labels.get(row["code"], row["code"]), row["n"], example[0])
        )
    return groups
