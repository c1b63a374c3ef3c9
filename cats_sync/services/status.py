"""Where a contact stands with CATS, in words a recruiter can act on, read from the rows we keep
(no second source of truth, no CATS request).

`enrollment_states` answers for many enrollments at once (a changelist page); `enrollment_panel`
gives one enrollment's whole story for its CATS panel: its state, the candidate and pipeline,
and a timeline built from its enrollment, tasks, links, events and issues.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings

from interseller.models import EmailEvent, Enrollment, Membership

from ..models import (
    ActivityLink,
    CandidateLink,
    CatsAccount,
    CatsJob,
    CatsWorkflowStatus,
    EnrollmentSync,
    PipelineObservation,
    SyncIssue,
    SyncTask,
)
from .resync import interested_replies


class State:
    """One wording per state, used by columns, filters, the panel and the health page."""

    SYNCED = "Synced"
    EXISTS = "Synced · Exists in CATS"
    QUEUED = "Queued"
    WAITING = "Waiting: {why}"
    WAITS_FOR_REPLY = "Not synced: waits for a reply"
    WAITS_FOR_INTEREST = "Not synced: waiting for an interested reply"
    SEQUENCE_OFF = "Not synced: sync is off for this sequence"
    MODE_OFF = "Not synced: {owner}'s sync mode is Off"
    NO_CONNECTION = "Not synced: no CATS connection for {owner}"
    NEVER_QUEUED = "Not synced: use Resync to CATS"
    KEY_REFUSED = "Paused: key refused by CATS, reconnect"
    KEY_UNREADABLE = "Paused: stored key unreadable"
    DISCONNECTED = "Paused: {owner} disconnected CATS"
    FAILED = "Failed: {message}"


@dataclass(frozen=True)
class CatsState:
    words: str
    # ok: synced; busy: queued or waiting; stopped: not synced for a reason; failed: needs Retry
    tone: str
    since: datetime | None = None
    can_resync: bool = False
    can_retry: bool = False


def state_of(
    enrollment: Enrollment,
    es: EnrollmentSync | None,
    account: CatsAccount | None,
    tasks: list[SyncTask],
    blocking_issue: SyncIssue | None,
    owner: str = "its owner",
    interested: bool | None = None,
) -> CatsState:
    """The state in words. `tasks` are the enrollment's sync and event tasks, newest first;
    `account` the one it syncs through (captured, else its sequence owner's); `owner` the
    name of that account's member; `interested` whether it ever had an interested reply
    (unknown: its latest sentiment says)."""
    open_task = next((t for t in tasks if t.state in SyncTask.OPEN_STATES), None)
    failed = next((t for t in tasks if t.state == SyncTask.State.FAILED), None)
    problem = None
    if blocking_issue is not None:
        problem = blocking_issue.message
    elif es is not None and es.error_code and es.error_code != EnrollmentSync.Error.EXISTS_IN_CATS:
        problem = es.error_message
    elif failed is not None:
        problem = failed.last_error
    if es is not None and es.stopped_at is not None:
        # The words say what CATS did ("Stopped by CATS: moved to “Submitted” in CATS").
        return CatsState(es.stopped_words or "Stopped by CATS", "stopped", es.stopped_at)
    if problem and open_task is None:
        since = es.error_at if es is not None and es.error_at else None
        words = State.FAILED.format(message=problem)
        return CatsState(words, "failed", since, can_retry=failed is not None)
    if es is not None and es.synced_at:
        words = State.EXISTS if es.exists_in_cats else State.SYNCED
        return CatsState(words, "ok", es.synced_at)
    if open_task is not None:
        if open_task.state == SyncTask.State.PAUSED:
            if account is not None and account.status == CatsAccount.Status.INVALID:
                return CatsState(State.KEY_REFUSED, "stopped", open_task.updated_at)
            if account is not None and account.status == CatsAccount.Status.DISCONNECTED:
                return CatsState(State.DISCONNECTED.format(owner=owner), "stopped")
            return CatsState(State.KEY_UNREADABLE, "stopped", open_task.updated_at)
        if open_task.waiting_on and open_task.last_error:
            return CatsState(
                State.WAITING.format(why=open_task.last_error), "busy", open_task.updated_at
            )
        return CatsState(State.QUEUED, "busy", open_task.created_at)
    if account is None or account.status == CatsAccount.Status.DISCONNECTED:
        return CatsState(State.NO_CONNECTION.format(owner=owner), "stopped")
    if account.status == CatsAccount.Status.INVALID:
        return CatsState(State.KEY_REFUSED, "stopped")
    if es is not None and not es.sync_enabled:
        return CatsState(State.SEQUENCE_OFF, "stopped")
    if account.sync_mode == CatsAccount.SyncMode.OFF:
        return CatsState(State.MODE_OFF.format(owner=owner), "stopped")
    if account.sync_mode == CatsAccount.SyncMode.ON_REPLY and enrollment.responded_at is None:
        return CatsState(State.WAITS_FOR_REPLY, "stopped")
    if interested is None:
        interested = enrollment.sentiment == Enrollment.Sentiment.INTERESTED
    if account.sync_mode == CatsAccount.SyncMode.ON_INTEREST and not interested:
        return CatsState(State.WAITS_FOR_INTEREST, "stopped")
    return CatsState(State.NEVER_QUEUED, "stopped", can_resync=True)


def enrollment_states(enrollments: Iterable[Enrollment]) -> dict[int, CatsState]:
    """The state of each enrollment, in a handful of queries whatever their number."""
    enrollments = list(enrollments)
    ids = [e.pk for e in enrollments]
    syncs = {es.enrollment_id: es for es in EnrollmentSync.objects.filter(enrollment_id__in=ids)}
    owner_ids = {e.sequence.owner_id for e in enrollments}
    owner_accounts = {
        a.membership_id: a for a in CatsAccount.objects.filter(membership_id__in=owner_ids)
    }
    accounts = {a.pk: a for a in owner_accounts.values()}
    missing = {es.account_id for es in syncs.values() if es.account_id} - set(accounts)
    accounts.update({a.pk: a for a in CatsAccount.objects.filter(pk__in=missing)})
    member_ids = owner_ids | {a.membership_id for a in accounts.values()}
    names = {
        m.pk: m.user.get_full_name() or m.user.email
        for m in Membership.objects.filter(pk__in=member_ids).select_related("user")
    }
    tasks: dict[int, list[SyncTask]] = {}
    for task in SyncTask.objects.filter(
        enrollment_id__in=ids,
        kind__in=[SyncTask.Kind.SYNC, SyncTask.Kind.EVENT, SyncTask.Kind.PUSH],
    ).order_by("-updated_at"):
        tasks.setdefault(task.enrollment_id, []).append(task)
    interested = set(
        interested_replies().filter(enrollment_id__in=ids).values_list("enrollment_id", flat=True)
    )
    issues: dict[int, SyncIssue] = {}
    for issue in SyncIssue.objects.filter(
        enrollment_sync__enrollment_id__in=ids, blocking=True
    ).order_by("last_seen_at"):
        issues[issue.enrollment_sync_id] = issue
    states = {}
    for enrollment in enrollments:
        es = syncs.get(enrollment.pk)
        account = accounts.get(es.account_id) if es is not None and es.account_id else None
        account = account or owner_accounts.get(enrollment.sequence.owner_id)
        owner_id = account.membership_id if account else enrollment.sequence.owner_id
        states[enrollment.pk] = state_of(
            enrollment,
            es,
            account,
            tasks.get(enrollment.pk, []),
            issues.get(es.pk) if es is not None else None,
            owner=names.get(owner_id, "its owner"),
            interested=enrollment.pk in interested,
        )
    return states


# --- the panel ---


def candidate_url(subdomain: str, candidate_id: int) -> str:
    return settings.CATS_CANDIDATE_URL.format(subdomain=subdomain, candidate_id=candidate_id)


@dataclass(frozen=True)
class Moment:
    at: datetime
    words: str
    tone: str = ""  # "", "ok", "failed", "busy"


@dataclass
class Panel:
    enrollment: Enrollment
    state: CatsState
    job: str = ""
    pipeline_id: int | None = None
    status: str = ""
    status_since: datetime | None = None
    candidate_id: int | None = None
    candidate_url: str = ""
    issues: list[SyncIssue] = field(default_factory=list)
    timeline: list[Moment] = field(default_factory=list)


KIND_WORDS = {
    EmailEvent.Kind.MESSAGE_SENT: "Email sent",
    EmailEvent.Kind.REPLY_RECEIVED: "Reply received",
    EmailEvent.Kind.BOUNCED: "Email bounced",
    EmailEvent.Kind.UNSUBSCRIBED: "Unsubscribed",
}
TASK_WORDS = {
    SyncTask.Outcome.CREATED: "Candidate created in CATS",
    SyncTask.Outcome.LINKED: "Linked to a candidate already in CATS",
    SyncTask.Outcome.EXISTS: "Deduplication: the email exists in CATS",
    SyncTask.Outcome.ABSENT: "Deduplication: not in CATS yet",
    SyncTask.Outcome.CANCELLED: "Resync cancelled before this contact synced",
    SyncTask.Outcome.SUPERSEDED: "Replaced by a newer resync",
    SyncTask.Outcome.PUSHED: "Changes pushed to CATS",
    SyncTask.Outcome.UNCHANGED: "Push changes: nothing differed from CATS",
}


def enrollment_panel(enrollment: Enrollment) -> Panel:
    """One enrollment's CATS story, from our own rows."""
    state = enrollment_states([enrollment])[enrollment.pk]
    panel = Panel(enrollment=enrollment, state=state)
    es = (
        EnrollmentSync.objects.filter(enrollment=enrollment)
        .select_related("site", "account")
        .first()
    )
    timeline = [Moment(enrollment.added_at, f"Added to the sequence “{enrollment.sequence}”")]
    if es is not None:
        if es.job_id:
            # Before its first sync the contact has no site of its own yet: its job order is
            # on the site of the connection it will sync through.
            site_id = es.site_id or (es.account.site_id if es.account else None)
            job = CatsJob.objects.filter(site_id=site_id, cats_id=es.job_id).first()
            panel.job = str(job) if job else f"#{es.job_id}"
        panel.pipeline_id = es.pipeline_id
        if es.status_id:
            status = CatsWorkflowStatus.objects.filter(
                site_id=es.site_id, cats_id=es.status_id
            ).first()
            panel.status = status.title if status else f"#{es.status_id}"
            panel.status_since = es.status_seen_at
        panel.candidate_id = es.candidate_id
        if es.candidate_id and es.site is not None:
            panel.candidate_url = candidate_url(es.site.subdomain, es.candidate_id)
        panel.issues = list(es.issues.order_by("-blocking", "-last_seen_at"))
        for issue in panel.issues:
            tone = "failed" if issue.blocking else ""
            timeline.append(Moment(issue.first_seen_at, issue.message, tone))
        if es.synced_at:
            timeline.append(Moment(es.synced_at, "Synced to CATS", "ok"))
        if es.moved_at:
            words = f"Moved from job order #{es.previous_job_id or '—'} to #{es.job_id}"
            if es.push_moving:
                words += " (not finished yet)"
            timeline.append(Moment(es.moved_at, words, "busy" if es.push_moving else "ok"))
        for seen in PipelineObservation.objects.filter(enrollment_sync=es):
            source = "reconciliation" if seen.source == seen.Source.RECONCILE else "webhook"
            tone = "failed" if seen.words.startswith("Stopped by CATS") else ""
            timeline.append(Moment(seen.at, f"{seen.words} (told by CATS: {source})", tone))
        link = CandidateLink.objects.filter(
            site_id=es.site_id, email=enrollment.contact.email
        ).first()
        if link is not None and link.candidate_id and link.created_by_us:
            timeline.append(
                Moment(link.updated_at, f"CATS candidate #{link.candidate_id} is ours", "")
            )
    tasks = SyncTask.objects.filter(enrollment=enrollment).select_related("event")
    for task in tasks:
        timeline.extend(_task_moments(task))
    activities = dict(
        ActivityLink.objects.filter(event__enrollment=enrollment).values_list(
            "event_id", "activity_id"
        )
    )
    for event in EmailEvent.objects.filter(enrollment=enrollment):
        words = KIND_WORDS[event.kind]
        if event.subject:
            words += f": “{event.subject}”"
        if activities.get(event.pk):
            words += f" (logged in CATS as activity #{activities[event.pk]})"
        timeline.append(Moment(event.occurred_at, words))
    panel.timeline = sorted(timeline, key=lambda m: m.at, reverse=True)
    return panel


def _task_moments(task: SyncTask) -> list[Moment]:
    what = {
        SyncTask.Kind.SYNC: "Sync",
        SyncTask.Kind.DEDUP: "Deduplication check",
        SyncTask.Kind.EVENT: "Email event",
        SyncTask.Kind.PUSH: "Push changes to CATS",
    }[task.kind]
    moments = [Moment(task.created_at, f"{what} queued" + (" (resync)" if task.run_id else ""))]
    if task.attempts > 1:
        moments.append(Moment(task.updated_at, f"{what}: tried {task.attempts} times", "busy"))
    if task.state == SyncTask.State.DONE and task.outcome in TASK_WORDS:
        moments.append(Moment(task.updated_at, TASK_WORDS[task.outcome], "ok"))
    elif task.state == SyncTask.State.FAILED:
        moments.append(Moment(task.updated_at, f"{what} failed: {task.last_error}", "failed"))
    elif task.state in SyncTask.OPEN_STATES and task.last_error:
        moments.append(Moment(task.updated_at, task.last_error, "busy"))
    return moments
