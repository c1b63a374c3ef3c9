"""Push changes to CATS: on purpose, update contacts that already synced when their sequence's
job order or the custom field mapping changed since (the spec's resync never does).

- Job order changed: the contact is put on the new job order (a new pipeline), and the status
  our emails had reached is carried forward there in one move (never backwards). The old
  pipeline stays, unless the person ticked "remove from the old job order".
- Mapping changed: the mapped values are computed with the current mapping and only those
  that differ from what CATS holds (as we last sent or read it, on the CandidateLink) are sent.

The preview (`push_plan`) is computed from our own tables, no CATS request, and counts the
requests the run will send, contact by contact, in the order the run sends them. The run is a
ResyncRun of kind "push": planned like a resync (inline, or by a worker in chunks), its tasks
at bulk priority, each one safe to run twice (engine/push.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace

from django.db import transaction
from django.utils import timezone

from interseller.models import EmailEvent, Enrollment

from .. import messages
from ..budget import budget_view
from ..models import (
    CandidateLink,
    CatsAccount,
    CatsJob,
    CatsSite,
    CatsWorkflowStatus,
    EnrollmentSync,
    ResyncRun,
    SequenceSync,
    SyncTask,
)
from .metadata import REQUIRED_STATUSES, mapping_snapshot, statuses_for
from .resync import REQUESTS_PER_CONTACT, run_begin, run_tasks_add

# --- what both the preview and the engine use ---------------------------------------------------


def titles_reached(events: Iterable[tuple[str, str]]) -> set[str]:
    """The statuses our emails moved (or would move) a pipeline to: (kind, sentiment) pairs."""
    return {title for kind, sentiment in events for title in statuses_for(kind, sentiment)}


def carry_title(titles: set[str], statuses: list[CatsWorkflowStatus]) -> str | None:
    """The one status to carry to the new pipeline: the furthest of those reached that the
    new job's workflow has (statuses carried forward only, in one move)."""
    if not titles:
        return None
    if not statuses:
        return max(titles, key=REQUIRED_STATUSES.index)
    present = [s for s in statuses if s.title in titles]
    return max(present, key=lambda s: s.position).title if present else None


def target_job_id(
    *, sequence_job_id: int | None, account: CatsAccount | None, current: int | None
) -> int | None:
    """The job order a synced contact belongs on now: its sequence's, else the owner's default."""
    job_id = sequence_job_id or (account.default_job_id if account else None)
    return job_id or current


# --- the preview --------------------------------------------------------------------------------


@dataclass
class PushPlan:
    to_push: list[int] = field(default_factory=list)  # enrollment ids with a change
    move_job: int = 0  # of which put on a new job order
    update_fields: int = 0  # of which with mapped values to send
    unchanged: int = 0  # synced, nothing differs: no request
    blocked: dict[str, int] = field(default_factory=dict)  # reason -> count
    notes: dict[str, int] = field(default_factory=dict)  # what stays as it is, and why
    requests: int = 0  # CATS requests the run will send
    requests_by_site: dict[int, int] = field(default_factory=dict)
    remove_old: bool = False

    @property
    def change_count(self) -> int:
        return len(self.to_push)

    @property
    def blocked_total(self) -> int:
        return sum(self.blocked.values())

    def _add(self, bucket: dict[str, int], reason: str) -> None:
        bucket[reason] = bucket.get(reason, 0) + 1


def push_plan(*, enrollments, remove_old: bool = False) -> PushPlan:
    """What a push would change, and the CATS requests it costs, from our tables only."""
    plan = PushPlan(remove_old=remove_old)
    ids = list(enrollments.order_by("pk").values_list("pk", flat=True))
    world = _World()
    for start in range(0, len(ids), 2000):
        chunk = list(
            Enrollment.objects.filter(pk__in=ids[start : start + 2000])
            .select_related("sequence", "contact", "cats_sync")
            .order_by("pk")
        )
        world.load(chunk)
        for enrollment in chunk:
            _plan_line(plan, world, enrollment)
    world.settle_removals(plan)
    return plan


