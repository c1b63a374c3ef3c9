"""CATS sync: connecting, settings, turning domain changes into sync work, and doing it.

Every step is idempotent on the ids we keep (CandidateLink, EnrollmentSync, ActivityLink), so a
task that runs twice, or after its answer was lost, never creates anything twice.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from interseller.models import Contact, EmailEvent, Enrollment, Membership, Sequence

from . import crypto
from .budget import (
    BULK_RESERVE_FRACTION,
    BudgetExhausted,
    budget_block,
    budget_observe,
    budget_take,
    budget_view,
)
from .client import (
    CatsAuthError,
    CatsClient,
    CatsError,
    CatsNotFound,
    CatsRateLimited,
    CatsRejected,
    CatsUnavailable,
)
from .models import (
    ActivityLink,
    CandidateLink,
    CatsAccount,
    CatsCustomField,
    CatsJob,
    CatsSite,
    CatsWorkflowStatus,
    EnrollmentSync,
    FieldMapping,
    ResyncRun,
    SequenceSync,
    SyncTask,
)

log = logging.getLogger(__name__)

SUBDOMAIN_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")

MSG_SUBDOMAIN_INVALID = "A CATS subdomain has only letters, digits and hyphens (e.g. “acme”)."
MSG_KEY_REQUIRED = "Enter the API key made in CATS under Administration → API Keys."
MSG_KEY_REJECTED = "CATS rejected this API key. Check it in CATS under Administration → API Keys."
MSG_UNREACHABLE = "CATS could not be reached to check the key ({detail}). Try again in a minute."
MSG_SUBDOMAIN_MISMATCH = "This API key belongs to the CATS site “{actual}”, not “{entered}”."
MSG_NOT_CONNECTED = "Connect CATS first."

ERR_EXISTS = "Exists in CATS"
ERR_AUTH = "CATS rejected the API key: reconnect CATS"
ERR_JOB_MISSING = "Job order #{job_id} no longer exists in CATS"
ERR_CANDIDATE_DELETED = "The candidate was deleted in CATS: syncing the contact again"
ERR_RATE = "CATS is rate limiting: retrying at {at:%H:%M}"
ERR_BUDGET = "CATS request budget used up: retrying at {at:%H:%M}"
ERR_UNAVAILABLE = "CATS is unavailable: retrying"
ERR_UNAVAILABLE_GAVE_UP = "CATS was unavailable {n} times in a row: use Retry once it is back"
ERR_REJECTED = "CATS rejected the contact: {message}"
ERR_STATUS_MISSING = "Status '{status}' does not exist in CATS workflow '{workflow}'"
ERR_FIELD_MISSING = "Custom field '{name}' no longer exists in CATS"
ERR_FIELD_REJECTED = "CATS refused the value of custom field '{name}': {message}"

SOURCE = "Interseller"
CLAIM_LEASE = timedelta(minutes=5)  # longer than any one task may run (Q_TIMEOUT)
RUNNING_LEASE = timedelta(minutes=10)
# A batch starts no new task after this long: well inside Q_TIMEOUT (240 s by default).
BATCH_SECONDS = 120
MAX_UNAVAILABLE_ATTEMPTS = 10
BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 3600
LOOKUP_CHUNK = 25


# --- clients ----------------------------------------------------------------------------------


def _client(account: CatsAccount, *, bulk: bool = False, budget: bool = True) -> CatsClient:
    api_key = crypto.decrypt(account.api_key_encrypted)
    site_id = account.site_id

    def before() -> None:
        if budget and site_id:
            budget_take(site_id=site_id, bulk=bulk)

    def after(client: CatsClient) -> None:
        if site_id:
            budget_observe(
                site_id=site_id,
                limit=client.rate_limit_limit,
                remaining=client.rate_limit_remaining,
            )

    return CatsClient(
        api_key,
        timeout=(settings.CATS_CONNECT_TIMEOUT, settings.CATS_READ_TIMEOUT),
        before_request=before,
        after_response=after,
    )


# --- connecting -------------------------------------------------------------------------------


def cats_account_get(*, membership: Membership) -> CatsAccount:
    account, _ = CatsAccount.objects.get_or_create(membership=membership)
    return account


def cats_connect(*, membership: Membership, subdomain: str, api_key: str) -> CatsAccount:
    """Check the key with CATS (GET /site) and connect; resumes any paused work."""
    subdomain = (subdomain or "").strip().lower()
    if subdomain.endswith(".catsone.com"):
        subdomain = subdomain[: -len(".catsone.com")]
    if not SUBDOMAIN_RE.match(subdomain):
        raise ValidationError({"subdomain": MSG_SUBDOMAIN_INVALID})
    api_key = (api_key or "").strip()
    if not api_key:
        raise ValidationError({"api_key": MSG_KEY_REQUIRED})
    client = CatsClient(
        api_key, timeout=(settings.CATS_CONNECT_TIMEOUT, settings.CATS_READ_TIMEOUT)
    )
    try:
        site_data = client.get_site()
    except CatsAuthError:
        raise ValidationError({"api_key": MSG_KEY_REJECTED}) from None
    except (CatsUnavailable, CatsRateLimited, CatsError) as exc:
        raise ValidationError(MSG_UNREACHABLE.format(detail=exc.message)) from None
    actual = str(site_data.get("subdomain") or "").lower()
    if actual != subdomain:
        raise ValidationError(
            {"subdomain": MSG_SUBDOMAIN_MISMATCH.format(actual=actual, entered=subdomain)}
        )
    with transaction.atomic():
        site, _ = CatsSite.objects.get_or_create(
            cats_id=int(site_data["id"]), defaults={"subdomain": actual}
        )
        if site.subdomain != actual:
            site.subdomain = actual
            site.save(update_fields=["subdomain"])
        if client.rate_limit_limit:
            CatsSite.objects.filter(pk=site.pk).update(rate_limit=client.rate_limit_limit)
        account = CatsAccount.objects.select_for_update().get_or_create(membership=membership)[0]
        account.subdomain = actual
        account.api_key_encrypted = crypto.encrypt(api_key)
        account.site = site
        account.status = CatsAccount.Status.CONNECTED
        account.status_message = ""
        account.connected_at = timezone.now()
        account.save()
        Membership.objects.filter(pk=membership.pk).update(integration=Membership.Integration.CATS)
        membership.integration = Membership.Integration.CATS
        _resume_paused(account)
    return account


def _resume_paused(account: CatsAccount) -> None:
    now = timezone.now()
    ids = list(
        SyncTask.objects.filter(account=account, state=SyncTask.State.PAUSED).values_list(
            "id", flat=True
        )
    )
    SyncTask.objects.filter(pk__in=ids).update(state=SyncTask.State.PENDING, not_before=now)
    EnrollmentSync.objects.filter(account=account, error_code=EnrollmentSync.Error.AUTH).update(
        error_code="", error_message="", error_at=None
    )
    _enqueue_on_commit(ids)


@transaction.atomic
def cats_disconnect(*, account: CatsAccount) -> int:
    """Stop syncing; queued work is paused, not dropped. Returns how many tasks wait."""
    account.status = CatsAccount.Status.DISCONNECTED
    account.status_message = "Disconnected: queued work waits until CATS is reconnected."
    account.api_key_encrypted = ""
    account.save(update_fields=["status", "status_message", "api_key_encrypted", "updated_at"])
    Membership.objects.filter(pk=account.membership_id).update(
        integration=Membership.Integration.NONE
    )
    return SyncTask.objects.filter(
        account=account, state__in=[SyncTask.State.PENDING, SyncTask.State.RUNNING]
    ).update(state=SyncTask.State.PAUSED)


def _mark_invalid(account: CatsAccount) -> None:
    """CATS answered 401: pause the member's work until they reconnect."""
    with transaction.atomic():
        CatsAccount.objects.filter(pk=account.pk).update(
            status=CatsAccount.Status.INVALID,
            status_message=ERR_AUTH,
        )
        SyncTask.objects.filter(account=account, state=SyncTask.State.PENDING).update(
            state=SyncTask.State.PAUSED
        )


