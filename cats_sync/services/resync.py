"""Resync to CATS: backfill contacts that never synced, as one run with progress.

The plan is computed from our own tables (no CATS request); the run ends when its last task
ends (the engine calls `resync_run_close_if_done`), never because someone opened its page.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import BooleanField, Count, Exists, ExpressionWrapper, F, Max, OuterRef, Q
from django.utils import timezone

from interseller.models import EmailEvent, Enrollment

from .. import messages, queue
from ..budget import budget_view, outage_backoff_cap
from ..models import CatsAccount, CatsSite, EnrollmentSync, ResyncRun, SequenceSync, SyncTask
from .outbox import enrollment_syncs_through_owners

REQUESTS_PER_CONTACT = 2.1  # create + pipeline, plus a share of a batched lookup
# How long the engine retries one contact's isolated CATS failures before it is shown as
# failed (with Retry): the bound a run's page states.
RETRY_WINDOW_MINUTES = 15


@dataclass
class ResyncPlan:
    to_sync: list[int] = field(default_factory=list)  # enrollment ids
    skipped: int = 0  # already synced
    blocked: dict[str, int] = field(default_factory=dict)  # reason -> count
    will_sync: int = 0  # resync_counts only: how many would sync

    @property
    def sync_count(self) -> int:
        return len(self.to_sync) or self.will_sync

    @property
    def blocked_total(self) -> int:
        return sum(self.blocked.values())


def resync_plan(*, enrollments) -> ResyncPlan:
    """What a resync would do, computed locally: no CATS request is spent."""
    plan = ResyncPlan()
    rows = list(
        enrollments.order_by().values_list(
            "id", "sequence_id", "sequence__owner_id", "responded_at"
        )
    )
    ids = [r[0] for r in rows]
    captured: dict[int, tuple] = {}
    interested: set[int] = set()
    for start in range(0, len(ids), 5000):
        captured.update(
            {
                enrollment_id: (synced_at, enabled)
                for enrollment_id, synced_at, enabled in EnrollmentSync.objects.filter(
                    enrollment_id__in=ids[start : start + 5000]
                ).values_list("enrollment_id", "synced_at", "sync_enabled")
            }
        )
        interested.update(
            interested_replies()
            .filter(enrollment_id__in=ids[start : start + 5000])
            .values_list("enrollment_id", flat=True)
        )
    seq_ids = {r[1] for r in rows}
    owner_ids = {r[2] for r in rows}
    seq_enabled = dict(
        SequenceSync.objects.filter(sequence_id__in=seq_ids).values_list("sequence_id", "enabled")
    )
    accounts = {a.membership_id: a for a in CatsAccount.objects.filter(membership_id__in=owner_ids)}
    for enrollment_id, seq_id, owner_id, responded_at in rows:
        synced_at, enabled = captured.get(enrollment_id, (None, None))
        if synced_at:
            plan.skipped += 1
            continue
        account = accounts.get(owner_id)
        if enabled is None:
            enabled = seq_enabled.get(seq_id, True)
        reason = _blocked_reason(
            status=account.status if account else None,
            mode=account.sync_mode if account else None,
            enabled=enabled,
            replied=responded_at is not None,
            interested=enrollment_id in interested,
        )
        if reason:
            plan.blocked[reason] = plan.blocked.get(reason, 0) + 1
        else:
            plan.to_sync.append(enrollment_id)
    return plan


# Runs up to this many contacts are queued inside the request; bigger ones by a worker.
RESYNC_INLINE_MAX = 500


def resync_counts(*, enrollments) -> ResyncPlan:
    """What a resync would do, as counts only (`to_sync` stays empty; `will_sync` says how
    many): one grouped query, so the confirmation page of 100,000 contacts is quick."""
    rows = (
        enrollments.order_by()
        .annotate(
            _synced=ExpressionWrapper(
                Q(cats_sync__synced_at__isnull=False), output_field=BooleanField()
            ),
            _replied=ExpressionWrapper(Q(responded_at__isnull=False), output_field=BooleanField()),
            _interested=Exists(interested_replies().filter(enrollment=OuterRef("pk"))),
        )
        .values(
            "_synced",
            "_replied",
            "_interested",
            "cats_sync__sync_enabled",
            "sequence__cats_sync__enabled",
            "sequence__owner__cats_account__status",
            "sequence__owner__cats_account__sync_mode",
        )
        .annotate(n=Count("pk"))
    )
    plan = ResyncPlan()
    for row in rows:
        n = row["n"]
        if row["_synced"]:
            plan.skipped += n
            continue
        enabled = row["cats_sync__sync_enabled"]
        if enabled is None:
            enabled = row["sequence__cats_sync__enabled"]
        reason = _blocked_reason(
            status=row["sequence__owner__cats_account__status"],
            mode=row["sequence__owner__cats_account__sync_mode"],
            enabled=True if enabled is None else enabled,
            replied=row["_replied"],
            interested=row["_interested"],
        )
        if reason:
            plan.blocked[reason] = plan.blocked.get(reason, 0) + n
        else:
            plan.will_sync += n
    return plan


def interested_replies():
    """Replies the outreach engine marked interested: what syncs a contact in mode "with
    interest" (any of them, not only the latest sentiment)."""
    return EmailEvent.objects.filter(
        kind=EmailEvent.Kind.REPLY_RECEIVED, sentiment=Enrollment.Sentiment.INTERESTED
    )