class _World:
    """What the preview needs to know of our records, loaded a chunk at a time, and what it
    has simulated so far (values sent, pipelines made), so that two contacts sharing a
    candidate or a pipeline are counted as the run will send them."""

    def __init__(self) -> None:
        self.accounts: dict[int, CatsAccount] = {}
        self.mappings: dict[int, dict] = {}
        self.seq_jobs: dict[int, int | None] = {}
        self.jobs: dict[tuple[int, int], CatsJob] = {}
        self.statuses: dict[tuple[int, int], list[CatsWorkflowStatus]] = {}
        self.links: dict[tuple[int, str], CandidateLink] = {}
        self.events: dict[int, set[tuple[str, str]]] = {}
        # (site, candidate, job) -> [status position or None, record fresh]
        self.pipes: dict[tuple[int, int, int], list] = {}
        self.pipes_loaded: set[tuple[int, int]] = set()
        # (site, old pipeline) -> ids of our rows on it; and the movers leaving it, in order
        self.users: dict[tuple[int, int], set[int]] = {}
        self.leaving: dict[tuple[int, int], list[int]] = {}
        self.removal_cost: dict[tuple[int, int], int] = {}

    def load(self, chunk: list[Enrollment]) -> None:
        syncs = [e.cats_sync for e in chunk if EnrollmentSync.of(e) is not None]
        account_ids = {es.account_id for es in syncs if es.account_id} - set(self.accounts)
        for account in CatsAccount.objects.filter(pk__in=account_ids).prefetch_related("mappings"):
            self.accounts[account.pk] = account
            self.mappings[account.pk] = mapping_snapshot(account)
        seq_ids = {e.sequence_id for e in chunk} - set(self.seq_jobs)
        self.seq_jobs.update({seq_id: None for seq_id in seq_ids})
        self.seq_jobs.update(
            SequenceSync.objects.filter(sequence_id__in=seq_ids).values_list(
                "sequence_id", "job_id"
            )
        )
        site_ids = {es.site_id for es in syncs if es.site_id}
        for job in CatsJob.objects.filter(site_id__in=site_ids):
            self.jobs[(job.site_id, job.cats_id)] = job
        for status in CatsWorkflowStatus.objects.filter(site_id__in=site_ids):
            key = (status.site_id, status.workflow_id)
            rows = self.statuses.setdefault(key, [])
            if status.pk not in {s.pk for s in rows}:
                rows.append(status)
        emails = {e.contact.email for e in chunk}
        for link in CandidateLink.objects.filter(site_id__in=site_ids, email__in=emails):
            self.links.setdefault((link.site_id, link.email), link)
        for enrollment_id, kind, sentiment in (
            EmailEvent.objects.filter(enrollment_id__in=[e.pk for e in chunk])
            .values_list("enrollment_id", "kind", "sentiment")
            .distinct()
        ):
            self.events.setdefault(enrollment_id, set()).add((kind, sentiment))
        # Every pipeline of ours for these candidates (whoever's sequence it is).
        pairs = {(es.site_id, es.candidate_id) for es in syncs if es.candidate_id}
        wanted = pairs - self.pipes_loaded
        self.pipes_loaded |= wanted
        candidates = {c for _, c in wanted}
        # How long the engine trusts our record of a pipeline's status without a GET.
        from ..engine.pipelines import STATUS_TRUST

        now = timezone.now()
        for row in EnrollmentSync.objects.filter(
            candidate_id__in=candidates, pipeline_id__isnull=False
        ).values(*PIPE_FIELDS):
            if (row["site_id"], row["candidate_id"]) not in wanted:
                continue
            self.users.setdefault((row["site_id"], row["pipeline_id"]), set()).add(row["pk"])
            if row["job_id"] is None:
                continue
            key = (row["site_id"], row["candidate_id"], row["job_id"])
            fresh = bool(row["status_seen_at"] and row["status_seen_at"] > now - STATUS_TRUST)
            self.pipes.setdefault(key, [self.position(row["site_id"], row["status_id"]), fresh])

    def position(self, site_id: int, status_id: int | None) -> int | None:
        if status_id is None:
            return None
        for (site, _), rows in self.statuses.items():
            if site != site_id:
                continue
            for status in rows:
                if status.cats_id == status_id:
                    return status.position
        return None

    def settle_removals(self, plan: PushPlan) -> None:
        """An old pipeline is removed once, by the last of our contacts leaving it, and only
        when none of ours stays on it."""
        for key, movers in self.leaving.items():
            if self.users.get(key, set()) - set(movers):
                reason = messages.PUSH_NOTE_OLD_KEPT_IN_USE
                plan.notes[reason] = plan.notes.get(reason, 0) + len(movers)
                continue
            plan.requests += 1
            plan.requests_by_site[key[0]] = plan.requests_by_site.get(key[0], 0) + 1


