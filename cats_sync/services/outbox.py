"""Turning changes in the outreach domain into SyncTask rows (the outbox), in the same
transaction as the change, and putting failed work back in the queue."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from interseller.models import EmailEvent, Enrollment, Sequence

from .. import queue
from ..models import CatsAccount, EnrollmentSync, ResyncRun, SequenceSync, SyncTask


def account_of(membership_id: int) -> CatsAccount | None:
    return CatsAccount.objects.select_related("site").filter(membership_id=membership_id).first()


def task_create(
    *,
    kind: str,
    enrollment: Enrollment,
    account: CatsAccount | None,
    event: EmailEvent | None = None,
    priority: int = SyncTask.Priority.LIVE,
    run: ResyncRun | None = None,
    enqueue: bool = True,
    event_is_new: bool = False,
) -> SyncTask | None:
    """An open task of this kind for this enrollment (or event), created once.

    Without a connected account the task waits, paused, for the member to (re)connect.
    `enqueue=False` leaves enqueuing to the caller, which batches ids so that a worker gets
    many contacts at once and can look their emails up in one request. `event_is_new`: the
    event was recorded in this transaction, so no task of it can exist yet (one query less).
    """
    state = SyncTask.State.PENDING
    if account is None or account.status != CatsAccount.Status.CONNECTED:
        state = SyncTask.State.PAUSED
    lookup = {"kind": kind, "enrollment": enrollment}
    if event is not None:
        existing = None if event_is_new else SyncTask.objects.filter(event=event).first()
    else:
        existing = SyncTask.objects.filter(
            **lookup, event=None, state__in=SyncTask.OPEN_STATES
        ).first()
    if existing:
        if (
            event is not None
            and existing.state == SyncTask.State.DONE
            and existing.outcome == SyncTask.Outcome.DEFERRED
        ):
            # The event arrived before its contact synced; now it can be sent.
            SyncTask.objects.filter(pk=existing.pk).update(
                state=state,
                not_before=timezone.now(),
                outcome="",
                priority=priority,
                account=account,
            )
            if state == SyncTask.State.PENDING and enqueue:
                queue.enqueue_on_commit([existing.pk])
            existing.state = state
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
        queue.enqueue_on_commit([task.pk])
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


def enrollment_sync_adopt_owner(es: EnrollmentSync, *, owner_id: int, sequence_id: int) -> None:
    """A contact added before its sequence's owner connected (or added under another owner)
    syncs through the owner's account now. Its job order comes from the sequence or the
    account; one captured for another CATS site means nothing on this one."""
    account = account_of(owner_id)
    if es.account_id == (account.pk if account else None):
        return
    old_site = es.account.site_id if es.account_id and es.account else None
    if account is not None and old_site and old_site != account.site_id:
        es.job_id = None
    es.account = account
    if es.job_id is None and account is not None:
        es.job_id = (
            SequenceSync.objects.filter(sequence_id=sequence_id)
            .values_list("job_id", flat=True)
            .first()
        ) or account.default_job_id
    es.save(update_fields=["account", "job_id", "updated_at"])


def enrollment_syncs_through_owners(
    enrollment_ids: list[int],
) -> list[tuple[int, CatsAccount | None]]:
    """What `enrollment_sync_capture` then `enrollment_sync_adopt_owner` do to each of these
    enrollments, for many at once (a resync of 100,000 is planned 500 at a time): a sync row
    for each, syncing through its sequence's owner's account. In five statements however
    many there are. Returns each enrollment id with that account."""
    rows = list(
        Enrollment.objects.filter(pk__in=enrollment_ids)
        .order_by("pk")
        .values_list("pk", "sequence_id", "sequence__owner_id")
    )
    accounts = {
        a.membership_id: a
        for a in CatsAccount.objects.select_related("site").filter(
            membership_id__in={owner_id for _, _, owner_id in rows}
        )
    }
    sequence_settings = {
        sequence_id: (enabled, job_id)
        for sequence_id, enabled, job_id in SequenceSync.objects.filter(
            sequence_id__in={sequence_id for _, sequence_id, _ in rows}
        ).values_list("sequence_id", "enabled", "job_id")
    }
    existing = {
        es.enrollment_id: es
        for es in EnrollmentSync.objects.filter(enrollment_id__in=[r[0] for r in rows])
        .select_related("account")
        .only("id", "enrollment_id", "account_id", "account__site_id", "job_id")
    }
    new, through = [], []
    changed: dict[tuple[int | None, int | None], list[int]] = {}
    for enrollment_id, sequence_id, owner_id in rows:
        account = accounts.get(owner_id)
        enabled, sequence_job = sequence_settings.get(sequence_id, (True, None))
        default_job = account.default_job_id if account else None
        es = existing.get(enrollment_id)
        if es is None:
            new.append(
                EnrollmentSync(
                    enrollment_id=enrollment_id,
                    account=account,
                    sync_enabled=enabled,
                    job_id=sequence_job or default_job,
                )
            )
        elif es.account_id != (account.pk if account else None):
            if account is not None and es.account_id and es.account.site_id != account.site_id:
                es.job_id = None  # a job order of another CATS site means nothing here
            job_id = es.job_id
            if job_id is None and account is not None:
                job_id = sequence_job or default_job
            changed.setdefault((account.pk if account else None, job_id), []).append(es.pk)
        through.append((enrollment_id, account))
    EnrollmentSync.objects.bulk_create(new, ignore_conflicts=True)
    # One UPDATE per (account, job order): a few, where bulk_update's CASE per row is slow.
    now = timezone.now()
    for (account_id, job_id), pks in changed.items():
        EnrollmentSync.objects.filter(pk__in=pks).update(
            account_id=account_id, job_id=job_id, updated_at=now
        )
    return through


def on_contact_added(*, enrollment: Enrollment, bulk: bool = False) -> None:
    """A contact was added to a sequence: sync it now (mode "when added"), or check whether
    it exists in CATS (deduplication). Work for a disconnected member waits, paused. Contacts
    added many at once are bulk work: they never go before a person's single add."""
    es = enrollment_sync_capture(enrollment=enrollment, new=True)
    account = es.account
    if account is None:
        return  # Nothing to sync through: the contact's CATS panel says so; Resync later.
    priority = SyncTask.Priority.BULK if bulk else SyncTask.Priority.LIVE
    if es.sync_enabled and account.sync_mode == CatsAccount.SyncMode.ON_ADD:
        task_create(
            kind=SyncTask.Kind.SYNC, enrollment=enrollment, account=account, priority=priority
        )
    elif account.deduplication:
        task_create(
            kind=SyncTask.Kind.DEDUP, enrollment=enrollment, account=account, priority=priority
        )


