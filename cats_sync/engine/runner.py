"""Running SyncTask rows: claim, run, and settle each one, whatever happens.

A task is claimed with a conditional update and a token; its heartbeat (refreshed before each
request) tells the sweeper whether its worker is alive. However a task ends, its row says so:

- waits (budget, 429, an outage, another worker's claim): pending again at the time given,
  not counted as an attempt;
- CATS failing on this task while answering others: retried with back-off, then failed with
  a message, after MAX_TRANSIENT_ATTEMPTS;
- the key refused (401) or unreadable: paused until the member reconnects or the key reads;
- something a person must fix: failed, with the issue on the contact; Retry re-runs it;
- anything unexpected: recorded (type and message), retried a few times, then failed.

No exception leaves `tasks_execute`: one bad task never abandons the rest of the batch.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from .. import messages
from ..budget import OUTAGE_AFTER, budget_block
from ..client import CatsAuthError, CatsError, CatsRateLimited, CatsUnavailable
from ..errors import KeyUnreadable, NeedsPerson, RateLimited, Wait
from ..models import CatsAccount, CatsIncident, CatsSite, EnrollmentSync, SyncIssue, SyncTask
from ..services.clients import cats_client_for
from ..services.connection import cats_account_mark_invalid
from ..services.incidents import incident_open
from ..services.issues import issue_raise
from ..services.outbox import enrollment_sync_capture
from ..services.resync import resync_run_close_if_done
from .candidates import ABSENT_TRUST
from .context import StepContext
from .lookups import Lookups
from .push import push_changes
from .steps import dedup_check, event_process, sync_enrollment

log = logging.getLogger(__name__)

# A batch starts no new task after this long: well inside Q_TIMEOUT (240 s by default).
BATCH_SECONDS = 120
MAX_TRANSIENT_ATTEMPTS = 10
MAX_UNEXPECTED_ATTEMPTS = 5
RETRY_BASE_SECONDS = 2
RETRY_CAP_SECONDS = 120


class RetrySoon(Wait):
    """CATS failed on the batch's shared look-up: its tasks try again shortly."""

    code = "retry"


def running_lease() -> timedelta:
    """A running task whose heartbeat is older than this lost its worker: a heartbeat is
    written before every request, and no request may take longer than its timeouts."""
    return timedelta(seconds=settings.CATS_CONNECT_TIMEOUT + settings.CATS_READ_TIMEOUT + 15)


def _claim(task: SyncTask) -> bool:
    """Atomically take a due pending task; False if another worker (or run) has it."""
    now = timezone.now()
    token = uuid.uuid4().hex
    taken = SyncTask.objects.filter(
        pk=task.pk, state=SyncTask.State.PENDING, not_before__lte=now
    ).update(
        state=SyncTask.State.RUNNING,
        claimed_at=now,
        claim_token=token,
        attempts=F("attempts") + 1,
    )
    if taken:
        task.attempts += 1
        task.claim_token = token
    return bool(taken)


def _live_waiting(site_id: int) -> bool:
    return SyncTask.objects.filter(
        state=SyncTask.State.PENDING,
        priority=SyncTask.Priority.LIVE,
        not_before__lte=timezone.now(),
        account__site_id=site_id,
    ).exists()


