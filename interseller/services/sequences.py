"""Saving a sequence, and telling integrations when its owner changes."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from ..models import Sequence
from ..signals import sequence_owner_changed
from .messages import MSG_OWNER_OTHER_TEAM


@transaction.atomic
def sequence_save(*, sequence: Sequence) -> Sequence:
    if sequence.owner.team_id != sequence.team_id:
        raise ValidationError({"owner": MSG_OWNER_OTHER_TEAM}, code="owner")
    sequence.save()
    return sequence


def sequence_owner_announce(*, sequence: Sequence, previous_owner_id: int | None) -> list[str]:
    """Tell integrations a sequence has a new owner (their settings may belong to the old
    owner's account). Call it once everything of the change is saved. Returns the notices
    they give for the person who made the change."""
    if previous_owner_id is None or previous_owner_id == sequence.owner_id:
        return []
    answers = sequence_owner_changed.send(
        sender=Sequence, sequence=sequence, previous_owner_id=previous_owner_id
    )
    return [notice for _, notice in answers if notice]