# --- cached metadata --------------------------------------------------------------------------


def jobs_refresh(*, account: CatsAccount) -> int:
    """Re-read the site's job orders (and which statuses are closed) into the cache."""
    _require_connected(account)
    client = _client(account)
    closed_status_ids: set[int] = set()
    status_titles: dict[int, str] = {}
    for row in client.list_job_statuses():
        sid = row.get("id")
        status_titles[sid] = row.get("title") or ""
        mapping = str(row.get("mapping") or row.get("category") or "").lower()
        if mapping in ("closed", "filled", "canceled", "cancelled", "lost"):
            closed_status_ids.add(sid)
    seen: set[int] = set()
    site = account.site
    for row in client.list_jobs():
        job_id = int(row["id"])
        seen.add(job_id)
        status_id = row.get("status_id")
        status = row.get("status")
        status_title = (
            status.get("title") if isinstance(status, dict) else status_titles.get(status_id, "")
        ) or ""
        is_open = status_id not in closed_status_ids and status_title.lower() not in (
            "closed",
            "filled",
            "canceled",
            "cancelled",
            "lost",
            "onhold",
            "on hold",
        )
        CatsJob.objects.update_or_create(
            site=site,
            cats_id=job_id,
            defaults={
                "title": row.get("title") or f"Job {job_id}",
                "status_title": status_title,
                "is_open": is_open,
                "workflow_id": row.get("workflow_id"),
                "location": _location(row.get("location")),
                "exists": True,
            },
        )
    CatsJob.objects.filter(site=site).exclude(cats_id__in=seen).update(exists=False)
    CatsSite.objects.filter(pk=site.pk).update(jobs_refreshed_at=timezone.now())
    return len(seen)


def _location(value) -> str:
    if isinstance(value, dict):
        return ", ".join(str(v) for v in (value.get("city"), value.get("state")) if v)
    return str(value or "")


def workflows_refresh(*, account: CatsAccount) -> int:
    _require_connected(account)
    workflows_refresh_with(account=account, client=_client(account))
    return CatsWorkflowStatus.objects.filter(site=account.site).count()


def custom_fields_refresh(*, account: CatsAccount) -> int:
    _require_connected(account)
    client = _client(account)
    site = account.site
    seen = set()
    for row in client.list_candidate_custom_fields():
        fid = int(row["id"])
        seen.add(fid)
        spec = row.get("field") or {}
        CatsCustomField.objects.update_or_create(
            site=site,
            cats_id=fid,
            defaults={
                "name": row.get("name") or f"Field {fid}",
                "field_type": str(spec.get("type") or row.get("type") or "text"),
                "options": spec.get("selections") or spec.get("options") or [],
                "exists": True,
            },
        )
    CatsCustomField.objects.filter(site=site).exclude(cats_id__in=seen).update(exists=False)
    CatsSite.objects.filter(pk=site.pk).update(fields_refreshed_at=timezone.now())
    return len(seen)


def _require_connected(account: CatsAccount) -> None:
    if not account.is_connected:
        raise ValidationError(MSG_NOT_CONNECTED)


# --- turning domain changes into work ---------------------------------------------------------


def _account_of(membership_id: int) -> CatsAccount | None:
    return CatsAccount.objects.select_related("site").filter(membership_id=membership_id).first()


def _enqueue_on_commit(task_ids: Iterable[int]) -> None:
    ids = list(task_ids)
    if not ids:
        return
    from .tasks import enqueue_tasks

    transaction.on_commit(lambda: enqueue_tasks(ids))


def _task_create(
    *,
    kind: str,
    enrollment: Enrollment,
    account: CatsAccount | None,
    event: EmailEvent | None = None,
    priority: int = SyncTask.Priority.LIVE,
    run: ResyncRun | None = None,
    enqueue: bool = True,
) -> SyncTask | None:
    """An open task of this kind for this enrollment (or event), created once.

    `enqueue=False` leaves enqueuing to the caller, which batches ids so that a worker gets
    many contacts at once and can look their emails up in one request.
    """
    state = SyncTask.State.PENDING
    if account is None or account.status != CatsAccount.Status.CONNECTED:
        state = SyncTask.State.PAUSED
    lookup = {"kind": kind, "enrollment": enrollment}
    if event is not None:
        existing = SyncTask.objects.filter(event=event).first()
    else:
        existing = SyncTask.objects.filter(
            **lookup, event=None, state__in=["pending", "running", "paused"]
        ).first()
    if existing:
        if (
            event is not None
            and existing.state == SyncTask.State.DONE
            and (existing.outcome == "deferred")
        ):
            # The event arrived before its contact synced; now it can be sent.
            SyncTask.objects.filter(pk=existing.pk).update(
                state=state, not_before=timezone.now(), outcome="", priority=priority
            )
            if state == SyncTask.State.PENDING:
                _enqueue_on_commit([existing.pk])
        elif run is not None and existing.run_id is None:
            SyncTask.objects.filter(pk=existing.pk).update(run=run)
        return existing
    try:
        with transaction.atomic():
            task = SyncTask.objects.create(
                **lookup,
                event=event,
                account=account,
                priority=priority,
                run=run,
                state=state,
                not_before=timezone.now(),
            )
    except IntegrityError:
        return None
    if state == SyncTask.State.PENDING and enqueue:
        _enqueue_on_commit([task.pk])
    return task


def _sequence_settings(sequence: Sequence) -> tuple[bool, int | None, CatsAccount | None]:
    """The sequence's sync toggle and job order, and its owner's account, in one query (two
    when the owner has an account): adding thousands of contacts must stay cheap."""
    row = (
        Sequence.objects.filter(pk=sequence.pk)
        .values("cats_sync__enabled", "cats_sync__job_id", "owner__cats_account__id")
        .first()
    ) or {}
    enabled = row.get("cats_sync__enabled")
    account_id = row.get("owner__cats_account__id")
    account = CatsAccount.objects.select_related("site").get(pk=account_id) if account_id else None
    return (True if enabled is None else enabled), row.get("cats_sync__job_id"), account