def tasks_execute(*, task_ids: list[int], site_id: int | None = None) -> dict[str, int]:
    """Run these tasks (those still due). Safe to call twice with the same ids.

    Each task is claimed just before it runs, and no new one starts after BATCH_SECONDS, so a
    slow CATS never pushes a batch past the queue's timeout: what is left stays pending for
    the sweeper. Given the site they belong to, bulk work stops as soon as live work of the
    site is due (the site's runner then takes that first).
    """
    deadline = time.monotonic() + BATCH_SECONDS
    tasks = list(
        SyncTask.objects.filter(
            pk__in=task_ids, state=SyncTask.State.PENDING, not_before__lte=timezone.now()
        )
        .order_by("priority", "not_before", "id")
        .select_related(
            "account__site",
            "account__membership__user",
            "enrollment__contact",
            "enrollment__sequence",
            "event",
        )
    )
    outcomes: dict[str, int] = {}
    lookups = _prefetch(tasks)
    for task in tasks:
        if time.monotonic() > deadline:
            break
        bulk = task.priority != SyncTask.Priority.LIVE
        if site_id is not None and bulk and _live_waiting(site_id):
            break
        if not _claim(task):
            continue
        try:
            outcome = _execute_one(task, lookups)
        except Exception:
            # Even recording the failure failed (the contact was deleted meanwhile, the
            # database went away): the heartbeat lease hands the task on; the batch goes on.
            log.exception("Could not settle CATS sync task %s", task.pk)
            outcome = "lost"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def _prefetch(tasks: list[SyncTask]) -> Lookups:
    """For several new contacts of one site, one search looks all their emails up."""
    from ..models import CandidateLink

    lookups = Lookups()
    by_account: dict[int, list[SyncTask]] = {}
    for t in tasks:
        if t.kind == SyncTask.Kind.SYNC and t.account and t.account.is_connected:
            by_account.setdefault(t.account_id, []).append(t)
    for account_tasks in by_account.values():
        if len(account_tasks) < 2:
            continue
        account = account_tasks[0].account
        emails = [t.enrollment.contact.email for t in account_tasks]
        # Emails whose answer we hold (a candidate, a create in flight, a search that just
        # found nothing) need no search.
        fresh = timezone.now() - ABSENT_TRUST
        known = set(
            CandidateLink.objects.filter(site=account.site, email__in=emails)
            .filter(
                Q(candidate_id__isnull=False)
                | ~Q(claimed_by="")
                | Q(create_sent_at__isnull=False)
                | Q(absent_checked_at__gt=fresh)
            )
            .values_list("email", flat=True)
        )
        wanted = [e for e in emails if e not in known]
        bulk = all(t.priority == SyncTask.Priority.BULK for t in account_tasks)
        if bulk:
            wanted += _top_up(account, wanted, emails, fresh)
        try:
            client = cats_client_for(account, bulk=bulk)
            lookups.prefetch(site=account.site, client=client, emails=wanted)
            _remember_absent(account.site, lookups, wanted)
        except CatsRateLimited as exc:
            # The whole site waits, the batch with it: no task asks on its own meanwhile.
            until = budget_block(site_id=account.site_id, seconds=exc.retry_after)
            lookups.waits[account.site_id] = RateLimited(
                messages.WAIT_RATE.format(at=timezone.localtime(until)), until=until
            )
        except CatsUnavailable as exc:
            at = timezone.now() + _backoff(1)
            lookups.waits[account.site_id] = RetrySoon(
                f"{exc.message} Retrying at {timezone.localtime(at):%H:%M:%S}.", until=at
            )
        except (CatsError, KeyUnreadable):
            continue  # each task meets the trouble on its own and settles it (401, the key)
    return lookups


def _top_up(account, wanted: list[str], emails: list[str], fresh) -> list[str]:
    """Emails of the account's other pending bulk syncs (not due yet: waiting for the budget,
    say) that fill the search's last chunk: the request costs the same, and what it finds
    absent is remembered, so their tasks need no search of their own (a batch of leftovers and
    new tasks would otherwise search in fragments). Not where each email is a request of its
    own (a site searched by free text); a site not probed yet is searched by filter."""
    from ..client import EMAIL_CHUNK
    from ..models import CandidateLink, CatsSite

    room = -len(wanted) % EMAIL_CHUNK
    if not wanted or not room or account.site.email_search == CatsSite.EmailSearch.TEXT:
        return []
    answered = CandidateLink.objects.filter(site=account.site).filter(
        Q(candidate_id__isnull=False)
        | ~Q(claimed_by="")
        | Q(create_sent_at__isnull=False)
        | Q(absent_checked_at__gt=fresh)
    )
    others = (
        SyncTask.objects.filter(
            account=account,
            kind=SyncTask.Kind.SYNC,
            state=SyncTask.State.PENDING,
            priority=SyncTask.Priority.BULK,
        )
        .exclude(enrollment__contact__email__in=emails)
        .exclude(enrollment__contact__email__in=answered.values("email"))
        .order_by("not_before", "id")
        .values_list("enrollment__contact__email", flat=True)[: room * 2]
    )
    extra = list(dict.fromkeys(others))[:room]
    return extra


