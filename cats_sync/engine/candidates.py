"""One CATS candidate per email and site, whatever the retries, workers and lost answers.

`CandidateLink` (site, email) is both the record of which candidate holds an email and the
lock that lets one worker at a time create it. Every create is sent with CATS' own duplicate
check on, so a create that hung and lands after our retry is refused by CATS instead of
making a second candidate; a create whose answer was lost is followed, after a settle window,
by a fresh look-up before anything is created again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from interseller.models import Contact

from .. import messages
from ..client import CatsRejected, CatsUnavailable
from ..errors import ClaimHeld, NeedsPerson, Wait
from ..models import CandidateLink, EnrollmentSync, SyncIssue
from .context import StepContext
from .lookups import first_id

SOURCE = "Interseller"
# Another worker's claim older than this belonged to a worker that died.
CLAIM_LEASE = timedelta(minutes=2)
# A search that found nothing is trusted this long by the create that follows it.
ABSENT_TRUST = timedelta(minutes=10)


def settle_window() -> timedelta:
    """Longer than a request may stay in flight on our side."""
    return timedelta(seconds=settings.CATS_CONNECT_TIMEOUT + settings.CATS_READ_TIMEOUT + 5)


@dataclass(frozen=True)
class Candidate:
    id: int | None
    # Created by this app for this team: never "Exists in CATS" for it.
    ours: bool
    # Created by this sync, now or by an earlier attempt whose answer was lost.
    created_now: bool = False
    # The row CATS returned when we found it (names, custom field values), if we searched.
    row: dict | None = None


def _link(site, email: str) -> CandidateLink:
    try:
        with transaction.atomic():
            return CandidateLink.objects.get_or_create(site=site, email=email)[0]
    except IntegrityError:
        return CandidateLink.objects.get(site=site, email=email)


def _recently_absent(link: CandidateLink, now) -> bool:
    return link.absent_checked_at is not None and link.absent_checked_at > now - ABSENT_TRUST


def _is_ours(link: CandidateLink, team_id: int) -> bool:
    """What this app created for this team is never "already in CATS" for it."""
    return link.created_by_us and link.created_for_team_id in (None, team_id)


def candidate_find(ctx: StepContext, contact: Contact) -> Candidate:
    """The candidate holding the contact's email, without creating one (deduplication)."""
    link = _link(ctx.site, contact.email)
    if link.candidate_id:
        return Candidate(link.candidate_id, _is_ours(link, contact.team_id))
    if link.claimed_by or link.create_sent_at:
        # Our own create is in flight: whatever CATS holds now is ours.
        return Candidate(None, True)
    rows = ctx.lookups.find(site=ctx.site, client=ctx.client, email=contact.email)
    found = first_id(rows)
    if found:
        row = _row_of(rows, found) or {}
        CandidateLink.objects.filter(pk=link.pk, candidate_id=None).update(
            candidate_id=found,
            created_by_us=False,
            first_name=str(row.get("first_name") or "")[:150],
            last_name=str(row.get("last_name") or "")[:150],
            custom_values=custom_values_of(row),
        )
        return Candidate(found, False, row=row)
    CandidateLink.objects.filter(pk=link.pk).update(absent_checked_at=timezone.now())
    return Candidate(None, False)


def candidate_ensure(ctx: StepContext, contact: Contact, *, custom_fields: list[dict]) -> Candidate:
    """The contact's candidate: linked if CATS has the email, created otherwise.

    `custom_fields` go inline with a create; the list is emptied when CATS refused them and
    the candidate was created without (the field step then sets them one by one).
    """
    site, team_id = ctx.site, contact.team_id
    link = _link(site, contact.email)
    if link.candidate_id:
        return Candidate(link.candidate_id, _is_ours(link, team_id))
    worker = f"task-{ctx.task.pk}"
    now = timezone.now()
    took = CandidateLink.objects.filter(
        Q(claimed_by="") | Q(claimed_by=worker) | Q(claimed_at__lt=now - CLAIM_LEASE),
        pk=link.pk,
        candidate_id=None,
    ).update(claimed_by=worker, claimed_at=now)
    if not took:
        link.refresh_from_db()
        if link.candidate_id:
            return Candidate(link.candidate_id, _is_ours(link, team_id))
        raise ClaimHeld(messages.WAIT_CLAIMED, until=now + timedelta(seconds=10))
    link.refresh_from_db()
    lost = link.create_sent_at is not None
    try:
        if lost:
            settled = link.create_sent_at + settle_window()
            if settled > now:
                raise Wait(messages.WAIT_SETTLE, until=settled)
        if not lost and _recently_absent(link, now):
            # Searched a moment ago (before a budget wait, say): the create's own duplicate
            # check covers what may have changed since.
            return _create(ctx, link, contact, custom_fields=custom_fields, lost=False)
        rows = ctx.lookups.find(site=site, client=ctx.client, email=contact.email, fresh=lost)
        found = first_id(rows)
        if found:
            _linked(link, found, ours=lost, team_id=team_id, row=_row_of(rows, found))
            return Candidate(found, lost, created_now=lost, row=_row_of(rows, found))
        CandidateLink.objects.filter(pk=link.pk).update(absent_checked_at=now)
        return _create(ctx, link, contact, custom_fields=custom_fields, lost=lost)
    except Wait:
        _release(link)
        raise


