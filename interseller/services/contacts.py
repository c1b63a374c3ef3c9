"""Contacts and their place in sequences."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence as Seq
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..models import Contact, Enrollment, Membership, Sequence, Team
from ..signals import contact_added_to_sequence, contacts_added_to_sequence
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


@dataclass
class ManyResult:
    """What `contacts_upsert_many` did, counted as contact_upsert and contact_add_to_sequence
    report it one contact at a time."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    added_to_sequence: int = 0
    already_in_sequence: int = 0


class TeammatesContact(Exception):
    """A row matches a contact another teammate owns (a member's import may not update it)."""

    def __init__(self, email: str):
        super().__init__(email)
        self.email = email


@transaction.atomic
def contacts_upsert_many(
    *,
    team: Team,
    owner: Membership,
    rows: Seq[tuple[str, dict[str, str]]],
    sequence: Sequence | None = None,
    added_by: Membership | None = None,
    only_own: Membership | None = None,
) -> ManyResult:
    """contact_upsert (and contact_add_to_sequence, as bulk work) for many rows at once, in a
    few queries: the rows' contacts are read and locked once, new ones created in one
    INSERT, changed ones updated in one UPDATE, enrollments created in one INSERT, and
    integrations hear of them through one `contacts_added_to_sequence`.

    `rows`: (normalised email, fields) as the import's dry run checked them (text that may be
    stored, values each field accepts, one row per email). A concurrent create of the same
    contact or enrollment falls back to the one-at-a-time services for these rows. Raises
    TeammatesContact for a row that `only_own` may not update.
    """
    if owner.team_id != team.pk:
        raise ValidationError(MSG_OWNER_OTHER_TEAM, code="owner")
    if sequence is not None and sequence.team_id != team.pk:
        raise ValidationError(MSG_SEQUENCE_OTHER_TEAM, code="team")
    result = ManyResult()
    emails = [email for email, _ in rows]
    known = {
        c.email: c for c in Contact.objects.select_for_update().filter(team=team, email__in=emails)
    }
    now = timezone.now()
    new: list[Contact] = []
    changed: list[Contact] = []
    changed_fields: set[str] = set()
    for email, fields in rows:
        values = {k: v.strip() for k, v in fields.items() if k in CONTACT_FIELDS and v}
        contact = known.get(email)
        if contact is None:
            new.append(Contact(team=team, owner=owner, email=email, **values))
            continue
        if only_own is not None and contact.owner_id != only_own.pk:
            raise TeammatesContact(email)
        fields_changed = [k for k, v in values.items() if getattr(contact, k) != v]
        if fields_changed:
            for k in fields_changed:
                setattr(contact, k, values[k])
            contact.updated_at = now
            changed.append(contact)
            changed_fields.update(fields_changed)
        else:
            result.unchanged += 1
    if changed:
        Contact.objects.bulk_update(changed, [*sorted(changed_fields), "updated_at"])
        result.updated = len(changed)
    if new:
        try:
            with transaction.atomic():
                Contact.objects.bulk_create(new)
        except IntegrityError:
            # Someone added one of these emails meanwhile: one at a time, as a person would.
            for contact in new:
                upserted = contact_upsert(
                    team=team,
                    owner=owner,
                    email=contact.email,
                    fields={k: getattr(contact, k) for k in CONTACT_FIELDS},
                    contacts_by_email=known,
                )
                appeared = upserted.contact
                if (
                    only_own is not None
                    and not upserted.created
                    and appeared.owner_id != only_own.pk
                ):
                    # A teammate's contact that appeared meanwhile: not ours to update (the
                    # transaction rolls the update back with the refusal).
                    raise TeammatesContact(contact.email) from None
                known[contact.email] = appeared
                setattr(result, upserted.status, getattr(result, upserted.status) + 1)
        else:
            result.created = len(new)
            known.update((c.email, c) for c in new)
    if sequence is None:
        return result
    ids = [known[email].pk for email in emails]
    enrolled = set(
        Enrollment.objects.select_for_update()
        .filter(sequence=sequence, contact_id__in=ids)
        .values_list("contact_id", flat=True)
    )
    result.already_in_sequence = len(enrolled)
    to_add = [
        Enrollment(contact_id=i, sequence=sequence, added_by=added_by)
        for i in ids
        if i not in enrolled
    ]
    if not to_add:
        return result
    if sequence.archived:
        raise ValidationError(
            {"sequence_id": MSG_SEQUENCE_ARCHIVED.format(sequence=sequence.title)},
            code="archived",
        )
    try:
        with transaction.atomic():
            Enrollment.objects.bulk_create(to_add)
    except IntegrityError:
        by_id = {c.pk: c for c in known.values()}
        for enrollment in to_add:
            added = contact_add_to_sequence(
                contact=by_id[enrollment.contact_id],
                sequence=sequence,
                added_by=added_by,
                bulk=True,
            )
            if added.created:
                result.added_to_sequence += 1
            else:
                result.already_in_sequence += 1
        return result
    result.added_to_sequence = len(to_add)
    contacts_added_to_sequence.send(
        sender=Enrollment, enrollments=to_add, sequence=sequence, added_by=added_by
    )
    return result
