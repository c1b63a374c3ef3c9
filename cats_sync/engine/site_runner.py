"""One runner per CATS site works through the site's due tasks, always live work first.

The budget is per site, so two workers on one site would only race each other for it; one
runner per site (a lease on the site's row) keeps order instead. It looks again before every
task: a live add made while a bulk backlog runs is next, not after the backlog. Live adds that
arrive close together are collected for a moment so they share one email search. When the
budget or a back-off makes everything wait a little, the runner sleeps until then instead of
leaving the work to the once-a-minute sweeper. A longer wait (a budget window of an hour) ends the
runner; then one waker for the whole deployment (`sites_wake`, started by the sweeper when work
is due before its next round) sleeps until the work is due and starts the site's runner at that
second. So work that waited resumes within a second or two of being due, whatever the wait.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta

from django.core.cache import cache
from django.db.models import Max, Q
from django.utils import timezone

from .. import queue
from ..models import CatsSite, SyncTask
from .runner import tasks_execute

log = logging.getLogger(__name__)

# How long one runner works before it hands over (well inside Q_TIMEOUT, 240 s by default).
RUNNER_SECONDS = 120
# Sync tasks looked up in one search.
MAX_BATCH = 25
# Live adds are collected for at most this long, or until none arrived for COLLECT_QUIET: a
# steady stream (an outreach engine adding one contact every 0.2 s) shares a search between
# ~15 adds; a person's single add waits COLLECT_QUIET.
COLLECT_MAX_SECONDS = 3.0
COLLECT_QUIET_SECONDS = 1.0
COLLECT_POLL_SECONDS = 0.2
# A runner sleeps through a wait shorter than this; a longer one is the sweeper's.
SLEEP_AT_MOST_SECONDS = 30.0
SLEEP_SLICE_SECONDS = 1.0
# The waker is started by the sweeper for work due within WAKE_AHEAD_SECONDS. The sweeper is
# scheduled every minute, but django-q2's scheduler looks at its schedules every 30 s, so two
# sweeps can be up to 90 s apart: a look-ahead past that, and a waker that lives as long, leave
# no gap between one sweep's waker and the next.
WAKE_AHEAD_SECONDS = 100.0
WAKER_SECONDS = 110.0
# A site just woken is not woken again for this long (its runner is on its way).
REWAKE_SECONDS = 5.0
WAKER_LEASE_KEY = "cats_sync:waker"

LOOKUP_KINDS = (SyncTask.Kind.SYNC, SyncTask.Kind.DEDUP)


def _due(site_id: int):
    return SyncTask.objects.filter(
        state=SyncTask.State.PENDING,
        not_before__lte=timezone.now(),
        account__site_id=site_id,
    )


def _no_runner(now, site_path: str = "") -> Q:
    """The site (at `site_path`) is held by no runner: none took it, or its lease ended."""
    until = f"{site_path}runner_until"
    return Q(**{f"{until}__isnull": True}) | Q(**{f"{until}__lt": now})


def _acquire(site_id: int, token: str) -> bool:
    now = timezone.now()
    return bool(
        CatsSite.objects.filter(pk=site_id)
        .filter(_no_runner(now))
        .update(runner_token=token, runner_until=now + timedelta(seconds=RUNNER_SECONDS + 90))
    )


def _release(site_id: int, token: str) -> None:
    CatsSite.objects.filter(pk=site_id, runner_token=token).update(
        runner_token="", runner_until=None
    )


def _next_batch(site_id: int, deadline: float) -> list[int]:
    """The next task ids to run: the most urgent due task, with the due tasks of its kind and
    priority when they look emails up (one search serves them all)."""
    first = (
        _due(site_id)
        .order_by("priority", "not_before", "id")
        .values("id", "kind", "priority")
        .first()
    )
    if first is None:
        return []
    if first["kind"] not in LOOKUP_KINDS:
        return [first["id"]]

    def same():
        # Built anew each time: `_due` is "due by now", and adds keep arriving.
        return _due(site_id).filter(kind__in=LOOKUP_KINDS, priority=first["priority"])

    if first["priority"] == SyncTask.Priority.LIVE:
        _collect(same, deadline)
    return list(same().order_by("not_before", "id").values_list("id", flat=True)[:MAX_BATCH])


def _collect(due_live, deadline: float) -> None:
    """Wait a moment while live adds keep arriving, so that they share one search."""
    started = time.monotonic()
    while time.monotonic() - started < COLLECT_MAX_SECONDS and time.monotonic() < deadline:
        newest = due_live().aggregate(newest=Max("created_at"))["newest"]
        if newest is None or due_live().count() >= MAX_BATCH:
            return
        quiet = (timezone.now() - newest).total_seconds()
        if quiet >= COLLECT_QUIET_SECONDS:
            return
        time.sleep(COLLECT_POLL_SECONDS)


def _next_due_in(site_id: int) -> float | None:
    """Seconds until the site's next pending task is due, or None when there is none."""
    soonest = (
        SyncTask.objects.filter(state=SyncTask.State.PENDING, account__site_id=site_id)
        .order_by("not_before")
        .values_list("not_before", flat=True)
        .first()
    )
    if soonest is None:
        return None
    return max((soonest - timezone.now()).total_seconds(), 0.0)