def on_contacts_added(*, enrollments: list[Enrollment], sequence: Sequence) -> None:
    """Many contacts were added to a sequence at once (an import): what on_contact_added does
    for each, as bulk work, in three queries however many they are (the sequence's settings,
    the sync rows, the tasks), and one wake of the owner's site once they commit."""
    if not enrollments:
        return
    enabled, job_id, account = _sequence_settings(sequence)
    if job_id is None and account is not None:
        job_id = account.default_job_id
    ids = [e.pk for e in enrollments]
    _insert_per_enrollment(
        EnrollmentSync, ids, account=account, sync_enabled=enabled, job_id=job_id
    )
    if account is None:
        return
    if enabled and account.sync_mode == CatsAccount.SyncMode.ON_ADD:
        kind = SyncTask.Kind.SYNC
    elif account.deduplication:
        kind = SyncTask.Kind.DEDUP
    else:
        return
    state = SyncTask.State.PENDING
    if account.status != CatsAccount.Status.CONNECTED:
        state = SyncTask.State.PAUSED
    # New enrollments have no task yet: nothing to find first, nothing to conflict with.
    _insert_per_enrollment(
        SyncTask,
        ids,
        kind=kind,
        account=account,
        priority=SyncTask.Priority.BULK,
        state=state,
        not_before=timezone.now(),
    )
    if state == SyncTask.State.PENDING and account.site_id:
        site_id = account.site_id
        transaction.on_commit(lambda: queue.enqueue_sites([site_id]), robust=True)


# Enrollments per INSERT ... SELECT: with a row's other values, under SQLite's 999 parameters.
_INSERT_IDS = 500


