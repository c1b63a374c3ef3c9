"""Writes that touch the domain. Every multi-row change goes through here, in a transaction,
and sends the signals integrations listen to."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import ApiToken, Contact, EmailEvent, Enrollment, Membership, Sequence, Team
from .signals import contact_added_to_sequence, contact_removed_from_sequence, email_event_recorded

MSG_EMAIL_INVALID = "'{email}' is not a valid email address."
MSG_EMAIL_REQUIRED = "An email address is required."
MSG_OWNER_OTHER_TEAM = "The owner must be a member of the contact's team."
MSG_SEQUENCE_OTHER_TEAM = "The sequence belongs to another team."
MSG_SEQUENCE_ARCHIVED = "The sequence “{sequence}” is archived: unarchive it to add contacts."
MSG_ALREADY_IN_SEQUENCE = "{contact} is already in the sequence “{sequence}”."
MSG_NOT_IN_SEQUENCE = "{email} is not in the sequence “{sequence}”."
MSG_SENTIMENT_NOT_REPLY = "A sentiment can only be given for a reply."
MSG_TEAMMATE_EXISTS = "{email} is already a member of {team}."

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
    normalized = email_validate(email)
    values = {
        k: (str(v).strip() if v is not None else "")
        for k, v in (fields or {}).items()
        if k in CONTACT_FIELDS
    }
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
    *, contact: Contact, sequence: Sequence, added_by: Membership | None = None
) -> AddResult:
    """Enroll a contact; a second add is a no-op that says so."""
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
    contact_added_to_sequence.send(sender=Enrollment, enrollment=enrollment, added_by=added_by)
    return AddResult(enrollment, True, f"{contact.email} added to “{sequence.title}”.")


@transaction.atomic
def contact_remove_from_sequence(*, contact: Contact, sequence: Sequence) -> bool:
    deleted, _ = Enrollment.objects.filter(contact=contact, sequence=sequence).delete()
    if deleted:
        contact_removed_from_sequence.send(sender=Enrollment, contact=contact, sequence=sequence)
    return bool(deleted)


@dataclass(frozen=True)
class EventResult:
    event: EmailEvent
    created: bool


def _apply_event(enrollment: Enrollment, event: EmailEvent) -> list[str]:
    """Fold one event into the enrollment; order-independent so late events land right."""
    changed: list[str] = []
    at = event.occurred_at
    kind = event.kind
    if kind == EmailEvent.Kind.MESSAGE_SENT:
        if enrollment.first_messaged_at is None or at < enrollment.first_messaged_at:
            enrollment.first_messaged_at = at
            changed.append("first_messaged_at")
        if enrollment.last_messaged_at is None or at > enrollment.last_messaged_at:
            enrollment.last_messaged_at = at
            changed.append("last_messaged_at")
    elif kind == EmailEvent.Kind.REPLY_RECEIVED:
        if enrollment.responded_at is None or at < enrollment.responded_at:
            enrollment.responded_at = at
            changed.append("responded_at")
        # A reply ends an active sequence; bounce/unsubscribe are terminal and stay.
        if enrollment.state in (Enrollment.State.ACTIVE, Enrollment.State.FINISHED):
            enrollment.state = Enrollment.State.REPLIED
            changed.append("state")
        if event.sentiment and enrollment.sentiment != event.sentiment:
            enrollment.sentiment = event.sentiment
            changed.append("sentiment")
    elif kind == EmailEvent.Kind.BOUNCED:
        if enrollment.state != Enrollment.State.BOUNCED:
            enrollment.state = Enrollment.State.BOUNCED
            changed.append("state")
    elif kind == EmailEvent.Kind.UNSUBSCRIBED:
        if enrollment.state != Enrollment.State.UNSUBSCRIBED:
            enrollment.state = Enrollment.State.UNSUBSCRIBED
            changed.append("state")
    return changed


@transaction.atomic
def email_event_record(
    *,
    enrollment: Enrollment,
    external_id: str,
    kind: str,
    occurred_at: datetime,
    subject: str = "",
    snippet: str = "",
    sentiment: str = "",
) -> EventResult:
    """Record what the outreach engine reports. Replaying an external id changes nothing."""
    team_id = enrollment.sequence.team_id
    existing = EmailEvent.objects.filter(team_id=team_id, external_id=external_id).first()
    if existing:
        return EventResult(existing, False)
    if sentiment and kind != EmailEvent.Kind.REPLY_RECEIVED:
        raise ValidationError({"sentiment": MSG_SENTIMENT_NOT_REPLY}, code="sentiment")
    enrollment = Enrollment.objects.select_for_update().get(pk=enrollment.pk)
    first_reply = (
        kind == EmailEvent.Kind.REPLY_RECEIVED
        and not enrollment.events.filter(kind=EmailEvent.Kind.REPLY_RECEIVED).exists()
    )
    try:
        with transaction.atomic():
            event = EmailEvent.objects.create(
                team_id=team_id,
                enrollment=enrollment,
                external_id=external_id,
                kind=kind,
                occurred_at=occurred_at,
                subject=subject[:500],
                snippet=snippet,
                sentiment=sentiment,
            )
    except IntegrityError:
        return EventResult(EmailEvent.objects.get(team_id=team_id, external_id=external_id), False)
    changed = _apply_event(enrollment, event)
    if changed:
        enrollment.save(update_fields=sorted(set(changed)))
    email_event_recorded.send(
        sender=EmailEvent, event=event, enrollment=enrollment, first_reply=first_reply
    )
    return EventResult(event, True)


@transaction.atomic
def teammate_add(
    *,
    team: Team,
    email: str,
    first_name: str = "",
    last_name: str = "",
    role: str = Membership.Role.MEMBER,
    password: str | None = None,
) -> Membership:
    """Add a person to a team as a staff user who signs in by SSO or the given password."""
    normalized = email_validate(email)
    User = get_user_model()
    user = User.objects.filter(email__iexact=normalized).first()
    if user is None:
        user = User(
            username=normalized,
            email=normalized,
            first_name=first_name,
            last_name=last_name,
            is_staff=True,
        )
        if password:
            user.set_password(password)
        else:
            # Sign-in is by SSO until an owner sets a password.
            user.set_unusable_password()
        user.save()
    else:
        if Membership.objects.filter(team=team, user=user).exists():
            raise ValidationError(
                MSG_TEAMMATE_EXISTS.format(email=normalized, team=team.name), code="exists"
            )
        updates = []
        if not user.is_staff:
            user.is_staff = True
            updates.append("is_staff")
        if password:
            user.set_password(password)
            updates.append("password")
        if updates:
            user.save(update_fields=updates)
    return Membership.objects.create(team=team, user=user, role=role)


def _token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


TOKEN_PREFIX = "isk_"


@transaction.atomic
def api_token_create(*, team: Team, name: str, created_by=None) -> tuple[ApiToken, str]:
    """Returns the token row and the raw secret, which is never stored and shown only once."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        team=team, name=name, prefix=raw[:12], digest=_token_digest(raw), created_by=created_by
    )
    return token, raw


def api_token_authenticate(raw: str) -> ApiToken | None:
    if not raw:
        return None
    token = (
        ApiToken.objects.select_related("team")
        .filter(digest=_token_digest(raw), revoked_at__isnull=True)
        .first()
    )
    if token is not None:
        now = timezone.now()
        # Writing on every request would serialise API traffic on SQLite; a minute is enough.
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def api_token_revoke(*, token: ApiToken) -> bool:
    if token.revoked_at:
        return False
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    return True