def site_run(*, site_id: int) -> dict[str, int]:
    """Work through the site's due tasks for up to RUNNER_SECONDS. Safe to start any number of
    times: a second runner finds the site taken and returns at once."""
    token = uuid.uuid4().hex
    if not _acquire(site_id, token):
        return {}
    deadline = time.monotonic() + RUNNER_SECONDS
    outcomes: dict[str, int] = {}
    try:
        while time.monotonic() < deadline:
            batch = _next_batch(site_id, deadline)
            if batch:
                for outcome, n in tasks_execute(task_ids=batch, site_id=site_id).items():
                    outcomes[outcome] = outcomes.get(outcome, 0) + n
                continue
            wait = _next_due_in(site_id)
            left = deadline - time.monotonic()
            if wait is None or wait > min(SLEEP_AT_MOST_SECONDS, left):
                break
            # In slices: live work added (or waits woken) meanwhile is due at once.
            time.sleep(min(wait + 0.05, SLEEP_SLICE_SECONDS))
    finally:
        _release(site_id, token)
    soon = _next_due_in(site_id)
    if soon is not None and soon <= SLEEP_AT_MOST_SECONDS:
        # More is due, or will be in a moment (it arrived as this runner ended, or the runner
        # ran out of time before a short wait ended): a successor goes on, not the sweeper.
        queue.enqueue_sites([site_id])
    return outcomes


def _pending_without_runner(now):
    """Pending tasks of sites no runner holds (a runner sleeps through its own short waits)."""
    return SyncTask.objects.filter(
        state=SyncTask.State.PENDING, account__site__isnull=False
    ).filter(_no_runner(now, "account__site__"))


def sites_due_soon(*, within: float = WAKE_AHEAD_SECONDS) -> bool:
    """Is work of a site without a runner due within `within` seconds, but not yet? (The
    sweeper wakes the sites with work due now itself.)"""
    now = timezone.now()
    return (
        _pending_without_runner(now)
        .filter(not_before__gt=now, not_before__lte=now + timedelta(seconds=within))
        .exists()
    )


def sites_wake() -> int:
    """Sleep until the next pending task of a site without a runner is due, start that site's
    runner, and go on for up to WAKER_SECONDS, then hand on to a successor when more is due
    soon. One waker at a time, by a lease in the cache. Nothing depends on it: two wakers
    (a cache that is down, or not shared between clusters) only wake a site twice, and its
    second runner returns at once. Returns how many times a site was woken."""
    token = uuid.uuid4().hex
    try:
        if not cache.add(WAKER_LEASE_KEY, token, timeout=int(WAKER_SECONDS + 30)):
            return 0
    except Exception:
        log.warning("The cache is not answering; waking CATS sites without the waker's lease")
    deadline = time.monotonic() + WAKER_SECONDS
    woken: dict[int, float] = {}
    count = 0
    try:
        while True:
            now = timezone.now()
            due = set(
                _pending_without_runner(now)
                .filter(not_before__lte=now)
                .values_list("account__site_id", flat=True)
                .distinct()
            )
            at = time.monotonic()
            fresh = sorted(s for s in due if at - woken.get(s, -REWAKE_SECONDS) >= REWAKE_SECONDS)
            if fresh:
                queue.enqueue_sites(fresh)
                woken.update((s, at) for s in fresh)
                count += len(fresh)
            soonest = (
                _pending_without_runner(now)
                .filter(not_before__gt=now)
                .order_by("not_before")
                .values_list("not_before", flat=True)
                .first()
            )
            left = deadline - time.monotonic()
            if soonest is None or (soonest - now).total_seconds() > left:
                break
            time.sleep(min(max((soonest - now).total_seconds(), 0.0) + 0.05, SLEEP_SLICE_SECONDS))
    finally:
        try:
            if cache.get(WAKER_LEASE_KEY) == token:
                cache.delete(WAKER_LEASE_KEY)
        except Exception:
            log.warning("The cache is not answering; the waker's lease ends on its own")
    if sites_due_soon():
        # Its time is up with more due soon: a successor goes on (a sweep meanwhile found this
        # one's lease and started none).
        queue.enqueue_call("cats_sync.tasks.wake_sites")
    return count