def _insert_per_enrollment(model, enrollment_ids: list[int], **values) -> None:
    """One row of `model` per enrollment, each saved as `model(enrollment=..., **values)`
    would be, written by INSERT ... SELECT: the same row for thousands of enrollments (an
    import) costs the database's work, not a model instance and its values in Python each.

    Like bulk_create, it sends no signal. Rows go in in the order the enrollments were created.
    """
    template = model(**values)
    fields = [
        f for f in model._meta.concrete_fields if not f.primary_key and f.name != "enrollment"
    ]
    # The values as Django would save them (defaults, auto_now); typed on PostgreSQL, where a
    # bare NULL in a SELECT list would be text.
    params = [f.get_db_prep_save(f.pre_save(template, add=True), connection) for f in fields]
    typed = connection.vendor == "postgresql"
    selected = ", ".join(
        f"CAST(%s AS {f.cast_db_type(connection)})" if typed else "%s" for f in fields
    )
    qn = connection.ops.quote_name
    columns = ", ".join(qn(f.column) for f in [*fields, model._meta.get_field("enrollment")])
    enrollment_table, enrollment_pk = Enrollment._meta.db_table, Enrollment._meta.pk.column
    with connection.cursor() as cursor:
        for start in range(0, len(enrollment_ids), _INSERT_IDS):
            ids = enrollment_ids[start : start + _INSERT_IDS]
            cursor.execute(
                f"INSERT INTO {qn(model._meta.db_table)} ({columns}) "
                f"SELECT {selected}, e.{qn(enrollment_pk)} FROM {qn(enrollment_table)} e "
                f"WHERE e.{qn(enrollment_pk)} IN ({', '.join(['%s'] * len(ids))}) "
                f"ORDER BY e.{qn(enrollment_pk)}",
                [*params, *ids],
            )


def on_email_event(*, event: EmailEvent, enrollment: Enrollment, first_reply: bool) -> None:
    es = (
        EnrollmentSync.objects.select_for_update(of=("self",))
        .select_related("account__site")
        .filter(enrollment=enrollment)
        .first()
    )
    if es is None:
        es = enrollment_sync_capture(enrollment=enrollment)
    if es.account is None and not es.synced_at:
        enrollment_sync_adopt_owner(
            es, owner_id=enrollment.sequence.owner_id, sequence_id=enrollment.sequence_id
        )
    account = es.account
    if account is None:
        return
    if es.synced_at:
        # Queued even while disconnected (paused): reconnecting must not lose the activity.
        task_create(
            kind=SyncTask.Kind.EVENT,
            enrollment=enrollment,
            account=account,
            event=event,
            event_is_new=True,
        )
        return
    if es.sync_enabled and syncs_on_event(account.sync_mode, event, first_reply=first_reply):
        task_create(kind=SyncTask.Kind.SYNC, enrollment=enrollment, account=account)
    # Otherwise the event waits: a sync backfills every event it finds.


def is_interested_reply(event: EmailEvent) -> bool:
    return (
        event.kind == EmailEvent.Kind.REPLY_RECEIVED
        and event.sentiment == Enrollment.Sentiment.INTERESTED
    )


def syncs_on_event(mode: str, event: EmailEvent, *, first_reply: bool) -> bool:
    """Whether this event makes a never-synced contact sync, in this sync mode. In mode "with
    interest" any interested reply does, not only the first reply (a contact may say "not now"
    before saying yes)."""
    if mode == CatsAccount.SyncMode.ON_REPLY:
        return first_reply
    if mode == CatsAccount.SyncMode.ON_INTEREST:
        return is_interested_reply(event)
    return False


@transaction.atomic
def sync_retry(*, enrollment_ids: Iterable[int]) -> int:
    """Put failed work of these enrollments back in the queue (after a person fixed it).

    Re-running a task repeats only what is not done yet: every step records what it did. A
    failed task whose work is already queued again (a resync since) is closed instead.
    """
    ids: list[int] = []
    for task in SyncTask.objects.filter(
        enrollment_id__in=list(enrollment_ids), state=SyncTask.State.FAILED
    ):
        superseded = (
            task.event_id is None
            and SyncTask.objects.filter(
                kind=task.kind,
                enrollment_id=task.enrollment_id,
                event=None,
                state__in=SyncTask.OPEN_STATES,
            ).exists()
        )
        if superseded:
            SyncTask.objects.filter(pk=task.pk).update(
                state=SyncTask.State.DONE, outcome=SyncTask.Outcome.SUPERSEDED
            )
            continue
        ids.append(task.pk)
    SyncTask.objects.filter(pk__in=ids).update(
        state=SyncTask.State.PENDING,
        attempts=0,
        not_before=timezone.now(),
        last_error="",
        waiting_on="",
    )
    queue.enqueue_on_commit(ids)
    return len(ids)
