"""Contacts and their place in sequences."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from ..models import Contact, Enrollment, Membership, Sequence, Team
from ..signals import contact_added_to_sequence
from ..text import text_clean
from .messages import (
    MSG_ALREADY_IN_SEQUENCE,
    MSG_EMAIL_INVALID,
    MSG_EMAIL_REQUIRED,
    MSG_OWNER_OTHER_TEAM,
    MSG_SEQUENCE_ARCHIVED,
    MSG_SEQUENCE_OTHER_TEAM,
)

CONTACT_FIELDS = (
    "first_name",
    "last_name",
    "company",
    "title",
    "phone",
    "linkedin_url",
    "location",
    "source",
)


def normalize_email(email: str) -> str:
    return (email or "").strip().lower()


def email_validate(email: str) -> str:
    """Normalise and validate; returns the normalised address."""
    normalized = normalize_email(email)
    if not normalized:
        raise ValidationError(MSG_EMAIL_REQUIRED, code="required")
    try:
        validate_email(normalized)
    except ValidationError:
        raise ValidationError(
            MSG_EMAIL_INVALID.format(email=email.strip()), code="invalid"
        ) from None
    return normalized


@dataclass(frozen=True)
class UpsertResult:
    contact: Contact
    created: bool
    changed_fields: tuple[str, ...]

    @property
    def status(self) -> str:
        if self.created:
            return "created"
        return "updated" if self.changed_fields else "unchanged"


@transaction.atomic
def contact_upsert(
    *,
    team: Team,
    owner: Membership,
    email: str,
    fields: dict[str, Any] | None = None,
    contacts_by_email: Mapping[str, Contact] | None = None,
) -> UpsertResult:
    """Create the team's contact for this email, or update the given fields on it.

    Blank values never erase what is known: a sheet with an empty "Phone" column must not wipe
    the phone numbers already on file. The owner of an existing contact is kept.

    `contacts_by_email`: bulk callers (the import) load the team's contacts once, locked in
    their own transaction, and pass them by normalised email; an email missing from it is
    created (a concurrent create still falls back to an update).
    """
    if owner.team_id != team.pk:
        raise ValidationError(MSG_OWNER_OTHER_TEAM, code="owner")
    # Text that cannot be stored (interseller.text) is refused before anything else, per field.
    errors: dict[str, ValidationError] = {}
    values: dict[str, str] = {}
    given = [("email", email), *((k, v) for k, v in (fields or {}).items() if k in CONTACT_FIELDS)]
    for name, value in given:
        try:
            values[name] = text_clean(str(value)).strip() if value is not None else ""
        except ValidationError as exc:
            errors[name] = exc
    if errors:
        raise ValidationError(errors)
    normalized = email_validate(values.pop("email"))
    if contacts_by_email is None:
        contact = Contact.objects.select_for_update().filter(team=team, email=normalized).first()
    else:
        contact = contacts_by_email.get(normalized)
        if contact is not None and (contact.team_id != team.pk or contact.email != normalized):
            raise ValueError(f"contacts_by_email[{normalized!r}] is not this team's contact")
    # Team and owner were checked above: full_clean would query both again for every row.
    checked = ["team", "owner"]
    if contact is None:
        contact = Contact(team=team, owner=owner, email=normalized, **values)
        contact.full_clean(exclude=checked, validate_unique=False, validate_constraints=False)
        try:
            with transaction.atomic():
                contact.save()
        except IntegrityError:
            # Lost a race with a concurrent create of the same email: fall back to update.
            contact = Contact.objects.select_for_update().get(team=team, email=normalized)
        else:
            return UpsertResult(contact, True, ())
    changed = tuple(k for k, v in values.items() if v and getattr(contact, k) != v)
    if changed:
        for k in changed:
            setattr(contact, k, values[k])
        contact.full_clean(exclude=checked, validate_unique=False, validate_constraints=False)
        contact.save(update_fields=[*changed, "updated_at"])
    return UpsertResult(contact, False, changed)


@dataclass(frozen=True)
class AddResult:
    enrollment: Enrollment
    created: bool
    message: str


@transaction.atomic
def contact_add_to_sequence(
    *,
    contact: Contact,
    sequence: Sequence,
    added_by: Membership | None = None,
    bulk: bool = False,
) -> AddResult:
    """Enroll a contact; a second add is a no-op that says so.

    `bulk`: one of many added at once (an import, a multi-row action): integrations may do
    their work after what a person does one contact at a time.
    """
    if contact.team_id != sequence.team_id:
        raise ValidationError(MSG_SEQUENCE_OTHER_TEAM, code="team")
    existing = Enrollment.objects.filter(contact=contact, sequence=sequence).first()
    if existing is None and sequence.archived:
        raise ValidationError(
            {"sequence_id": MSG_SEQUENCE_ARCHIVED.format(sequence=sequence.title)},
            code="archived",
        )
    if existing:
        return AddResult(
            existing,
            False,
            MSG_ALREADY_IN_SEQUENCE.format(contact=contact.email, sequence=sequence.title),
        )
    try:
        with transaction.atomic():
            enrollment = Enrollment.objects.create(
                contact=contact, sequence=sequence, added_by=added_by
            )
    except IntegrityError:
        existing = Enrollment.objects.get(contact=contact, sequence=sequence)
        return AddResult(
            existing,
            False,
            MSG_ALREADY_IN_SEQUENCE.format(contact=contact.email, sequence=sequence.title),
        )
    contact_added_to_sequence.send(
        sender=Enrollment, enrollment=enrollment, added_by=added_by, bulk=bulk
    )
    return AddResult(enrollment, True, f"{contact.email} added to “{sequence.title}”.")


@transaction.atomic
def contact_remove_from_sequence(*, contact: Contact, sequence: Sequence) -> bool:
    """Take a contact out of a sequence. What an integration keeps of it (CATS sync state,
    queued work) goes with the enrollment; what it wrote elsewhere (CATS) stays."""
    deleted, _ = Enrollment.objects.filter(contact=contact, sequence=sequence).delete()
    return bool(deleted)
