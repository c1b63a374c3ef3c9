"""CATS sync services: connecting, settings and cached CATS metadata, turning domain changes
into SyncTask rows, resync, retry, clone, and the settings check. `sync.py` runs the tasks.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from interseller.models import EmailEvent, Enrollment, Membership, Sequence

from . import crypto
from .budget import (
    BULK_RESERVE_FRACTION,
    budget_observe,
    budget_take,
    budget_view,
)
from .client import (
    CatsAuthError,
    CatsClient,
    CatsError,
    CatsRateLimited,
    CatsUnavailable,
)
from .models import (
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


# --- statuses and cached workflows ----------------------------------------------------------

STATUS_MESSAGED = "Messaged"
STATUS_REPLIED = "Replied"
STATUS_FOR_SENTIMENT = {
    Enrollment.Sentiment.INTERESTED: "Interested",
    Enrollment.Sentiment.NOT_INTERESTED: "Not Interested",
}


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


# --- custom field mapping ---------------------------------------------------------------------

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