def _blocked_reason(
    *, status: str | None, mode: str | None, enabled: bool, replied: bool, interested: bool
):
    if status is None or status == CatsAccount.Status.DISCONNECTED:
        return messages.BLOCK_NO_CONNECTION
    if status == CatsAccount.Status.INVALID:
        return messages.BLOCK_INVALID
    if not enabled:
        return messages.BLOCK_SEQUENCE_OFF
    if mode == CatsAccount.SyncMode.OFF:
        return messages.BLOCK_MODE_OFF
    if mode == CatsAccount.SyncMode.ON_REPLY and not replied:
        # Their reply syncs them, as it would have without the resync.
        return messages.BLOCK_WAITS_FOR_REPLY
    if mode == CatsAccount.SyncMode.ON_INTEREST and not interested:
        # An interested reply syncs them, with everything before it backfilled.
        return messages.BLOCK_WAITS_FOR_INTEREST
    return None


@transaction.atomic
def resync_start(*, enrollments, started_by, team, description: str) -> ResyncRun:
    """Resync every never-synced, unblocked enrollment of the selection, as one run with
    progress. Up to RESYNC_INLINE_MAX contacts are queued at once; a bigger run is written
    down (its enrollment ids) and planned by a worker, so starting it is one short request."""
    ids = list(enrollments.order_by("pk").values_list("pk", flat=True))
    run = ResyncRun.objects.create(started_by=started_by, team=team, description=description[:255])
    return run_begin(run, ids, lambda chunk: resync_plan_chunk(run, chunk, bulk=len(chunk) > 1))


def run_begin(run: ResyncRun, ids: list[int], plan_inline) -> ResyncRun:
    """A new run of `ids`: up to RESYNC_INLINE_MAX planned here by `plan_inline(ids)`; a
    bigger one written down (its ids) for a worker to plan in chunks (services.planning)."""
    if len(ids) <= RESYNC_INLINE_MAX:
        plan_inline(ids)
        plan_finish(run)
        run.refresh_from_db()
        return run
    ResyncRun.objects.filter(pk=run.pk).update(state=ResyncRun.State.PLANNING, selection=ids)
    run.state, run.selection = ResyncRun.State.PLANNING, ids
    transaction.on_commit(lambda: queue.enqueue_call("cats_sync.tasks.resync_plan_run", run.pk))
    return run


