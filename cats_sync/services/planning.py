"""Planning a big run in a worker: the enrollments a person selected are written down when the
run starts (one short request), and planned here in chunks, each committed with its tasks.
A resync and a push plan alike; each kind plans its own chunk (resync.py, push.py)."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..models import ResyncRun
from .push import push_plan_chunk
from .resync import plan_finish, resync_plan_chunk

PLAN_CHUNK = 500
# A planning worker that has not committed a chunk for this long is gone: the sweeper hands
# the run on.
PLAN_LEASE = timedelta(minutes=5)


def resync_plan_run(*, run_id: int) -> ResyncRun | None:
    """Plan a big run in chunks, each committed with its tasks; safe to run twice, and a
    worker that dies mid-way leaves the rest to the next one (the sweeper hands it on)."""
    now = timezone.now()
    claimed = (
        ResyncRun.objects.filter(pk=run_id, state=ResyncRun.State.PLANNING)
        .filter(Q(plan_claimed_at__isnull=True) | Q(plan_claimed_at__lt=now - PLAN_LEASE))
        .update(plan_claimed_at=now)
    )
    if not claimed:
        return None
    run = ResyncRun.objects.get(pk=run_id)
    ids = list(run.selection or [])
    while run.planned < len(ids):
        with transaction.atomic():
            run = ResyncRun.objects.select_for_update().get(pk=run_id)
            if run.state != ResyncRun.State.PLANNING:
                return run  # cancelled meanwhile
            chunk = ids[run.planned : run.planned + PLAN_CHUNK]
            if run.kind == ResyncRun.Kind.PUSH:
                push_plan_chunk(run, chunk)
            else:
                resync_plan_chunk(run, chunk, bulk=True)
            ResyncRun.objects.filter(pk=run.pk).update(
                planned=run.planned + len(chunk), plan_claimed_at=timezone.now()
            )
        run.refresh_from_db()
    with transaction.atomic():
        run = ResyncRun.objects.select_for_update().get(pk=run_id)
        if run.state == ResyncRun.State.PLANNING:
            plan_finish(run)
    return run