def enrollment_sync_capture(*, enrollment: Enrollment, new: bool = False) -> EnrollmentSync:
    """Freeze the sequence's toggle and job order as they are now (spec: set them first).

    `new=True` (a just-created enrollment) skips looking for an existing row.
    """
    if not new:
        existing = EnrollmentSync.objects.filter(enrollment=enrollment).first()
        if existing:
            return existing
    enabled, job_id, account = _sequence_settings(enrollment.sequence)
    if job_id is None and account is not None:
        job_id = account.default_job_id
    values = {"account": account, "sync_enabled": enabled, "job_id": job_id}
    if new:
        return EnrollmentSync.objects.create(enrollment=enrollment, **values)
    return EnrollmentSync.objects.get_or_create(enrollment=enrollment, defaults=values)[0]


def on_contact_added(*, enrollment: Enrollment) -> None:
    es = enrollment_sync_capture(enrollment=enrollment, new=True)
    account = es.account
    if account is None or account.status == CatsAccount.Status.DISCONNECTED:
        return  # Resync backfills these once connected.
    if es.sync_enabled and account.sync_mode == CatsAccount.SyncMode.ON_ADD:
        _task_create(kind=SyncTask.Kind.SYNC, enrollment=enrollment, account=account)
    elif account.deduplication:
        _task_create(kind=SyncTask.Kind.DEDUP, enrollment=enrollment, account=account)


def on_email_event(*, event: EmailEvent, enrollment: Enrollment, first_reply: bool) -> None:
    es = EnrollmentSync.objects.select_for_update().filter(enrollment=enrollment).first()
    if es is None:
        es = enrollment_sync_capture(enrollment=enrollment)
    account = es.account
    if account is None:
        return
    if es.synced_at:
        # Queued even while disconnected (paused): reconnecting must not lose the activity.
        _task_create(kind=SyncTask.Kind.EVENT, enrollment=enrollment, account=account, event=event)
        return
    if account.status == CatsAccount.Status.DISCONNECTED:
        return
    if first_reply and es.sync_enabled and account.sync_mode == CatsAccount.SyncMode.ON_REPLY:
        _task_create(kind=SyncTask.Kind.SYNC, enrollment=enrollment, account=account)
    # Otherwise the event waits: a sync backfills every event it finds.


# --- resync -----------------------------------------------------------------------------------

BLOCK_NO_CONNECTION = "no CATS connection"
BLOCK_INVALID = "CATS key refused: reconnect"
BLOCK_SEQUENCE_OFF = "sequence sync is off"
BLOCK_MODE_OFF = "sync mode is Off"


@dataclass
class ResyncPlan:
    to_sync: list[int] = field(default_factory=list)  # enrollment ids
    skipped: int = 0  # already synced
    blocked: dict[str, int] = field(default_factory=dict)  # reason -> count

    @property
    def blocked_total(self) -> int:
        return sum(self.blocked.values())


def resync_plan(*, enrollments) -> ResyncPlan:
    """What a resync would do, computed locally: no CATS request is spent."""
    plan = ResyncPlan()
    rows = enrollments.select_related("sequence").values_list(
        "id", "sequence_id", "sequence__owner_id"
    )
    rows = list(rows)
    seq_ids = {s for _, s, _ in rows}
    owner_ids = {o for _, _, o in rows}
    synced = set(
        EnrollmentSync.objects.filter(
            enrollment_id__in=[r[0] for r in rows], synced_at__isnull=False
        ).values_list("enrollment_id", flat=True)
    )
    captured = {
        es.enrollment_id: es
        for es in EnrollmentSync.objects.filter(enrollment_id__in=[r[0] for r in rows])
    }
    seq_enabled = dict(
        SequenceSync.objects.filter(sequence_id__in=seq_ids).values_list("sequence_id", "enabled")
    )
    accounts = {a.membership_id: a for a in CatsAccount.objects.filter(membership_id__in=owner_ids)}
    for enrollment_id, seq_id, owner_id in rows:
        if enrollment_id in synced:
            plan.skipped += 1
            continue
        account = accounts.get(owner_id)
        es = captured.get(enrollment_id)
        enabled = es.sync_enabled if es else seq_enabled.get(seq_id, True)
        reason = None
        if account is None or account.status == CatsAccount.Status.DISCONNECTED:
            reason = BLOCK_NO_CONNECTION
        elif account.status == CatsAccount.Status.INVALID:
            reason = BLOCK_INVALID
        elif not enabled:
            reason = BLOCK_SEQUENCE_OFF
        elif account.sync_mode == CatsAccount.SyncMode.OFF:
            reason = BLOCK_MODE_OFF
        if reason:
            plan.blocked[reason] = plan.blocked.get(reason, 0) + 1
        else:
            plan.to_sync.append(enrollment_id)
    return plan


@transaction.atomic
def resync_start(*, enrollments, started_by, team, description: str) -> ResyncRun:
    """Queue a sync for every never-synced, unblocked enrollment, as one run with progress."""
    plan = resync_plan(enrollments=enrollments)
    run = ResyncRun.objects.create(
        started_by=started_by,
        team=team,
        description=description,
        total=len(plan.to_sync),
        skipped=plan.skipped,
        blocked=plan.blocked_total,
    )
    bulk = len(plan.to_sync) > 1
    queued: dict[int | None, list[int]] = {}
    for enrollment in Enrollment.objects.filter(pk__in=plan.to_sync).select_related(
        "sequence", "contact"
    ):
        es = enrollment_sync_capture(enrollment=enrollment)
        if es.account is None or es.account.membership_id != enrollment.sequence.owner_id:
            # Contacts added before the owner connected: sync through the owner's account now.
            es.account = _account_of(enrollment.sequence.owner_id)
            if es.job_id is None and es.account is not None:
                es.job_id = es.account.default_job_id
            es.save(update_fields=["account", "job_id", "updated_at"])
        task = _task_create(
            kind=SyncTask.Kind.SYNC,
            enrollment=enrollment,
            account=es.account,
            priority=SyncTask.Priority.BULK if bulk else SyncTask.Priority.LIVE,
            run=run,
            enqueue=False,
        )
        if task is not None and task.state == SyncTask.State.PENDING:
            queued.setdefault(task.account_id, []).append(task.pk)
    for ids in queued.values():
        _enqueue_on_commit(ids)
    if not plan.to_sync:
        run.state = ResyncRun.State.DONE
        run.finished_at = timezone.now()
        run.save(update_fields=["state", "finished_at"])
    return run


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


def resync_progress(*, run: ResyncRun) -> RunProgress:
    from django.db.models import Count

    counts = {
        (row["state"], row["outcome"]): row["n"]
        for row in run.tasks.values("state", "outcome").annotate(n=Count("id"))
    }

    def total(pred) -> int:
        return sum(n for key, n in counts.items() if pred(*key))

    done = total(lambda s, o: s == SyncTask.State.DONE)
    failed = total(lambda s, o: s == SyncTask.State.FAILED)
    waiting = total(
        lambda s, o: s in (SyncTask.State.PENDING, SyncTask.State.RUNNING, SyncTask.State.PAUSED)
    )
    created = total(lambda s, o: s == SyncTask.State.DONE and o == "created")
    linked = total(lambda s, o: s == SyncTask.State.DONE and o == "linked")
    skipped = run.skipped + total(lambda s, o: s == SyncTask.State.DONE and o == "skipped")
    eta = None
    if waiting:
        eta = timezone.now() + timedelta(seconds=_seconds_left(run, waiting, done))
    if not waiting and run.state == ResyncRun.State.RUNNING:
        ResyncRun.objects.filter(pk=run.pk, state=ResyncRun.State.RUNNING).update(
            state=ResyncRun.State.DONE, finished_at=timezone.now()
        )
    return RunProgress(
        total=run.total,
        done=done,
        created=created,
        linked=linked,
        skipped=skipped,
        failed=failed,
        waiting=waiting,
        eta=eta,
    )


