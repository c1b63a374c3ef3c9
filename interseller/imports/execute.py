"""The confirmed import: every row through the same services as a contact added by hand."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction

from ..models import ImportJob, Membership, Sequence, Team
from ..services import TeammatesContact, contacts_upsert_many
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


# Rows written with one call of contacts_upsert_many (a few queries each).
PROGRESS_EVERY = EMAIL_QUERY_CHUNK


def import_execute(
    *,
    plan: ImportPlan,
    team: Team,
    owner: Membership,
    sequence: Sequence | None = None,
    added_by: Membership | None = None,
    only_own: Membership | None = None,
) -> ImportOutcome:
    """Write a valid plan, all or nothing. Raises ImportFailed naming the rows that failed
    (the chunk they were written in; a teammate's contact by its own row).

    Rows go through `contacts_upsert_many` a chunk at a time (a few queries per chunk, not
    per row).
    """
    if not plan.is_valid:
        raise ImportFailed(str(plan.errors[0]))
    outcome = ImportOutcome()
    current = "row ?"
    try:
        with transaction.atomic():
            for start in range(0, len(plan.rows), PROGRESS_EVERY):
                chunk = plan.rows[start : start + PROGRESS_EVERY]
                first, last = chunk[0].row, chunk[-1].row
                current = f"rows {first}–{last}" if last != first else f"row {first}"
                try:
                    result = contacts_upsert_many(
                        team=team,
                        owner=owner,
                        rows=[(r.email, r.fields) for r in chunk],
                        sequence=sequence,
                        added_by=added_by,
                        only_own=only_own,
                    )
                except TeammatesContact as e:
                    # The dry run refuses these; a teammate's contact created since then.
                    row = next(r.row for r in chunk if r.email == e.email)
                    raise ImportFailed(
                        MSG_ROW_TEAMMATES_CONTACT.format(row=row, email=e.email)
                    ) from None
                for name in (
                    "created",
                    "updated",
                    "unchanged",
                    "added_to_sequence",
                    "already_in_sequence",
                ):
                    setattr(outcome, name, getattr(outcome, name) + getattr(result, name))
    except ImportFailed:
        raise
    except ValidationError as e:
        raise ImportFailed(f"{current}: {' '.join(e.messages)}") from e
    except Exception as e:
        logger.exception("Contact import failed at %s", current)
        raise ImportFailed(
            f"{current} could not be saved ({type(e).__name__}). Try again, or ask an "
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
