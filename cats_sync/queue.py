"""Handing SyncTask ids to django-q2, and waking rows that wait.

The rows are the truth; a queue message only says "look at these now". Losing one loses
nothing: the sweeper (tasks.sweep, every minute) finds every due row. So a broker that is down
when a change commits is logged, never an error for the person or the API client.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from .models import SyncTask

log = logging.getLogger(__name__)

BATCH = 25  # tasks a test's drain() runs at once: one batched email lookup covers them


def enqueue(task_ids: Iterable[int]) -> None:
    """Wake the runners of the sites these tasks belong to (engine/site_runner.py)."""
    ids = list(task_ids)
    site_ids: set[int] = set()
    for start in range(0, len(ids), 900):
        site_ids.update(
            SyncTask.objects.filter(pk__in=ids[start : start + 900], account__site__isnull=False)
            .values_list("account__site_id", flat=True)
            .distinct()
        )
    enqueue_sites(sorted(site_ids))


def enqueue_sites(site_ids: Iterable[int]) -> None:
    from django_q.tasks import async_task

    for site_id in site_ids:
        try:
            async_task("cats_sync.tasks.run_site", site_id, group="cats-sync")
        except Exception:
            # Broker down: the rows are committed and the sweeper will find them.
            log.warning("Could not wake the CATS runner of site %s; the sweeper will", site_id)
            return


def enqueue_call(func: str, *args) -> None:
    """Any other background job of the sync (its state is in its own row, like the tasks')."""
    from django_q.tasks import async_task

    try:
        async_task(func, *args, group="cats-sync")
    except Exception:
        log.warning("Could not enqueue %s%s; the sweeper will", func, args)


def enqueue_on_commit(task_ids: Iterable[int]) -> None:
    ids = list(task_ids)
    if ids:
        transaction.on_commit(lambda: enqueue(ids), robust=True)


def tasks_resume(*, account) -> int:
    """Paused work of an account is due again (after reconnecting, or once its key reads)."""
    ids = list(
        SyncTask.objects.filter(account=account, state=SyncTask.State.PAUSED).values_list(
            "id", flat=True
        )
    )
    SyncTask.objects.filter(pk__in=ids).update(
        state=SyncTask.State.PENDING, not_before=timezone.now(), waiting_on="", last_error=""
    )
    enqueue_on_commit(ids)
    return len(ids)


def site_wake(*, site_id: int, waiting_on: Iterable[str] = ("outage", "retry")) -> int:
    """CATS answers again: work that waited out the outage is due now, not at its back-off.
    With `waiting_on=["budget"]`: a shorter window was learned, budget waits ask again."""
    ids = list(
        SyncTask.objects.filter(
            state=SyncTask.State.PENDING,
            waiting_on__in=list(waiting_on),
            account__site_id=site_id,
            not_before__gt=timezone.now(),
        ).values_list("id", flat=True)
    )
    if ids:
        SyncTask.objects.filter(pk__in=ids, state=SyncTask.State.PENDING).update(
            not_before=timezone.now()
        )
        enqueue_on_commit(ids)
    return len(ids)