def plan_finish(run: ResyncRun) -> None:
    run.refresh_from_db(fields=["total", "state"])
    state = ResyncRun.State.RUNNING if run.total else ResyncRun.State.DONE
    ResyncRun.objects.filter(pk=run.pk).update(
        state=state,
        selection=[],
        finished_at=None if run.total else timezone.now(),
    )
    run.state = state
    if run.total:
        # Tasks may all have ended while the run was still being planned.
        transaction.on_commit(lambda: resync_run_close_if_done(run_id=run.pk))


def resync_plan_chunk(run: ResyncRun, enrollment_ids: list[int], *, bulk: bool) -> None:
    """Queue the unblocked never-synced enrollments of these ids for the run, and count."""
    plan = resync_plan(enrollments=Enrollment.objects.filter(pk__in=enrollment_ids))
    run_tasks_add(
        run,
        enrollment_syncs_through_owners(plan.to_sync),
        kind=SyncTask.Kind.SYNC,
        priority=SyncTask.Priority.BULK if bulk else SyncTask.Priority.LIVE,
        total=len(plan.to_sync),
        skipped=plan.skipped,
        blocked=plan.blocked_total,
    )


def run_tasks_add(
    run: ResyncRun,
    work: Iterable[tuple[int, CatsAccount | None]],
    *,
    kind: str,
    priority: int,
    total: int,
    skipped: int,
    blocked: int,
    requests: int = 0,
) -> None:
    """One task of the run for each `(enrollment id, account)` of `work`, its counts added to
    the run's, and the accounts' sites woken once they commit. In a few statements however
    many there are. As `task_create` does one at a time: an enrollment whose task of this kind
    is already open (or opened by a concurrent add meanwhile) has that task join the run, and
    work of an account that is not connected waits, paused."""
    work = list(work)
    ids = [enrollment_id for enrollment_id, _ in work]
    open_tasks = SyncTask.objects.filter(
        kind=kind, event=None, state__in=SyncTask.OPEN_STATES, enrollment_id__in=ids
    )
    already = set(open_tasks.values_list("enrollment_id", flat=True))
    now = timezone.now()
    SyncTask.objects.bulk_create(
        (
            SyncTask(
                kind=kind,
                enrollment_id=enrollment_id,
                account=account,
                priority=priority,
                run=run,
                state=SyncTask.State.PENDING if _connected(account) else SyncTask.State.PAUSED,
                not_before=now,
            )
            for enrollment_id, account in work
            if enrollment_id not in already
        ),
        batch_size=500,
        ignore_conflicts=True,
    )
    open_tasks.filter(run=None).update(run=run)
    ResyncRun.objects.filter(pk=run.pk).update(
        total=F("total") + total,
        skipped=F("skipped") + skipped,
        blocked=F("blocked") + blocked,
        requests_planned=F("requests_planned") + requests,
    )
    site_ids = {account.site_id for _, account in work if _connected(account) and account.site_id}
    if site_ids:
        transaction.on_commit(lambda: queue.enqueue_sites(site_ids), robust=True)


def _connected(account: CatsAccount | None) -> bool:
    return account is not None and account.status == CatsAccount.Status.CONNECTED


@transaction.atomic
def resync_cancel(*, run: ResyncRun) -> int:
    """Stop a run: its waiting contacts are not synced (a later resync still finds them);
    tasks already running finish. Returns how many contacts were left out."""
    left = SyncTask.objects.filter(
        run=run, state__in=[SyncTask.State.PENDING, SyncTask.State.PAUSED]
    ).update(state=SyncTask.State.DONE, outcome=SyncTask.Outcome.CANCELLED, waiting_on="")
    run.refresh_from_db()
    if run.state == ResyncRun.State.PLANNING:
        # Contacts not planned yet are left out too.
        left += max(len(run.selection or []) - run.planned, 0)
    ResyncRun.objects.filter(
        pk=run.pk, state__in=[ResyncRun.State.RUNNING, ResyncRun.State.PLANNING]
    ).update(state=ResyncRun.State.CANCELLED, finished_at=timezone.now(), selection=[])
    return left


