"""django-q2 tasks: thin. They carry ids; the state lives in SyncTask rows."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone
from django_q.tasks import async_task

from . import sync
from .budget import budget_prune
from .models import SyncTask

log = logging.getLogger(__name__)

BATCH = 25  # one batched email lookup covers a batch
DONE_RETENTION = timedelta(days=30)


def enqueue_tasks(task_ids: list[int]) -> None:
    """Hand ids to the queue in batches. Losing this message loses nothing: the sweeper
    finds the rows. Live work is enqueued one task per message so it starts at once."""
    for start in range(0, len(task_ids), BATCH):
        chunk = task_ids[start : start + BATCH]
        async_task("cats_sync.tasks.run_sync_tasks", chunk, group="cats-sync")


def run_sync_tasks(task_ids: list[int]) -> dict[str, int]:
    return sync.tasks_execute(task_ids=task_ids)


def sweep(limit: int = 500) -> int:
    """Scheduled every minute: recover work from dead workers and enqueue whatever is due."""
    now = timezone.now()
    # A task claimed longer ago than any run may take belonged to a worker that died.
    SyncTask.objects.filter(
        state=SyncTask.State.RUNNING, claimed_at__lt=now - sync.RUNNING_LEASE
    ).update(state=SyncTask.State.PENDING, claimed_at=None, not_before=now)
    due = list(
        SyncTask.objects.filter(state=SyncTask.State.PENDING, not_before__lte=now)
        .order_by("priority", "not_before")
        .values_list("id", "account_id")[:limit]
    )
    by_account: dict[int | None, list[int]] = {}
    for task_id, account_id in due:
        by_account.setdefault(account_id, []).append(task_id)
    for ids in by_account.values():
        enqueue_tasks(ids)
    budget_prune()
    # Finished live work is history nobody reads after a while; runs keep theirs for progress.
    SyncTask.objects.filter(
        state=SyncTask.State.DONE, run=None, updated_at__lt=now - DONE_RETENTION
    ).delete()
    return len(due)


def drain(max_rounds: int = 1000) -> int:
    """Run every due task in this process until none is due (tests, the demo, a CLI)."""
    ran = 0
    for _ in range(max_rounds):
        now = timezone.now()
        due = list(
            SyncTask.objects.filter(state=SyncTask.State.PENDING, not_before__lte=now)
            .order_by("priority", "not_before", "id")
            .values_list("id", flat=True)[:BATCH]
        )
        if not due:
            break
        sync.tasks_execute(task_ids=due)
        ran += len(due)
    return ran