REQUESTS_PER_CONTACT = 2.1  # create + pipeline, plus a share of a batched lookup


def _seconds_left(run: ResyncRun, waiting: int, done: int) -> float:
    """The later of: the pace so far, and when the CATS budget lets the rest through."""
    now = timezone.now()
    elapsed = max((now - run.created_at).total_seconds(), 1.0)
    pace = waiting * elapsed / done if done else waiting * 0.5
    budget_wait = 0.0
    for site in CatsSite.objects.filter(accounts__tasks__run=run).distinct():
        view = budget_view(site)
        usable_now = max(view.remaining - int(view.limit * BULK_RESERVE_FRACTION), 0)
        needed = waiting * REQUESTS_PER_CONTACT - usable_now
        if needed > 0:
            per_second = view.per_hour * (1 - BULK_RESERVE_FRACTION) / 3600
            budget_wait = max(budget_wait, needed / max(per_second, 1e-6))
    return max(pace, budget_wait)


# --- retry and clone --------------------------------------------------------------------------


@transaction.atomic
def sync_retry(*, enrollment_ids: Iterable[int]) -> int:
    """Put failed work of these enrollments back in the queue (after a person fixed it).

    A failed task whose work is already queued again (a resync since) is closed instead.
    """
    open_states = [SyncTask.State.PENDING, SyncTask.State.RUNNING, SyncTask.State.PAUSED]
    ids: list[int] = []
    for task in SyncTask.objects.filter(
        enrollment_id__in=list(enrollment_ids), state=SyncTask.State.FAILED
    ):
        superseded = (
            task.event_id is None
            and SyncTask.objects.filter(
                kind=task.kind, enrollment_id=task.enrollment_id, event=None, state__in=open_states
            ).exists()
        )
        if superseded:
            SyncTask.objects.filter(pk=task.pk).update(
                state=SyncTask.State.DONE, outcome="superseded"
            )
            continue
        ids.append(task.pk)
    SyncTask.objects.filter(pk__in=ids).update(
        state=SyncTask.State.PENDING, attempts=0, not_before=timezone.now(), last_error=""
    )
    _enqueue_on_commit(ids)
    return len(ids)


CLONE_SKIP_OTHER = "uses another integration ({name})"
CLONE_SKIP_NONE = "has no integration set up"
CLONE_SKIP_INVALID = "CATS connection is invalid: they must reconnect"
CLONE_SKIP_SELF = "is you"
CLONE_NOTE_OTHER_SITE = "on another CATS site: job order and custom field mapping not copied"


@dataclass(frozen=True)
class CloneLine:
    membership: Membership
    will_update: bool
    reason: str = ""
    note: str = ""


def clone_plan(*, source: CatsAccount, targets: Iterable[Membership]) -> list[CloneLine]:
    lines = []
    accounts = {
        a.membership_id: a
        for a in CatsAccount.objects.filter(membership__in=[t.pk for t in targets])
    }
    for m in targets:
        account = accounts.get(m.pk)
        if m.pk == source.membership_id:
            continue
        if m.integration not in (Membership.Integration.CATS,):
            if m.integration == Membership.Integration.NONE:
                lines.append(CloneLine(m, False, CLONE_SKIP_NONE))
            else:
                lines.append(
                    CloneLine(m, False, CLONE_SKIP_OTHER.format(name=m.get_integration_display()))
                )
            continue
        if account is None or account.status != CatsAccount.Status.CONNECTED:
            lines.append(CloneLine(m, False, CLONE_SKIP_INVALID))
            continue
        note = "" if account.site_id == source.site_id else CLONE_NOTE_OTHER_SITE
        lines.append(CloneLine(m, True, "", note))
    return lines


CLONED_FIELDS = ("sync_mode", "deduplication", "activity_tracking", "status_sync", "fire_triggers")


@transaction.atomic
def cats_settings_clone(*, source: CatsAccount, targets: Iterable[Membership]) -> list[CloneLine]:
    """Copy every CATS setting; site-specific ids only onto the same CATS site."""
    lines = clone_plan(source=source, targets=list(targets))
    mappings = list(source.mappings.all())
    for line in lines:
        if not line.will_update:
            continue
        account = CatsAccount.objects.select_for_update().get(membership=line.membership)
        for name in CLONED_FIELDS:
            setattr(account, name, getattr(source, name))
        if account.site_id == source.site_id:
            account.default_job_id = source.default_job_id
            account.mappings.all().delete()
            FieldMapping.objects.bulk_create(
                FieldMapping(
                    account=account,
                    value=m.value,
                    field_id=m.field_id,
                    field_name=m.field_name,
                    field_type=m.field_type,
                )
                for m in mappings
            )
        account.save()
    return lines


# --- doing the work ---------------------------------------------------------------------------


class _Retry(Exception):
    def __init__(self, at: datetime, message: str, code: str = ""):
        super().__init__(message)
        self.at = at
        self.message = message
        self.code = code


def _claim(task: SyncTask) -> bool:
    """Atomically take a due pending task; False if another worker (or run) has it."""
    now = timezone.now()
    taken = SyncTask.objects.filter(
        pk=task.pk, state=SyncTask.State.PENDING, not_before__lte=now
    ).update(state=SyncTask.State.RUNNING, claimed_at=now, attempts=F("attempts") + 1)
    if taken:
        task.attempts += 1
    return bool(taken)


def tasks_execute(*, task_ids: list[int]) -> dict[str, int]:
    """Run these tasks (those still due). Safe to call twice with the same ids.

    Each task is claimed just before it runs, and no new one starts after BATCH_SECONDS, so a
    slow CATS never pushes a batch past the queue's timeout: what is left stays pending for the
    sweeper.
    """
    deadline = time.monotonic() + BATCH_SECONDS
    tasks = list(
        SyncTask.objects.filter(
            pk__in=task_ids, state=SyncTask.State.PENDING, not_before__lte=timezone.now()
        )
        .order_by("priority", "not_before", "id")
        .select_related(
            "account__site",
            "account__membership",
            "enrollment__contact",
            "enrollment__sequence",
            "event",
        )
    )
    outcomes: dict[str, int] = {}
    prefetched = _prefetch_lookups(tasks)
    for task in tasks:
        if time.monotonic() > deadline:
            break
        if not _claim(task):
            continue
        outcome = _execute_one(task, prefetched=prefetched)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def _prefetch_lookups(tasks: list[SyncTask]) -> dict[int, dict[str, list[dict]]]:
    """For bulk work, look many emails up in one search per site (25 emails a request)."""
    by_account: dict[int, list[SyncTask]] = {}
    for t in tasks:
        if t.kind == SyncTask.Kind.SYNC and t.account and t.account.is_connected:
            by_account.setdefault(t.account_id, []).append(t)
    result: dict[int, dict[str, list[dict]]] = {}
    for account_tasks in by_account.values():
        if len(account_tasks) < 2:
            continue
        account = account_tasks[0].account
        emails = [t.enrollment.contact.email for t in account_tasks]
        known = set(
            CandidateLink.objects.filter(
                site=account.site, email__in=emails, candidate_id__isnull=False
            ).values_list("email", flat=True)
        )
        wanted = [e for e in emails if e not in known]
        if not wanted:
            continue
        try:
            found = _client(account, bulk=True).find_candidates_by_emails(wanted)
        except (CatsError, BudgetExhausted, crypto.KeyDecryptionError):
            continue  # each task then looks up on its own and handles the error
        result.setdefault(account.site_id, {}).update(found)
    return result