def resync_run_close_if_done(*, run_id: int) -> bool:
    """A run ends when none of its tasks has work left; called as each of them ends."""
    if SyncTask.objects.filter(run_id=run_id, state__in=SyncTask.OPEN_STATES).exists():
        return False
    # A run still being planned is not done, whatever its first tasks did.
    return bool(
        ResyncRun.objects.filter(pk=run_id, state=ResyncRun.State.RUNNING).update(
            state=ResyncRun.State.DONE, finished_at=timezone.now()
        )
    )


@dataclass(frozen=True)
class RunProgress:
    total: int
    done: int
    created: int
    linked: int
    skipped: int
    failed: int
    waiting: int
    eta: datetime | None
    # The latest time a waiting task is due again (a back-off or budget wait).
    last_due: datetime | None = None
    cancelled: int = 0
    # Push runs: contacts whose changes reached CATS, and those that needed no request.
    pushed: int = 0
    unchanged: int = 0


def resync_progress(*, run: ResyncRun) -> RunProgress:
    """How far a run has got. Reads only."""
    counts = {
        (row["state"], row["outcome"]): row["n"]
        for row in run.tasks.values("state", "outcome").annotate(n=Count("id"))
    }

    def total(pred) -> int:
        return sum(n for key, n in counts.items() if pred(*key))

    done = total(lambda s, o: s == SyncTask.State.DONE)
    failed = total(lambda s, o: s == SyncTask.State.FAILED)
    waiting = total(lambda s, o: s in SyncTask.OPEN_STATES)
    created = total(lambda s, o: s == SyncTask.State.DONE and o == SyncTask.Outcome.CREATED)
    linked = total(lambda s, o: s == SyncTask.State.DONE and o == SyncTask.Outcome.LINKED)
    skipped = run.skipped + total(
        lambda s, o: s == SyncTask.State.DONE and o == SyncTask.Outcome.SKIPPED
    )
    cancelled = total(lambda s, o: s == SyncTask.State.DONE and o == SyncTask.Outcome.CANCELLED)
    pushed = total(lambda s, o: s == SyncTask.State.DONE and o == SyncTask.Outcome.PUSHED)
    unchanged = run.skipped + total(
        lambda s, o: s == SyncTask.State.DONE and o == SyncTask.Outcome.UNCHANGED
    )
    eta = last_due = None
    if waiting:
        last_due = run.tasks.filter(state=SyncTask.State.PENDING).aggregate(m=Max("not_before"))[
            "m"
        ]
        eta = timezone.now() + timedelta(seconds=_seconds_left(run, waiting, done))
        if last_due and last_due > eta:
            eta = last_due
    return RunProgress(
        total=run.total,
        done=done,
        created=created,
        linked=linked,
        skipped=skipped,
        failed=failed,
        waiting=waiting,
        eta=eta,
        last_due=last_due,
        cancelled=cancelled,
        pushed=pushed,
        unchanged=unchanged,
    )


def _seconds_left(run: ResyncRun, waiting: int, done: int) -> float:
    """The later of: the pace so far, and when the CATS budget lets the rest through."""
    now = timezone.now()
    elapsed = max((now - run.created_at).total_seconds(), 1.0)
    pace = waiting * elapsed / done if done else waiting * 0.5
    budget_wait = 0.0
    for site in CatsSite.objects.filter(accounts__tasks__run=run).distinct():
        per_contact = REQUESTS_PER_CONTACT
        if run.kind == ResyncRun.Kind.PUSH and run.total:
            per_contact = run.requests_planned / run.total
        budget_wait = max(budget_wait, budget_view(site).bulk_seconds(waiting * per_contact))
        if site.outage_until and site.outage_until > now:
            budget_wait = max(budget_wait, (site.outage_until - now).total_seconds())
    return max(pace, budget_wait)


def retry_bound_text() -> str:
    """What a run's page promises about contacts waiting on CATS failures."""
    return (
        f"Contacts that CATS fails on are retried for up to {RETRY_WINDOW_MINUTES} minutes "
        f"(while CATS is down, one try at a time, at most every {int(outage_backoff_cap())} s), "
        "then shown as failed with Retry."
    )