def _plan_line(plan: PushPlan, world: _World, enrollment: Enrollment) -> None:
    es = EnrollmentSync.of(enrollment)
    if es is None or not es.synced_at or not es.candidate_id:
        plan._add(plan.blocked, messages.BLOCK_PUSH_NOT_SYNCED)
        return
    account = world.accounts.get(es.account_id) if es.account_id else None
    if account is None or account.status == CatsAccount.Status.DISCONNECTED:
        plan._add(plan.blocked, messages.BLOCK_NO_CONNECTION)
        return
    if account.status == CatsAccount.Status.INVALID:
        plan._add(plan.blocked, messages.BLOCK_INVALID)
        return
    if account.sync_mode == CatsAccount.SyncMode.OFF:
        plan._add(plan.blocked, messages.BLOCK_MODE_OFF)
        return
    if account.site_id != es.site_id:
        plan._add(plan.blocked, messages.BLOCK_PUSH_OTHER_SITE)
        return
    site_id = es.site_id
    cost = 0
    moving = False
    target = target_job_id(
        sequence_job_id=world.seq_jobs.get(enrollment.sequence_id),
        account=account,
        current=es.job_id,
    )
    if es.stopped_at and not es.push_moving and target and target != es.job_id:
        # A recruiter has taken this candidate over in CATS: their pipeline is not ours to move.
        plan._add(plan.notes, messages.PUSH_NOTE_STOPPED_STAYS)
        target = es.job_id
    if es.push_moving or (target and target != es.job_id):
        moving = True
        target = es.job_id if es.push_moving else target
        job = world.jobs.get((site_id, target))
        if job is None or not job.exists:
            plan._add(plan.blocked, messages.BLOCK_PUSH_JOB_MISSING.format(job_id=target))
            return
        if not job.is_open:
            plan._add(plan.blocked, messages.BLOCK_PUSH_JOB_CLOSED.format(job=job.title))
            return
        statuses = world.statuses.get((site_id, job.workflow_id), []) if job.workflow_id else []
        title = None
        if account.status_sync:
            title = carry_title(titles_reached(world.events.get(enrollment.pk, ())), statuses)
            if title and not statuses:
                # Without the workflow cached, the engine would ask CATS for it: not counted.
                plan._add(plan.blocked, messages.BLOCK_PUSH_WORKFLOW_UNKNOWN.format(job=job.title))
                return
        wanted_position = next((s.position for s in statuses if s.title == title), None)
        key = (site_id, es.candidate_id, target)
        if es.push_moving and es.pipeline_id:
            pipe = world.pipes.setdefault(key, [world.position(site_id, es.status_id), True])
        elif key in world.pipes:
            pipe = world.pipes[key]  # ours already: no request to make it
        else:
            cost += 1
            pipe = world.pipes[key] = [None, True]
        if title:
            known = pipe[0]
            if known is None or wanted_position is None or known < wanted_position:
                cost += 1 if pipe[1] else 2
                pipe[0], pipe[1] = wanted_position, True
        old = es.previous_pipeline_id if es.push_moving else es.pipeline_id
        if plan.remove_old and old:
            world.leaving.setdefault((site_id, old), []).append(es.pk)
        elif old:
            plan._add(plan.notes, messages.PUSH_NOTE_OLD_KEPT)
    fields_cost, fields_changed = _fields_cost(world, es, enrollment, account)
    cost += fields_cost
    if not moving and not fields_changed:
        plan.unchanged += 1
        return
    plan.to_push.append(enrollment.pk)
    plan.move_job += int(moving)
    plan.update_fields += int(fields_changed)
    plan.requests += cost
    plan.requests_by_site[site_id] = plan.requests_by_site.get(site_id, 0) + cost