def _remember_absent(site, lookups: Lookups, emails: list[str]) -> None:
    """Emails the batch's search found nothing for are recorded as such at once, as each task
    would on reaching its create: a task of the batch that does not get that far (the batch
    stopped for live work, the budget ran out) creates after its wait without a second search
    (the create's own duplicate check covers what changed since)."""
    from ..models import CandidateLink

    absent = [e for e in emails if lookups.cached(site, e) == []]
    if not absent:
        return
    CandidateLink.objects.bulk_create(
        [CandidateLink(site=site, email=e) for e in absent], ignore_conflicts=True
    )
    CandidateLink.objects.filter(
        site=site, email__in=absent, candidate_id__isnull=True, create_sent_at__isnull=True
    ).update(absent_checked_at=timezone.now())


def _execute_one(task: SyncTask, lookups: Lookups) -> str:
    es = EnrollmentSync.objects.filter(enrollment_id=task.enrollment_id).first()
    if es is None:
        es = enrollment_sync_capture(enrollment=task.enrollment)
    account = task.account
    try:
        return _run(task, es, account, lookups)
    except Exception as exc:  # the last line of defence: record, back off, go on
        log.exception("CATS sync task %s failed unexpectedly", task.pk)
        kind = type(exc).__name__
        return _fail_or_back_off(
            task,
            es,
            limit=MAX_UNEXPECTED_ATTEMPTS,
            error=EnrollmentSync.Error.UNEXPECTED,
            failed=messages.ERR_UNEXPECTED.format(kind=kind, attempts=task.attempts),
            waiting=lambda at: messages.WAIT_UNEXPECTED.format(
                kind=kind, at=timezone.localtime(at)
            ),
        )
    finally:
        if task.run_id:
            try:
                resync_run_close_if_done(run_id=task.run_id)
            except Exception:
                log.exception("Could not close resync run %s", task.run_id)


def _run(task: SyncTask, es: EnrollmentSync, account: CatsAccount | None, lookups) -> str:
    if account is None or account.status != CatsAccount.Status.CONNECTED:
        if account is None:
            owner = task.enrollment.sequence.owner if task.enrollment_id else "The owner"
            message = messages.ERR_NOT_CONNECTED.format(owner=owner)
            code = EnrollmentSync.Error.NOT_CONNECTED
        elif account.status == CatsAccount.Status.INVALID:
            message, code = messages.ERR_AUTH, EnrollmentSync.Error.AUTH
        else:
            message = messages.ERR_NOT_CONNECTED.format(owner=account.membership)
            code = EnrollmentSync.Error.NOT_CONNECTED
        _issue(es, SyncIssue.Step.CONNECTION, code, message)
        _finish(task, SyncTask.State.PAUSED, error=message)
        return "paused"
    wait = lookups.wait_for(account.site)
    ctx: StepContext | None = None
    try:
        if wait is not None and task.kind != SyncTask.Kind.EVENT:
            raise wait
        client = cats_client_for(
            account,
            bulk=task.priority == SyncTask.Priority.BULK,
            heartbeat=lambda: _heartbeat(task),
        )
        ctx = StepContext(task=task, es=es, account=account, client=client, lookups=lookups)
        if task.kind == SyncTask.Kind.SYNC:
            outcome = sync_enrollment(ctx)
        elif task.kind == SyncTask.Kind.DEDUP:
            outcome = dedup_check(ctx)
        elif task.kind == SyncTask.Kind.PUSH:
            outcome = push_changes(ctx)
        else:
            outcome = event_process(ctx)
        if ctx.problems:
            raise ctx.problems[0]
        _finish(task, SyncTask.State.DONE, outcome=outcome)
        return outcome
    except KeyUnreadable as exc:
        # Server settings, not the member's key: paused, and the sweeper resumes the work as
        # soon as the key reads again (or the member reconnects).
        _issue(es, SyncIssue.Step.CONNECTION, EnrollmentSync.Error.KEY_UNREADABLE, str(exc))
        _finish(task, SyncTask.State.PAUSED, error=messages.ERR_KEY_UNREADABLE)
        incident_open(account=account, kind=CatsIncident.Kind.KEY_UNREADABLE)
        return "paused"
    except CatsAuthError:
        cats_account_mark_invalid(account=account)
        _issue(es, SyncIssue.Step.CONNECTION, EnrollmentSync.Error.AUTH, messages.ERR_AUTH)
        _finish(task, SyncTask.State.PAUSED, error=messages.ERR_AUTH)
        return "paused"
    except Wait as exc:
        # The budget, an outage back-off, another worker's claim, or CATS' own 429 (the
        # request gate has blocked the site for its Retry-After already).
        message = exc.message
        if isinstance(exc, CatsError):  # the 429: CATS' words are not the person's
            message = messages.WAIT_RATE.format(at=timezone.localtime(exc.until))
        _retry(task, exc.until, message, waiting_on=exc.code, count=False)
        return "waiting"
    except CatsUnavailable as exc:
        return _unavailable(task, es, account.site_id, exc)
    except NeedsPerson as exc:
        problems = [exc, *(p for p in (ctx.problems if ctx else []) if p is not exc)]
        for problem in problems:
            _issue(es, problem.step, problem.code, problem.message, key=problem.key)
        _finish(task, SyncTask.State.FAILED, error=exc.message)
        return "failed"
    except CatsError as exc:
        # A 4xx no step expected: CATS refused something of this contact.
        message = messages.ERR_REJECTED.format(message=exc.message)
        _issue(es, SyncIssue.Step.OTHER, EnrollmentSync.Error.REJECTED, message)
        _finish(task, SyncTask.State.FAILED, error=message)
        return "failed"