def _create(
    ctx: StepContext,
    link: CandidateLink,
    contact: Contact,
    *,
    custom_fields: list[dict],
    lost: bool,
) -> Candidate:
    payload = candidate_payload(contact)
    try:
        created = _send_create(ctx, link, payload, custom_fields, check_duplicate=True)
    except CatsRejected:
        # Nothing was created. A duplicate by email (e.g. our own earlier create, landed
        # late) is linked; CATS' other duplicate rules (name and phone...) or a refused
        # value get a plain create, as the spec wants a record per email.
        rows = ctx.lookups.find(site=ctx.site, client=ctx.client, email=contact.email, fresh=True)
        found = first_id(rows)
        if found:
            row = _row_of(rows, found)
            _linked(link, found, ours=lost, team_id=contact.team_id, row=row)
            return Candidate(found, lost, created_now=lost, row=row)
        created = _create_plain(ctx, link, payload, custom_fields)
    _linked(
        link,
        created,
        ours=True,
        team_id=contact.team_id,
        names=(payload["first_name"], payload["last_name"]),
        custom_values={str(f["id"]): f["value"] for f in custom_fields},
    )
    return Candidate(created, True, created_now=True)


def _send_create(
    ctx: StepContext, link, payload: dict, custom_fields: list[dict], *, check_duplicate: bool
) -> int:
    """One create. Only an answer lost after the request left keeps `create_sent_at` (and
    the claim): a refusal, a budget wait or a request that never reached CATS did nothing."""
    CandidateLink.objects.filter(pk=link.pk).update(create_sent_at=timezone.now())
    try:
        return ctx.client.create_candidate(
            **payload, custom_fields=custom_fields or None, check_duplicate=check_duplicate
        )
    except CatsUnavailable as exc:
        if not exc.write_may_have_happened:
            CandidateLink.objects.filter(pk=link.pk).update(create_sent_at=None)
            _release(link)
        raise
    except (CatsRejected, Wait):
        CandidateLink.objects.filter(pk=link.pk).update(create_sent_at=None)
        raise


def _create_plain(ctx: StepContext, link, payload: dict, custom_fields: list[dict]) -> int:
    try:
        try:
            return _send_create(ctx, link, payload, custom_fields, check_duplicate=False)
        except CatsRejected:
            if not custom_fields:
                raise
            # A refused field value must not block the contact: create without the fields,
            # and let the field step set them one by one, naming the one CATS refuses.
            custom_fields.clear()
            return _send_create(ctx, link, payload, [], check_duplicate=False)
    except CatsRejected as exc:
        _release(link)
        raise NeedsPerson(
            messages.ERR_REJECTED.format(message=exc.message),
            code=EnrollmentSync.Error.REJECTED,
            step=SyncIssue.Step.CANDIDATE,
        ) from exc


def _linked(
    link: CandidateLink,
    candidate_id: int,
    *,
    ours: bool,
    team_id: int,
    row: dict | None = None,
    names: tuple[str, str] | None = None,
    custom_values: dict | None = None,
) -> None:
    """Record which candidate holds the email, and what we know CATS holds of it."""
    updates = {
        "candidate_id": candidate_id,
        "claimed_by": "",
        "claimed_at": None,
        "create_sent_at": None,
        "created_by_us": ours,
        "created_for_team_id": team_id if ours else None,
    }
    if row is not None:
        names = (str(row.get("first_name") or ""), str(row.get("last_name") or ""))
        custom_values = custom_values_of(row)
    if names is not None:
        updates["first_name"], updates["last_name"] = names[0][:150], names[1][:150]
    if custom_values is not None:
        updates["custom_values"] = custom_values
    CandidateLink.objects.filter(pk=link.pk).update(**updates)


def custom_values_of(row: dict) -> dict[str, object]:
    """{field id: value} of a candidate as CATS returned it (read shape)."""
    values = (row.get("_embedded") or {}).get("custom_fields") or row.get("custom_fields") or []
    out = {}
    for item in values if isinstance(values, list) else []:
        if isinstance(item, dict) and item.get("id") is not None:
            out[str(item["id"])] = item.get("value")
    return out


def _release(link: CandidateLink) -> None:
    CandidateLink.objects.filter(pk=link.pk, candidate_id=None).update(
        claimed_by="", claimed_at=None
    )


def _row_of(rows: list[dict], candidate_id: int) -> dict | None:
    return next((r for r in rows if str(r.get("id")) == str(candidate_id)), None)


def candidate_forget(*, site, candidate_id: int, es: EnrollmentSync) -> None:
    """A recruiter deleted the candidate in CATS: the next run looks it up or creates it."""
    CandidateLink.objects.filter(site=site, candidate_id=candidate_id).update(
        candidate_id=None,
        claimed_by="",
        claimed_at=None,
        create_sent_at=None,
        created_by_us=False,
        created_for_team=None,
    )
    EnrollmentSync.objects.filter(pk=es.pk).update(
        candidate_id=None, created_candidate=False, pipeline_id=None, status_id=None
    )
    es.candidate_id = es.pipeline_id = es.status_id = None
    es.created_candidate = False


def candidate_payload(contact: Contact) -> dict:
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
