"""Writes that touch the domain. Every multi-row change goes through here, in a transaction,
and sends the signals integrations listen to."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from .models import ApiToken, Contact, EmailEvent, Enrollment, Membership, Sequence, Team
from .signals import (
    contact_added_to_sequence,
    contact_removed_from_sequence,
    email_event_recorded,
    sequence_owner_changed,
)
from .text import text_clean

MSG_EMAIL_INVALID = "'{email}' is not a valid email address."
MSG_EMAIL_REQUIRED = "An email address is required."
MSG_OWNER_OTHER_TEAM = "The owner must be a member of the contact's team."
MSG_SEQUENCE_OTHER_TEAM = "The sequence belongs to another team."
MSG_SEQUENCE_ARCHIVED = "The sequence “{sequence}” is archived: unarchive it to add contacts."
MSG_ALREADY_IN_SEQUENCE = "{contact} is already in the sequence “{sequence}”."
MSG_NOT_IN_SEQUENCE = "{email} is not in the sequence “{sequence}”."
MSG_SENTIMENT_NOT_REPLY = "A sentiment can only be given for a reply."
MSG_TEAMMATE_EXISTS = "{email} is already a member of {team}."
MSG_TEAMMATE_AMBIGUOUS = (
    "More than one account uses {email}. Ask an administrator to add this person."
)
MSG_TEAMMATE_PROTECTED = (
    "{email} is an administrator account. Only an administrator can add it to a team."
)
MSG_TEAMMATE_INACTIVE = (
    "The account of {email} is deactivated or has no staff access. Ask an administrator."
)
MSG_TEAMMATE_OTHER_TEAM = (
    "{email} already belongs to another team you do not manage. Ask an owner or manager of "
    "that team, or an administrator, to add them here."
)
MSG_TEAMMATE_PASSWORD = (
    "{email} already has an account: leave the password blank. They keep signing in as they "
    "do today; a password can only be set for a new account."
)
MSG_ONLY_OWNERS_GRANT_OWNER = "Only a team owner can make, change or remove an owner."
MSG_LAST_OWNER = (
    "This is the last owner of {team}: make another teammate an owner first. A team always "
    "keeps at least one owner."
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
        if enrollment.bounced_at is None or at < enrollment.bounced_at:
            enrollment.bounced_at = at
            changed.append("bounced_at")
        if enrollment.state != Enrollment.State.BOUNCED:
            enrollment.state = Enrollment.State.BOUNCED
            changed.append("state")
    elif kind == EmailEvent.Kind.UNSUBSCRIBED:
        if enrollment.unsubscribed_at is None or at < enrollment.unsubscribed_at:
            enrollment.unsubscribed_at = at
            changed.append("unsubscribed_at")
        if enrollment.state != Enrollment.State.UNSUBSCRIBED:
            enrollment.state = Enrollment.State.UNSUBSCRIBED
            changed.append("state")
    return changed


@dataclass(frozen=True)
class DateWindow:
    """The dates from `earliest` up to `ahead` past the present."""

    earliest: datetime
    ahead: timedelta

    def contains(self, when: datetime) -> bool:
        if timezone.is_naive(when):
            when = timezone.make_aware(when)
        return self.earliest <= when <= timezone.now() + self.ahead


# When an email event may have happened: not before 2000 (no outreach we record is older) and
# at most a day ahead of our clock (the sender's clock may run ahead of ours). A date outside
# is a bug upstream; one past 9999-12-31 in UTC cannot even be read back, and breaks every page
# that lists the event. Keep MSG_EVENT_DATE_WINDOW in step.
EVENT_DATE_WINDOW = DateWindow(earliest=datetime(2000, 1, 1, tzinfo=UTC), ahead=timedelta(days=1))
MSG_EVENT_DATE_WINDOW = "Must be between 2000-01-01T00:00:00Z and one day from now."


@transaction.atomic
def email_event_record(
    *,
    enrollment: Enrollment,
    external_id: str,
    kind: str,
    occurred_at: datetime | str,
    subject: str = "",
    snippet: str = "",
    sentiment: str = "",
) -> EventResult:
    """Record what the outreach engine reports. Replaying an external id changes nothing.

    Refuses (ValidationError, per field) a date outside EVENT_DATE_WINDOW and text that cannot
    be stored, before reading or writing anything.
    """
    errors: dict[str, ValidationError] = {}
    try:
        # Like the model field, take an ISO 8601 string too.
        occurred_at = EmailEvent._meta.get_field("occurred_at").to_python(occurred_at)
    except ValidationError as exc:
        errors["occurred_at"] = exc
    else:
        if occurred_at is None or not EVENT_DATE_WINDOW.contains(occurred_at):
            errors["occurred_at"] = ValidationError(MSG_EVENT_DATE_WINDOW, code="date_window")
    texts = {"external_id": external_id, "subject": subject, "snippet": snippet}
    for name, value in texts.items():
        try:
            texts[name] = text_clean(value, multiline=name == "snippet")
        except ValidationError as exc:
            errors[name] = exc
    if errors:
        raise ValidationError(errors)
    external_id, subject, snippet = texts["external_id"], texts["subject"], texts["snippet"]
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


# --- teammates ----------------------------------------------------------------------------------
#
# Who may do what to a user account (README, "Security"):
# - Adding a teammate by an email nobody uses creates a staff user; a password typed on the
#   form applies to that brand-new user only.
# - An email that already has an account is linked to the team as it is: its password, name,
#   flags and active state are never changed here. It is linked only when that is safe: an
#   active staff account that is not a superuser (unless a superuser adds them), and that
#   belongs to no team the person adding it does not manage. Anything else is refused with a
#   message that says why.
# - Only owners grant, change or remove the Owner role; a team's last owner can be neither
#   demoted nor removed, by anyone.


class TeammateRefused(ValidationError):
    """Adding, changing or removing a teammate is not allowed; the message says why."""


def _user_matches(email: str):
    User = get_user_model()
    return User.objects.filter(Q(email__iexact=email) | Q(username__iexact=email))


def teammate_add_check(*, team: Team, email: str, password: str = "", added_by=None) -> None:
    """Raise TeammateRefused if `email` may not be added to `team` by `added_by` (a User;
    None for commands run by an operator). Reads only: the form calls it to show errors."""
    normalized = email_validate(email)
    matches = list(_user_matches(normalized)[:2])
    if not matches:
        return
    if len(matches) > 1:
        raise TeammateRefused({"email": MSG_TEAMMATE_AMBIGUOUS.format(email=normalized)})
    user = matches[0]
    if Membership.objects.filter(team=team, user=user).exists():
        raise TeammateRefused(
            {"email": MSG_TEAMMATE_EXISTS.format(email=normalized, team=team.name)},
            code="exists",
        )
    acting_superuser = added_by is not None and added_by.is_superuser
    if user.is_superuser and not acting_superuser:
        raise TeammateRefused({"email": MSG_TEAMMATE_PROTECTED.format(email=normalized)})
    if not (user.is_active and user.is_staff):
        raise TeammateRefused({"email": MSG_TEAMMATE_INACTIVE.format(email=normalized)})
    if not acting_superuser:
        other_teams = set(
            Membership.objects.filter(user=user)
            .exclude(team=team)
            .values_list("team_id", flat=True)
        )
        managed = set()
        if added_by is not None:
            managed = set(
                Membership.objects.filter(
                    user=added_by, role__in=[Membership.Role.OWNER, Membership.Role.MANAGER]
                ).values_list("team_id", flat=True)
            )
        if other_teams - managed:
            raise TeammateRefused({"email": MSG_TEAMMATE_OTHER_TEAM.format(email=normalized)})
    if password:
        raise TeammateRefused({"password": MSG_TEAMMATE_PASSWORD.format(email=normalized)})


@transaction.atomic
def teammate_add(
    *,
    team: Team,
    email: str,
    first_name: str = "",
    last_name: str = "",
    role: str = Membership.Role.MEMBER,
    password: str | None = None,
    added_by=None,
) -> Membership:
    """Add a person to a team. A new email becomes a staff user who signs in by SSO or the
    given password; an existing account is linked unchanged, when the rules above allow."""
    normalized = email_validate(email)
    teammate_add_check(team=team, email=normalized, password=password or "", added_by=added_by)
    user = _user_matches(normalized).first()
    if user is None:
        User = get_user_model()
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
            # Sign-in is by SSO until the person sets a password (or an administrator does).
            user.set_unusable_password()
        user.save()
    try:
        with transaction.atomic():
            return Membership.objects.create(team=team, user=user, role=role)
    except IntegrityError:
        raise TeammateRefused(
            {"email": MSG_TEAMMATE_EXISTS.format(email=normalized, team=team.name)},
            code="exists",
        ) from None


def _owners_left(team_id: int, *, without: int) -> int:
    # Locked, so two owners removing each other at once cannot leave the team without one.
    with transaction.atomic():
        owners = (
            Membership.objects.select_for_update()
            .filter(team_id=team_id, role=Membership.Role.OWNER)
            .exclude(pk=without)
            .values_list("pk", flat=True)
        )
        return len(list(owners))


def membership_change_check(
    *, membership: Membership, role: str, changed_by=None, removing: bool = False
) -> None:
    """Raise TeammateRefused unless `changed_by` (a User; None for an operator) may give
    `membership` this role, or remove it."""
    previous = Membership.objects.filter(pk=membership.pk).values_list("role", flat=True).first()
    touches_owner = Membership.Role.OWNER in (role, previous) or (
        removing and previous == Membership.Role.OWNER
    )
    if touches_owner and changed_by is not None and not changed_by.is_superuser:
        owns = Membership.objects.filter(
            user=changed_by, team_id=membership.team_id, role=Membership.Role.OWNER
        ).exists()
        if not owns:
            raise TeammateRefused(MSG_ONLY_OWNERS_GRANT_OWNER, code="owner")
    losing_owner = previous == Membership.Role.OWNER and (removing or role != previous)
    if losing_owner and not _owners_left(membership.team_id, without=membership.pk):
        raise TeammateRefused(MSG_LAST_OWNER.format(team=membership.team), code="last_owner")


@transaction.atomic
def membership_role_change(
    *, membership: Membership, role: str, integration: str | None = None, changed_by=None
) -> Membership:
    membership_change_check(membership=membership, role=role, changed_by=changed_by)
    membership.role = role
    fields = ["role", "updated_at"]
    if integration is not None:
        membership.integration = integration
        fields.append("integration")
    membership.save(update_fields=fields)
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, removed_by=None) -> None:
    """Take a person off a team. Their user account stays as it is."""
    membership_change_check(
        membership=membership, role=membership.role, changed_by=removed_by, removing=True
    )
    membership.delete()


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