def _execute_one(task: SyncTask, *, prefetched) -> str:
    es = EnrollmentSync.objects.filter(enrollment_id=task.enrollment_id).first()
    if es is None:
        es = enrollment_sync_capture(enrollment=task.enrollment)
    account = task.account
    try:
        if account is None or account.status != CatsAccount.Status.CONNECTED:
            _finish(task, SyncTask.State.PAUSED, "", ERR_AUTH if account else MSG_NOT_CONNECTED)
            return "paused"
        bulk = task.priority == SyncTask.Priority.BULK
        client = _client(account, bulk=bulk)
        if task.kind == SyncTask.Kind.SYNC:
            outcome = _sync_enrollment(task, es, account, client, prefetched)
        elif task.kind == SyncTask.Kind.DEDUP:
            outcome = _dedup_check(es, account, client, prefetched)
        else:
            outcome = _process_event(task, es, account, client)
        _finish(task, SyncTask.State.DONE, outcome)
        if outcome in ("created", "linked") or task.kind != SyncTask.Kind.DEDUP:
            _clear_transient_error(es)
        return outcome
    except crypto.KeyDecryptionError as exc:
        _set_error(es, EnrollmentSync.Error.AUTH, str(exc))
        _finish(task, SyncTask.State.PAUSED, "", str(exc))
        return "paused"
    except CatsAuthError:
        _mark_invalid(account)
        _set_error(es, EnrollmentSync.Error.AUTH, ERR_AUTH)
        _finish(task, SyncTask.State.PAUSED, "", ERR_AUTH)
        return "paused"
    except BudgetExhausted as exc:
        message = ERR_BUDGET.format(at=timezone.localtime(exc.until))
        _retry(task, es, exc.until, message, EnrollmentSync.Error.RATE_LIMITED, count=False)
        return "waiting"
    except CatsRateLimited as exc:
        until = budget_block(site_id=account.site_id, seconds=exc.retry_after)
        message = ERR_RATE.format(at=timezone.localtime(until))
        _retry(task, es, until, message, EnrollmentSync.Error.RATE_LIMITED, count=False)
        return "waiting"
    except CatsUnavailable:
        if task.attempts >= MAX_UNAVAILABLE_ATTEMPTS:
            message = ERR_UNAVAILABLE_GAVE_UP.format(n=task.attempts)
            _set_error(es, EnrollmentSync.Error.UNAVAILABLE, message)
            _finish(task, SyncTask.State.FAILED, "", message)
            return "failed"
        delay = min(BACKOFF_BASE_SECONDS * 2 ** (task.attempts - 1), BACKOFF_CAP_SECONDS)
        delay = delay * (0.5 + random.random() / 2)  # jitter: workers must not stampede
        at = timezone.now() + timedelta(seconds=delay)
        _retry(task, es, at, ERR_UNAVAILABLE, EnrollmentSync.Error.UNAVAILABLE)
        return "waiting"
    except _Retry as exc:
        _retry(task, es, exc.at, exc.message, exc.code, count=False)
        return "waiting"
    except _Permanent as exc:
        _set_error(es, exc.code, exc.message)
        _finish(task, SyncTask.State.FAILED, "", exc.message)
        return "failed"
    except (CatsRejected, CatsNotFound) as exc:
        message = ERR_REJECTED.format(message=exc.message)[:500]
        _set_error(es, EnrollmentSync.Error.REJECTED, message)
        _finish(task, SyncTask.State.FAILED, "", message)
        return "failed"


