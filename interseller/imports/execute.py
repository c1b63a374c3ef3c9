"""The confirmed import: every row through the same services as a contact added by hand."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction

from ..models import Contact, Enrollment, ImportJob, Membership, Sequence, Team
from ..services import contact_add_to_sequence, contact_upsert
from .limits import (
    EMAIL_QUERY_CHUNK,
)
from .messages import (
    MSG_IMPORT_DONE,
    MSG_ROW_TEAMMATES_CONTACT,
    MSG_SEQUENCE_DONE,
)
from .plan import ImportPlan

logger = logging.getLogger(__name__)


class ImportFailed(Exception):
    pass


@dataclass
class ImportOutcome:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    added_to_sequence: int = 0
    already_in_sequence: int = 0
    contact_ids: list[int] = field(default_factory=list)


# Progress is reported every this many rows.
PROGRESS_EVERY = 100


def _contacts_locked(team: Team, emails: list[str]) -> dict[str, Contact]:
    """The team's contacts with these emails, locked until the import commits."""
    found: dict[str, Contact] = {}
    for start in range(0, len(emails), EMAIL_QUERY_CHUNK):
        chunk = emails[start : start + EMAIL_QUERY_CHUNK]
        for contact in Contact.objects.select_for_update().filter(team=team, email__in=chunk):
            found[contact.email] = contact
    return found


def _enrolled_contact_ids(sequence: Sequence, contact_ids: list[int]) -> set[int]:
    enrolled: set[int] = set()
    for start in range(0, len(contact_ids), EMAIL_QUERY_CHUNK):
        chunk = contact_ids[start : start + EMAIL_QUERY_CHUNK]
        enrolled.update(
            Enrollment.objects.select_for_update()
            .filter(sequence=sequence, contact_id__in=chunk)
            .values_list("contact_id", flat=True)
        )
    return enrolled


def import_execute(
    *,
    plan: ImportPlan,
    team: Team,
    owner: Membership,
    sequence: Sequence | None = None,
    added_by: Membership | None = None,
    only_own: Membership | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportOutcome:
    """Write a valid plan, all or nothing. Raises ImportFailed naming the row that failed.

    The team's existing contacts (and who of them is already in the sequence) are loaded
    once, locked, instead of once per row; every write still goes through the services.
    `progress` is called with the number of rows written so far, every PROGRESS_EVERY rows.
    """
    if not plan.is_valid:
        raise ImportFailed(str(plan.errors[0]))
    outcome = ImportOutcome()
    current = 0
    try:
        with transaction.atomic():
            known = _contacts_locked(team, [r.email for r in plan.rows])
            enrolled = (
                _enrolled_contact_ids(sequence, [c.pk for c in known.values()])
                if sequence is not None
                else set()
            )
            for done, row in enumerate(plan.rows, start=1):
                current = row.row
                existing = known.get(row.email)
                if only_own is not None and existing and existing.owner_id != only_own.pk:
                    # The dry run refuses these; a teammate's contact created since then.
                    raise ImportFailed(
                        MSG_ROW_TEAMMATES_CONTACT.format(row=row.row, email=row.email)
                    )
                result = contact_upsert(
                    team=team,
                    owner=owner,
                    email=row.email,
                    fields=row.fields,
                    contacts_by_email=known,
                )
                setattr(outcome, result.status, getattr(outcome, result.status) + 1)
                outcome.contact_ids.append(result.contact.pk)
                if sequence is not None:
                    if result.contact.pk in enrolled:
                        # What contact_add_to_sequence would answer, without asking again.
                        outcome.already_in_sequence += 1
                    else:
                        added = contact_add_to_sequence(
                            contact=result.contact,
                            sequence=sequence,
                            added_by=added_by,
                            bulk=True,
                        )
                        if added.created:
                            outcome.added_to_sequence += 1
                        else:
                            outcome.already_in_sequence += 1
                if progress is not None and done % PROGRESS_EVERY == 0:
                    progress(done)
    except ImportFailed:
        raise
    except ValidationError as e:
        raise ImportFailed(f"row {current}: {' '.join(e.messages)}") from e
    except Exception as e:
        logger.exception("Contact import failed at row %s", current)
        raise ImportFailed(
            f"row {current} could not be saved ({type(e).__name__}). Try again, or ask an "
            "administrator to look at the server log."
        ) from e
    return outcome


def import_owner(*, team: Team, user) -> Membership | None:
    """The membership that owns contacts this user imports into this team."""
    membership = Membership.objects.filter(team=team, user=user).first()
    if membership is not None:
        return membership
    if user.is_superuser:
        members = Membership.objects.filter(team=team).order_by("created_at", "pk")
        return members.filter(role=Membership.Role.OWNER).first() or members.first()
    return None


def import_only_own(*, owner: Membership, user) -> Membership | None:
    """The membership whose contacts alone this import may update, or None for all of them.

    The admin's rule: a member sees and changes only their own contacts; owners, managers
    and superusers change any contact of the team.
    """
    if (user is not None and user.is_superuser) or owner.can_manage_team:
        return None
    return owner


def import_result_message(outcome: ImportOutcome | ImportJob, sequence_title: str = "") -> str:
    """What the person who imported is told, whether the import ran in the request or not."""
    text = MSG_IMPORT_DONE.format(
        created=outcome.created, updated=outcome.updated, unchanged=outcome.unchanged
    )
    if sequence_title:
        text += MSG_SEQUENCE_DONE.format(
            added=outcome.added_to_sequence,
            sequence=sequence_title,
            already=outcome.already_in_sequence,
        )
    return text