_MISSING = object()
PIPE_FIELDS = (
    "pk",
    "site_id",
    "candidate_id",
    "job_id",
    "pipeline_id",
    "status_id",
    "status_seen_at",
)


def _fields_cost(world: _World, es: EnrollmentSync, enrollment, account) -> tuple[int, bool]:
    """Requests engine/fields.py sends for this contact with the current mapping, and
    whether any value differs from what CATS holds; updates the simulated link."""
    from ..engine.fields import field_values

    mapping = world.mappings.get(account.pk) or {}
    wanted = field_values(SimpleNamespace(field_mapping=mapping), enrollment)
    link = world.links.get((es.site_id, enrollment.contact.email))
    if link is not None and link.candidate_id != es.candidate_id:
        link = None
    holds = link.custom_values if link is not None else {}
    changed = {
        key: (spec, value)
        for key, (spec, value) in wanted.items()
        if holds.get(str(spec["field_id"]), _MISSING) != value
    }
    if not changed:
        return 0, False
    names = link is not None and link.first_name and link.last_name
    cost = 1 if len(changed) == 1 or names else len(changed)
    if link is not None:
        link.custom_values = {
            **holds,
            **{str(spec["field_id"]): value for spec, value in changed.values()},
        }
    return cost, True


def push_finish_at(plan: PushPlan) -> datetime | None:
    """When the CATS budget lets the push finish: after the bulk work already queued on each
    site, at the pace bulk work may spend (the live reserve stays untouched). None: now."""
    now = timezone.now()
    seconds = 0.0
    for site in CatsSite.objects.filter(pk__in=list(plan.requests_by_site)):
        queued = SyncTask.objects.filter(account__site=site, state=SyncTask.State.PENDING).count()
        requests = plan.requests_by_site[site.pk] + queued * REQUESTS_PER_CONTACT
        seconds = max(seconds, budget_view(site).bulk_seconds(requests))
    return now + timedelta(seconds=seconds) if seconds else None


# --- the run ------------------------------------------------------------------------------------


@transaction.atomic
def push_start(*, enrollments, started_by, team, description: str, remove_old: bool) -> ResyncRun:
    """Push changes of the selection as one run with progress. Up to RESYNC_INLINE_MAX contacts
    are queued at once; a bigger run is planned by a worker, in chunks."""
    ids = list(enrollments.order_by("pk").values_list("pk", flat=True))
    run = ResyncRun.objects.create(
        started_by=started_by,
        team=team,
        description=description[:255],
        kind=ResyncRun.Kind.PUSH,
        remove_old_job=remove_old,
    )
    return run_begin(run, ids, lambda chunk: push_plan_chunk(run, chunk))


def push_plan_chunk(run: ResyncRun, enrollment_ids: list[int]) -> None:
    """Queue a push task (bulk priority) for each contact of these ids with a change."""
    plan = push_plan(
        enrollments=Enrollment.objects.filter(pk__in=enrollment_ids), remove_old=run.remove_old_job
    )
    accounts = dict(
        EnrollmentSync.objects.filter(enrollment_id__in=plan.to_push).values_list(
            "enrollment_id", "account_id"
        )
    )
    by_id = {a.pk: a for a in CatsAccount.objects.filter(pk__in=set(accounts.values()))}
    run_tasks_add(
        run,
        [(pk, by_id.get(accounts.get(pk))) for pk in sorted(plan.to_push)],
        kind=SyncTask.Kind.PUSH,
        priority=SyncTask.Priority.BULK,
        total=len(plan.to_push),
        skipped=plan.unchanged,
        blocked=plan.blocked_total,
        requests=plan.requests,
    )


__all__ = [
    "PushPlan",
    "carry_title",
    "push_finish_at",
    "push_plan",
    "push_plan_chunk",
    "push_start",
    "target_job_id",
    "titles_reached",
]