class _Permanent(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _finish(task: SyncTask, state: str, outcome: str, error: str = "") -> None:
    SyncTask.objects.filter(pk=task.pk).update(
        state=state, outcome=outcome, last_error=error[:500], claimed_at=None
    )


def _retry(task, es, at: datetime, message: str, code: str, *, count: bool = True) -> None:
    _set_error(es, code, message)
    updates = {
        "state": SyncTask.State.PENDING,
        "not_before": at,
        "last_error": message[:500],
        "claimed_at": None,
    }
    if not count:
        # Waiting for the budget or a 429 is not a failure: keep attempts for real ones.
        updates["attempts"] = F("attempts") - 1
    SyncTask.objects.filter(pk=task.pk).update(**updates)


def _set_error(es: EnrollmentSync, code: str, message: str) -> None:
    es.error_code = code
    es.error_message = message[:500]
    es.error_at = timezone.now()
    EnrollmentSync.objects.filter(pk=es.pk).update(
        error_code=code, error_message=es.error_message, error_at=es.error_at
    )


TRANSIENT_ERRORS = (
    EnrollmentSync.Error.RATE_LIMITED,
    EnrollmentSync.Error.UNAVAILABLE,
    EnrollmentSync.Error.AUTH,
    EnrollmentSync.Error.NOT_CONNECTED,
    EnrollmentSync.Error.REJECTED,
    EnrollmentSync.Error.JOB_MISSING,
)


def _clear_transient_error(es: EnrollmentSync) -> None:
    EnrollmentSync.objects.filter(pk=es.pk, error_code__in=TRANSIENT_ERRORS).update(
        error_code="", error_message="", error_at=None
    )


# --- sync one contact -------------------------------------------------------------------------


def _candidate_for(
    *,
    site: CatsSite,
    contact: Contact,
    client: CatsClient,
    worker: str,
    prefetched,
    create: bool,
    custom_fields: list[dict] | None = None,
) -> tuple[int | None, bool, bool]:
    """Returns (candidate id, created now, existed in CATS before us).

    `worker` names the claim; it is the task's id, so the same task retrying after a lost
    answer takes its own claim back at once, and looks the email up before creating.
    """
    email = contact.email
    try:
        with transaction.atomic():
            link, _ = CandidateLink.objects.get_or_create(site=site, email=email)
    except IntegrityError:
        link = CandidateLink.objects.get(site=site, email=email)
    if link.candidate_id:
        return link.candidate_id, False, not _created_for_this(link, contact)
    now = timezone.now()
    if not create:
        found = _lookup(client, site, email, prefetched)
        if found:
            CandidateLink.objects.filter(pk=link.pk, candidate_id=None).update(
                candidate_id=found, created_by_us=False
            )
        return found, False, bool(found)
    # Claim the email: whoever holds it is the only one allowed to create.
    previous_claim = link.claimed_by
    took = CandidateLink.objects.filter(
        Q(claimed_by="") | Q(claimed_by=worker) | Q(claimed_at__lt=now - CLAIM_LEASE),
        pk=link.pk,
        candidate_id=None,
    ).update(claimed_by=worker, claimed_at=now)
    if not took:
        link.refresh_from_db()
        if link.candidate_id:
            return link.candidate_id, False, False
        raise _Retry(now + timedelta(seconds=15), "Another worker is syncing this email")
    # A claim left behind means an earlier create may have happened: look before creating.
    use_prefetch = not previous_claim
    found = _lookup(client, site, email, prefetched if use_prefetch else None)
    if found:
        CandidateLink.objects.filter(pk=link.pk).update(
            candidate_id=found,
            claimed_by="",
            claimed_at=None,
            created_by_us=bool(previous_claim),
        )
        return found, False, not previous_claim
    payload = _candidate_payload(contact)
    try:
        candidate_id = client.create_candidate(**payload, custom_fields=custom_fields or None)
    except CatsRejected:
        if not custom_fields:
            raise
        # A refused field value must not block the contact: create without the fields, and
        # let the field step set them one by one, naming the one CATS refuses.
        candidate_id = client.create_candidate(**payload)
        custom_fields.clear()
    CandidateLink.objects.filter(pk=link.pk).update(
        candidate_id=candidate_id, claimed_by="", claimed_at=None, created_by_us=True
    )
    return candidate_id, True, False


def _created_for_this(link: CandidateLink, contact: Contact) -> bool:
    """Whether a link we hold was made by syncing this very contact (not a teammate's)."""
    return (
        link.created_by_us
        and EnrollmentSync.objects.filter(
            enrollment__contact=contact, candidate_id=link.candidate_id, created_candidate=True
        ).exists()
    )


def _lookup(client: CatsClient, site: CatsSite, email: str, prefetched) -> int | None:
    rows = None
    if prefetched is not None:
        rows = prefetched.get(site.pk, {}).get(email)
    if rows is None:
        rows = client.find_candidates_by_email(email)
    ids = sorted(int(r["id"]) for r in rows if r.get("id") is not None)
    return ids[0] if ids else None


def _candidate_payload(contact: Contact) -> dict:
    first = contact.first_name or contact.email.split("@")[0]
    last = contact.last_name or "-"
    return {
        "first_name": first,
        "last_name": last,
        "email": contact.email,
        "phone": contact.phone or None,
        "title": contact.title or None,
        "current_employer": contact.company or None,
        "source": SOURCE,
    }


def _sync_enrollment(task, es: EnrollmentSync, account, client, prefetched) -> str:
    enrollment = task.enrollment
    if es.synced_at:
        return "skipped"
    site = account.site
    if es.site_id and es.site_id != site.pk:
        # The owner reconnected to another CATS site: ids of the old one mean nothing here.
        es.candidate_id = es.pipeline_id = es.status_id = None
    es.site = site
    created_now = False
    if es.field_mapping is None:
        # The mapping in force at the first sync stays with the contact (spec note).
        es.field_mapping = _mapping_snapshot(account)
        EnrollmentSync.objects.filter(pk=es.pk).update(field_mapping=es.field_mapping)
    inline = _field_values(es, enrollment)
    inline_payload = [
        {"id": int(spec["field_id"]), "value": value} for value_key, (spec, value) in inline.items()
    ]
    if not es.candidate_id:
        candidate_id, created_now, existed = _candidate_for(
            site=site,
            contact=enrollment.contact,
            client=client,
            worker=f"task-{task.pk}",
            prefetched=prefetched,
            create=True,
            custom_fields=inline_payload,
        )
        es.candidate_id = candidate_id
        es.created_candidate = created_now
        if existed and account.deduplication:
            es.exists_in_cats = True
        EnrollmentSync.objects.filter(pk=es.pk).update(
            site=site,
            candidate_id=candidate_id,
            created_candidate=created_now,
            exists_in_cats=es.exists_in_cats,
        )
    if es.job_id and not es.pipeline_id:
        try:
            es.pipeline_id = client.add_candidate_to_job(es.candidate_id, es.job_id)
        except (CatsNotFound, CatsRejected) as exc:
            # CATS does not say which of the two ids it refused: ask about each.
            if _missing(client.get_job, es.job_id):
                raise _Permanent(
                    EnrollmentSync.Error.JOB_MISSING, ERR_JOB_MISSING.format(job_id=es.job_id)
                ) from exc
            if _missing(client.get_candidate, es.candidate_id):
                _forget_candidate(site, es)
                raise _Retry(timezone.now() + timedelta(seconds=5), ERR_CANDIDATE_DELETED) from exc
            raise
        EnrollmentSync.objects.filter(pk=es.pk).update(pipeline_id=es.pipeline_id)
    if created_now and inline_payload:
        sent_ids = {f["id"] for f in inline_payload}
        es.field_values_sent = {
            k: v for k, (spec, v) in inline.items() if int(spec["field_id"]) in sent_ids
        }
        EnrollmentSync.objects.filter(pk=es.pk).update(field_values_sent=es.field_values_sent)
    _update_fields(es, enrollment, client)
    with transaction.atomic():
        locked = EnrollmentSync.objects.select_for_update().get(pk=es.pk)
        locked.synced_at = timezone.now()
        locked.save(update_fields=["synced_at", "updated_at"])
        _backfill_events(enrollment, account)
    return "created" if created_now else "linked"


def _missing(get, cats_id: int) -> bool:
    try:
        get(cats_id)
    except CatsNotFound:
        return True
    return False


def _forget_candidate(site: CatsSite, es: EnrollmentSync) -> None:
    """A recruiter deleted the candidate in CATS: the next run looks it up or creates it."""
    CandidateLink.objects.filter(site=site, candidate_id=es.candidate_id).update(
        candidate_id=None, claimed_by="", claimed_at=None, created_by_us=False
    )
    EnrollmentSync.objects.filter(pk=es.pk).update(candidate_id=None, created_candidate=False)


def _backfill_events(enrollment: Enrollment, account: CatsAccount) -> None:
    for event in EmailEvent.objects.filter(enrollment=enrollment).order_by("occurred_at"):
        _task_create(kind=SyncTask.Kind.EVENT, enrollment=enrollment, account=account, event=event)


def _dedup_check(es: EnrollmentSync, account, client, prefetched) -> str:
    contact = es.enrollment.contact
    candidate_id, _, existed = _candidate_for(
        site=account.site,
        contact=contact,
        client=client,
        worker="",
        prefetched=prefetched,
        create=False,
    )
    if candidate_id and existed:
        EnrollmentSync.objects.filter(pk=es.pk).update(exists_in_cats=True)
        return "exists"
    return "absent"


# --- email events: activities, statuses, custom fields ----------------------------------------

KIND_WORDS = {
    EmailEvent.Kind.MESSAGE_SENT: "Email sent",
    EmailEvent.Kind.REPLY_RECEIVED: "Reply received",
    EmailEvent.Kind.BOUNCED: "Email bounced",
    EmailEvent.Kind.UNSUBSCRIBED: "Unsubscribed",
}
STATUS_MESSAGED = "Messaged"
STATUS_REPLIED = "Replied"
STATUS_FOR_SENTIMENT = {
    Enrollment.Sentiment.INTERESTED: "Interested",
    Enrollment.Sentiment.NOT_INTERESTED: "Not Interested",
}
SNIPPET_CHARS = 280


def activity_notes(event: EmailEvent, sequence: Sequence) -> str:
    lines = [f"{KIND_WORDS[event.kind]} — Interseller sequence “{sequence.title}”"]
    if event.subject:
        lines.append(f"Subject: {event.subject}")
    if event.kind == EmailEvent.Kind.REPLY_RECEIVED and event.sentiment:
        lines.append(f"Sentiment: {event.get_sentiment_display()}")
    if event.snippet:
        snippet = " ".join(event.snippet.split())
        if len(snippet) > SNIPPET_CHARS:
            snippet = snippet[: SNIPPET_CHARS - 1] + "…"
        lines.append(f"“{snippet}”")
    # Lets a retry after a lost answer find the activity it may already have written.
    lines.append(f"(Interseller event {event.external_id})")
    return "\n".join(lines)


def _process_event(task, es: EnrollmentSync, account, client) -> str:
    with transaction.atomic():
        locked = EnrollmentSync.objects.select_for_update().get(pk=es.pk)
        if not locked.synced_at or not locked.candidate_id:
            return "deferred"  # the sync backfills it
    event = task.event
    enrollment = task.enrollment
    if account.activity_tracking:
        _write_activity(event, locked, enrollment, client)
    if account.status_sync and locked.pipeline_id:
        for title in _statuses_for(event):
            _advance_status(locked, account, client, title)
    _update_fields(locked, enrollment, client)
    return "done"


def _write_activity(event: EmailEvent, es: EnrollmentSync, enrollment, client) -> None:
    try:
        with transaction.atomic():
            link, _ = ActivityLink.objects.get_or_create(event=event, defaults={"site": es.site})
    except IntegrityError:
        link = ActivityLink.objects.get(event=event)
    if link.activity_id:
        return
    marker = f"(Interseller event {event.external_id})"
    if link.attempted_at:
        for row in client.list_candidate_activities(es.candidate_id):
            if marker in str(row.get("notes") or ""):
                ActivityLink.objects.filter(pk=link.pk).update(activity_id=int(row["id"]))
                return
    ActivityLink.objects.filter(pk=link.pk).update(attempted_at=timezone.now())
    activity_id = client.create_activity(
        es.candidate_id,
        type="email",
        regarding_id=es.job_id,
        notes=activity_notes(event, enrollment.sequence),
        date=event.occurred_at,
    )
    ActivityLink.objects.filter(pk=link.pk).update(activity_id=activity_id)


def _statuses_for(event: EmailEvent) -> list[str]:
    if event.kind == EmailEvent.Kind.MESSAGE_SENT:
        return [STATUS_MESSAGED]
    if event.kind == EmailEvent.Kind.REPLY_RECEIVED:
        titles = [STATUS_REPLIED]
        if event.sentiment in STATUS_FOR_SENTIMENT:
            titles.append(STATUS_FOR_SENTIMENT[event.sentiment])
        return titles
    return []


def _workflow_statuses(account, client, workflow_id: int) -> list[CatsWorkflowStatus]:
    rows = list(CatsWorkflowStatus.objects.filter(site=account.site, workflow_id=workflow_id))
    if not rows:
        workflows_refresh_with(account=account, client=client)
        rows = list(CatsWorkflowStatus.objects.filter(site=account.site, workflow_id=workflow_id))
    return rows


def workflows_refresh_with(*, account: CatsAccount, client: CatsClient) -> None:
    site = account.site
    with transaction.atomic():
        CatsWorkflowStatus.objects.filter(site=site).delete()
        for wf in client.list_workflows():
            for position, status in enumerate(client.list_workflow_statuses(int(wf["id"]))):
                triggers = status.get("triggers") or []
                CatsWorkflowStatus.objects.create(
                    site=site,
                    workflow_id=int(wf["id"]),
                    workflow_title=wf.get("title") or "",
                    cats_id=int(status["id"]),
                    title=status.get("title") or "",
                    position=position,
                    trigger_ids=[int(t["id"]) for t in triggers if isinstance(t, dict)],
                )
        CatsSite.objects.filter(pk=site.pk).update(workflows_refreshed_at=timezone.now())


def _advance_status(es: EnrollmentSync, account, client, title: str) -> None:
    """Forward only: never undo progress a recruiter made in CATS; repeats cost nothing."""
    job = CatsJob.objects.filter(site=account.site, cats_id=es.job_id).first()
    workflow_id = job.workflow_id if job and job.workflow_id else None
    if workflow_id is None and es.status_id:
        # The status we set last tells the workflow without asking CATS.
        workflow_id = (
            CatsWorkflowStatus.objects.filter(site=account.site, cats_id=es.status_id)
            .values_list("workflow_id", flat=True)
            .first()
        )
    pipeline = None
    if workflow_id is None:
        pipeline = client.get_pipeline(es.pipeline_id)
        workflow_id = int(pipeline.get("workflow_id") or 0)
    statuses = _workflow_statuses(account, client, workflow_id)
    by_id = {s.cats_id: s for s in statuses}
    target = next((s for s in statuses if s.title == title), None)
    if target is None:
        workflow_title = statuses[0].workflow_title if statuses else f"#{workflow_id}"
        _set_error(
            es,
            EnrollmentSync.Error.STATUS_MISSING,
            ERR_STATUS_MISSING.format(status=title, workflow=workflow_title),
        )
        return
    known = by_id.get(es.status_id) if es.status_id else None
    if known is not None and known.position >= target.position:
        return
    if pipeline is None:
        pipeline = client.get_pipeline(es.pipeline_id)
    current = by_id.get(_as_int(pipeline.get("status_id")))
    if current is not None and current.position >= target.position:
        es.status_id = current.cats_id
        EnrollmentSync.objects.filter(pk=es.pk).update(status_id=current.cats_id)
        return
    try:
        client.change_pipeline_status(
            es.pipeline_id,
            target.cats_id,
            fire_triggers=account.fire_triggers,
            trigger_ids=list(target.trigger_ids),
        )
    except CatsRejected as exc:
        _set_error(
            es, EnrollmentSync.Error.REJECTED, f"CATS refused status '{title}': {exc.message}"[:500]
        )
        return
    es.status_id = target.cats_id
    EnrollmentSync.objects.filter(pk=es.pk).update(status_id=target.cats_id)


def _as_int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# --- custom field mapping ---------------------------------------------------------------------

DATE_VALUES = (
    FieldMapping.Value.FIRST_MESSAGED_AT,
    FieldMapping.Value.LAST_MESSAGED_AT,
    FieldMapping.Value.RESPONDED_AT,
)
BOOL_VALUES = (FieldMapping.Value.BOUNCED, FieldMapping.Value.UNSUBSCRIBED)
TEXT_TYPES = ("text", "textarea")
# Which CATS field types can hold each value.
COMPATIBLE_TYPES = {
    FieldMapping.Value.SEQUENCE_TITLE: TEXT_TYPES,
    FieldMapping.Value.BOUNCED: ("checkbox", *TEXT_TYPES),
    FieldMapping.Value.UNSUBSCRIBED: ("checkbox", *TEXT_TYPES),
    FieldMapping.Value.FIRST_MESSAGED_AT: ("date", *TEXT_TYPES),
    FieldMapping.Value.LAST_MESSAGED_AT: ("date", *TEXT_TYPES),
    FieldMapping.Value.RESPONDED_AT: ("date", *TEXT_TYPES),
}
MSG_MAPPING_INCOMPATIBLE = (
    "The CATS field “{name}” is a {type} field and cannot hold {value}. "
    "Choose a field of type: {types}."
)


def mapping_check(*, value: str, field: CatsCustomField) -> None:
    allowed = COMPATIBLE_TYPES[value]
    if field.field_type not in allowed:
        raise ValidationError(
            MSG_MAPPING_INCOMPATIBLE.format(
                name=field.name,
                type=field.field_type,
                value=FieldMapping.Value(value).label,
                types=", ".join(allowed),
            )
        )


def _mapping_snapshot(account: CatsAccount) -> dict:
    return {
        m.value: {"field_id": m.field_id, "field_name": m.field_name, "field_type": m.field_type}
        for m in account.mappings.all()
    }


def _raw_value(value_key: str, enrollment: Enrollment):
    if value_key == FieldMapping.Value.SEQUENCE_TITLE:
        return enrollment.sequence.title
    if value_key == FieldMapping.Value.BOUNCED:
        return enrollment.state == Enrollment.State.BOUNCED
    if value_key == FieldMapping.Value.UNSUBSCRIBED:
        return enrollment.state == Enrollment.State.UNSUBSCRIBED
    return getattr(enrollment, value_key)


def convert_value(raw, field_type: str):
    """Our value in the shape the CATS field type wants; None means "nothing to send"."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        return raw if field_type == "checkbox" else ("Yes" if raw else "No")
    if isinstance(raw, datetime):
        local = timezone.localtime(raw)
        return local.date().isoformat() if field_type == "date" else local.isoformat()
    return str(raw)


def _field_values(es: EnrollmentSync, enrollment: Enrollment) -> dict:
    values = {}
    for value_key, spec in (es.field_mapping or {}).items():
        converted = convert_value(_raw_value(value_key, enrollment), spec.get("field_type", ""))
        if converted is not None:
            values[value_key] = (spec, converted)
    return values


def _update_fields(es: EnrollmentSync, enrollment: Enrollment, client) -> None:
    """Send mapped values that changed since last sent; one bad field never stops the rest."""
    if not es.field_mapping or not es.candidate_id:
        return
    enrollment.refresh_from_db()
    sent = dict(es.field_values_sent or {})
    for value_key, (spec, value) in _field_values(es, enrollment).items():
        if sent.get(value_key) == value:
            continue
        name = spec.get("field_name") or f"#{spec['field_id']}"
        try:
            client.set_candidate_custom_field(es.candidate_id, int(spec["field_id"]), value)
        except CatsNotFound:
            _set_error(es, EnrollmentSync.Error.FIELD, ERR_FIELD_MISSING.format(name=name))
            continue
        except CatsRejected as exc:
            _set_error(
                es,
                EnrollmentSync.Error.FIELD,
                ERR_FIELD_REJECTED.format(name=name, message=exc.message)[:500],
            )
            continue
        sent[value_key] = value
        EnrollmentSync.objects.filter(pk=es.pk).update(field_values_sent=sent)
    es.field_values_sent = sent


# --- settings check ---------------------------------------------------------------------------

REQUIRED_STATUSES = (STATUS_MESSAGED, STATUS_REPLIED, *STATUS_FOR_SENTIMENT.values())


@dataclass(frozen=True)
class Finding:
    ok: bool
    message: str
    fix: str = ""


def cats_settings_check(*, account: CatsAccount) -> list[Finding]:
    """Read CATS once and say, before anything syncs, what would fail and how to fix it."""
    findings: list[Finding] = []
    if not account.is_connected:
        return [Finding(False, "CATS is not connected.", "Connect CATS with a subdomain and key.")]
    client = _client(account, budget=False)
    try:
        client.get_site()
    except CatsAuthError:
        _mark_invalid(account)
        return [
            Finding(
                False,
                "CATS rejected the API key.",
                "Make a new key in CATS (Administration → API Keys) and reconnect.",
            )
        ]
    except (CatsError, crypto.KeyDecryptionError) as exc:
        return [Finding(False, f"CATS could not be reached: {exc}", "Try again in a minute.")]
    findings.append(Finding(True, f"The API key works for {account.site}."))
    try:
        jobs_refresh(account=account)
        workflows_refresh_with(account=account, client=client)
        custom_fields_refresh(account=account)
    except CatsError as exc:
        return [*findings, Finding(False, f"CATS could not be read: {exc}", "Try again.")]
    site = account.site
    jobs = {j.cats_id: j for j in CatsJob.objects.filter(site=site)}
    wanted: list[tuple[str, int]] = []
    if account.default_job_id:
        wanted.append(("The default job order", account.default_job_id))
    for seq_sync in SequenceSync.objects.filter(
        sequence__owner=account.membership, sequence__archived=False, job_id__isnull=False
    ).select_related("sequence"):
        wanted.append((f"The job order of sequence “{seq_sync.sequence.title}”", seq_sync.job_id))
    workflow_ids: set[int] = set()
    for label, job_id in wanted:
        job = jobs.get(job_id)
        if job is None or not job.exists:
            findings.append(
                Finding(
                    False,
                    f"{label} (#{job_id}) does not exist in CATS.",
                    "Choose another job order, or leave it blank.",
                )
            )
            continue
        if not job.is_open:
            findings.append(
                Finding(
                    False,
                    f"{label} “{job.title}” is {job.status_title or 'closed'} in CATS.",
                    "Reopen it in CATS or choose an open job order.",
                )
            )
        else:
            findings.append(Finding(True, f"{label} “{job.title}” is open."))
        if job.workflow_id:
            workflow_ids.add(job.workflow_id)
    if account.status_sync:
        statuses = CatsWorkflowStatus.objects.filter(site=site, workflow_id__in=workflow_ids)
        by_workflow: dict[int, tuple[str, set[str]]] = {}
        for s in statuses:
            by_workflow.setdefault(s.workflow_id, (s.workflow_title, set()))[1].add(s.title)
        for title_, names in by_workflow.values():
            missing = [t for t in REQUIRED_STATUSES if t not in names]
            if missing:
                findings.append(
                    Finding(
                        False,
                        f"Workflow “{title_}” has no status "
                        + ", ".join(f"“{m}”" for m in missing)
                        + ".",
                        "Add the statuses in CATS with exactly these names (Settings → Workflows), "
                        "or turn off “advance statuses”.",
                    )
                )
            else:
                findings.append(Finding(True, f"Workflow “{title_}” has all four statuses."))
    fields = {f.cats_id: f for f in CatsCustomField.objects.filter(site=site)}
    for mapping in account.mappings.all():
        label = mapping.get_value_display()
        cf = fields.get(mapping.field_id)
        if cf is None or not cf.exists:
            findings.append(
                Finding(
                    False,
                    f"{label} is mapped to a custom field that no longer exists in CATS "
                    f"(“{mapping.field_name}”).",
                    "Map it to an existing field or remove the mapping.",
                )
            )
            continue
        try:
            mapping_check(value=mapping.value, field=cf)
        except ValidationError as exc:
            findings.append(Finding(False, exc.messages[0], "Map it to a field of a fitting type."))
        else:
            findings.append(Finding(True, f"{label} → “{cf.name}” ({cf.field_type}) fits."))
    return findings
