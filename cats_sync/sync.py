"""The sync engine: running SyncTask rows against CATS.

Every step is idempotent on the ids we keep (CandidateLink, EnrollmentSync, ActivityLink), so a
task that runs twice, or after its answer was lost, never creates anything twice. Tasks are
claimed one at a time with a conditional update; errors split into waits (budget, 429),
retries with backoff (outages), pauses (the key was refused) and failures that wait for a person.
"""

from __future__ import annotations

import random
import time
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from interseller.models import Contact, EmailEvent, Enrollment, Sequence

from . import crypto
from .budget import BudgetExhausted, budget_block
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
    CatsJob,
    CatsSite,
    CatsWorkflowStatus,
    EnrollmentSync,
    FieldMapping,
    SyncTask,
)
from .services import (
    ERR_AUTH,
    ERR_BUDGET,
    ERR_CANDIDATE_DELETED,
    ERR_FIELD_MISSING,
    ERR_FIELD_REJECTED,
    ERR_JOB_MISSING,
    ERR_RATE,
    ERR_REJECTED,
    ERR_STATUS_MISSING,
    ERR_UNAVAILABLE,
    ERR_UNAVAILABLE_GAVE_UP,
    MSG_NOT_CONNECTED,
    STATUS_FOR_SENTIMENT,
    STATUS_MESSAGED,
    STATUS_REPLIED,
    _client,
    _mark_invalid,
    _task_create,
    enrollment_sync_capture,
    workflows_refresh_with,
)

SOURCE = "Interseller"
CLAIM_LEASE = timedelta(minutes=5)  # longer than any one task may run (Q_TIMEOUT)
RUNNING_LEASE = timedelta(minutes=10)
# A batch starts no new task after this long: well inside Q_TIMEOUT (240 s by default).
BATCH_SECONDS = 120
MAX_UNAVAILABLE_ATTEMPTS = 10
BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 3600


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


# --- mapped custom field values --------------------------------------------------------------


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