def _unavailable(task: SyncTask, es, site_id: int, exc: CatsUnavailable) -> str:
    site = CatsSite.objects.filter(pk=site_id).values("outage_failures", "outage_until").first()
    if site and site["outage_failures"] >= OUTAGE_AFTER:
        # The site is down, not this contact: wait for the probe, without counting.
        until = site["outage_until"] or timezone.now() + timedelta(seconds=5)
        message = messages.WAIT_OUTAGE.format(at=timezone.localtime(until))
        _retry(task, until, message, waiting_on="outage", count=False)
        return "waiting"
    return _fail_or_back_off(
        task,
        es,
        limit=MAX_TRANSIENT_ATTEMPTS,
        error=EnrollmentSync.Error.UNAVAILABLE,
        failed=messages.ERR_UNAVAILABLE_GAVE_UP.format(n=task.attempts),
        waiting=lambda at: f"{exc.message} Retrying at {timezone.localtime(at):%H:%M:%S}.",
    )


def _fail_or_back_off(task: SyncTask, es, *, limit: int, error: str, failed: str, waiting) -> str:
    """After `limit` attempts the task fails with `failed` (an issue a person sees, with its
    Retry); before, it waits an exponential backoff, saying `waiting(at)`."""
    if task.attempts >= limit:
        _issue(es, SyncIssue.Step.OTHER, error, failed)
        _finish(task, SyncTask.State.FAILED, error=failed)
        return "failed"
    at = timezone.now() + _backoff(task.attempts)
    _retry(task, at, waiting(at), waiting_on="retry")
    return "waiting"


def _backoff(attempts: int) -> timedelta:
    delay = min(RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0), RETRY_CAP_SECONDS)
    return timedelta(seconds=delay * (0.5 + random.random() / 2))


def _heartbeat(task: SyncTask) -> None:
    SyncTask.objects.filter(pk=task.pk, claim_token=task.claim_token).update(
        claimed_at=timezone.now()
    )


def _issue(es: EnrollmentSync, step: str, code: str, message: str, key: str = "") -> None:
    issue_raise(enrollment_sync_id=es.pk, step=step, code=code, message=message, key=key)


def _finish(task: SyncTask, state: str, *, outcome: str = "", error: str = "") -> None:
    SyncTask.objects.filter(pk=task.pk, claim_token=task.claim_token).update(
        state=state,
        outcome=outcome,
        last_error=error[:500],
        waiting_on="",
        claimed_at=None,
        claim_token="",
    )


def _retry(
    task: SyncTask, at: datetime, message: str, *, waiting_on: str, count: bool = True
) -> None:
    updates = {
        "state": SyncTask.State.PENDING,
        "not_before": at,
        "last_error": message[:500],
        "waiting_on": waiting_on,
        "claimed_at": None,
        "claim_token": "",
    }
    if not count:
        # Waiting for the budget or a 429 is not a failure: keep attempts for real ones.
        updates["attempts"] = F("attempts") - 1
    SyncTask.objects.filter(pk=task.pk, claim_token=task.claim_token).update(**updates)
