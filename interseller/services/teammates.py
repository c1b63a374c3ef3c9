"""Teammates: adding people to a team, their roles, taking them off it."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q

from ..models import Membership, Team
from .contacts import email_validate
from .messages import (
    MSG_LAST_OWNER,
    MSG_ONLY_OWNERS_GRANT_OWNER,
    MSG_TEAMMATE_AMBIGUOUS,
    MSG_TEAMMATE_EXISTS,
    MSG_TEAMMATE_INACTIVE,
    MSG_TEAMMATE_OTHER_TEAM,
    MSG_TEAMMATE_PASSWORD,
    MSG_TEAMMATE_PROTECTED,
)

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
