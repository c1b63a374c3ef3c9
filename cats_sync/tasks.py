"""django-q2 tasks: thin. They carry ids; the state lives in SyncTask rows."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone

from . import crypto, queue
from .budget import budget_prune
from .engine import running_lease, tasks_execute
from .engine.site_runner import site_run, sites_due_soon, sites_wake
from .errors import CatsSyncError
from .models import CatsAccount, CatsIncident, ResyncRun, SyncTask
from .services.incidents import incident_close, incidents_review

log = logging.getLogger(__name__)

BATCH = queue.BATCH
DONE_RETENTION = timedelta(days=30)


def run_site(site_id: int) -> dict[str, int]:
    return site_run(site_id=site_id)


def wake_sites() -> int:
    return sites_wake()


def resync_plan_run(run_id: int) -> str:
    from .services.planning import resync_plan_run as plan

    run = plan(run_id=run_id)
    return "nothing to do" if run is None else run.state


def metadata_refresh(account_id: int) -> str:
    """Just after connecting: read the site's job orders, workflows and custom fields, so the
    settings page can offer them. Safe to run twice; a failure is logged, and the Refresh
    action on the connections list reads them again."""
    from .services import metadata_refresh as refresh

    account = CatsAccount.objects.select_related("site").filter(pk=account_id).first()
    if account is None or not account.is_connected:
        return "not connected"
    try:
        counts = refresh(account=account)
    except CatsSyncError as exc:
        log.warning("Could not read the job orders and custom fields of %s: %s", account, exc)
        return "failed"
    return f"{counts['jobs']} job orders, {counts['fields']} custom fields"


def run_sync_tasks(task_ids: list[int]) -> dict[str, int]:
    """Messages queued before the site runners existed still run."""
    return tasks_execute(task_ids=task_ids)


def sweep(limit: int = 500) -> int:
    """Scheduled every minute: recover work of dead workers, resume what can resume, enqueue
    whatever is due, close finished runs, and forget old history."""
    now = timezone.now()
    # A running task whose heartbeat stopped belonged to a worker that died.
    SyncTask.objects.filter(
        state=SyncTask.State.RUNNING, claimed_at__lt=now - running_lease()
    ).update(state=SyncTask.State.PENDING, claimed_at=None, claim_token="", not_before=now)
    _resume_readable_keys()
    # A runner whose worker died lets go of its site when its lease ends.
    sites = sorted(
        set(
            SyncTask.objects.filter(
                state=SyncTask.State.PENDING, not_before__lte=now, account__site__isnull=False
            )
            .values_list("account__site_id", flat=True)
            .distinct()[:limit]
        )
    )
    queue.enqueue_sites(sites)
    # Work due before the next sweep (a budget window ending, a back-off) is not left to it.
    if sites_due_soon():
        queue.enqueue_call("cats_sync.tasks.wake_sites")
    _close_finished_runs()
    incidents_review()
    _webhooks_and_reconciliation()
    budget_prune()
    # Finished live work is history nobody reads after a while; runs keep theirs for progress.
    SyncTask.objects.filter(
        state=SyncTask.State.DONE, run=None, updated_at__lt=now - DONE_RETENTION
    ).delete()
    return len(sites)


def _resume_readable_keys() -> None:
    """Work paused because the stored key could not be decrypted resumes once it can (the
    right CATS_ENCRYPTION_KEYS restored), without anyone reconnecting."""
    accounts = CatsAccount.objects.filter(
        status=CatsAccount.Status.CONNECTED, tasks__state=SyncTask.State.PAUSED
    ).distinct()
    for account in accounts:
        try:
            crypto.decrypt(account.api_key_encrypted)
        except crypto.KeyDecryptionError:
            continue
        resumed = queue.tasks_resume(account=account)
        incident_close(account=account, kinds=[CatsIncident.Kind.KEY_UNREADABLE])
        log.info("Resumed %s CATS task(s) of %s: its key reads again", resumed, account)


def _close_finished_runs() -> None:
    from .services.planning import PLAN_LEASE
    from .services.resync import resync_run_close_if_done

    # A run whose planning worker died is handed on.
    stale = timezone.now() - PLAN_LEASE
    for run_id in ResyncRun.objects.filter(
        state=ResyncRun.State.PLANNING, plan_claimed_at__lt=stale
    ).values_list("id", flat=True):
        queue.enqueue_call("cats_sync.tasks.resync_plan_run", run_id)

    for run_id in ResyncRun.objects.filter(state=ResyncRun.State.RUNNING).values_list(
        "id", flat=True
    ):
        resync_run_close_if_done(run_id=run_id)


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
        tasks_execute(task_ids=due)
        ran += len(due)
    return ran


def webhook_register(account_id: int) -> str:
    from .services.webhooks import webhook_register as register

    return register(account_id=account_id)


def webhook_process(delivery_id: int) -> str:
    from .services.webhooks import webhook_delivery_process

    return webhook_delivery_process(delivery_id=delivery_id)


def reconcile_site(site_id: int) -> int:
    """Periodic: a failure is logged and the next tick (a minute on) tries again."""
    from .services.reconcile import reconcile_site as reconcile

    try:
        return reconcile(site_id=site_id)
    except Exception:
        log.exception("Reconciliation of CATS site %s failed; the next tick tries again", site_id)
        return 0


def _webhooks_and_reconciliation() -> None:
    """The sweeper's share of the two-way sync: register missing webhooks, process deliveries
    whose message was lost, and one reconciliation tick per connected site."""
    from .services.webhooks import deliveries_sweep, webhooks_ensure

    webhooks_ensure()
    deliveries_sweep()
    from .services.reconcile import sites_to_reconcile

    for site_id in sites_to_reconcile():
        queue.enqueue_call("cats_sync.tasks.reconcile_site", site_id)
