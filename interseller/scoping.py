"""Who may see what. Every admin queryset, choice list and action goes through here.

Owners and managers see all of their teams' data; members see their own sequences and contacts
(and what hangs off them); superusers see everything. Computed once per request.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Model, Q, QuerySet

from .models import Contact, Enrollment, Membership, Sequence, Team


@dataclass(frozen=True)
class Scope:
    is_superuser: bool
    team_ids: frozenset[int]  # every team the user belongs to
    managed_team_ids: frozenset[int]  # teams where the user is owner or manager
    owned_team_ids: frozenset[int]  # teams where the user is owner
    membership_ids: frozenset[int]  # the user's own memberships
    # Memberships in teams the user does not manage: the only ones an owner path adds rows
    # for (a row owned by a membership belongs to that membership's team).
    member_only_ids: frozenset[int] = frozenset()

    def q(self, *, team: str, owners: tuple[str, ...] = ()) -> Q:
        """Rows of managed teams, plus rows whose `owners` path is one of the user's memberships.

        Without `owners`, every row of any of the user's teams (team-level data).
        """
        if self.is_superuser:
            return Q()
        if not owners:
            return Q(**{f"{team}__in": self.team_ids})
        q = Q(**{f"{team}__in": self.managed_team_ids})
        # Only the memberships outside managed teams: an owner's scope is then the plain
        # team filter, which lets PostgreSQL walk the (team, -created_at) index for a page
        # instead of sorting every row the OR matched.
        for path in owners:
            if self.member_only_ids:
                q |= Q(**{f"{path}__in": self.member_only_ids})
        return q

    def manages(self, team_id: int | None) -> bool:
        return self.is_superuser or team_id in self.managed_team_ids

    @property
    def manages_any(self) -> bool:
        return self.is_superuser or bool(self.managed_team_ids)


def scope_for(request_or_user) -> Scope:
    """The scope of a request's user (cached on the request) or of a user."""
    request = request_or_user if hasattr(request_or_user, "user") else None
    if request is not None and hasattr(request, "_interseller_scope"):
        return request._interseller_scope
    user = request.user if request is not None else request_or_user
    if not user.is_authenticated or not user.is_active:
        scope = Scope(False, frozenset(), frozenset(), frozenset(), frozenset())
    else:
        rows = list(Membership.objects.filter(user=user).values_list("id", "team_id", "role"))
        scope = Scope(
            is_superuser=user.is_superuser,
            team_ids=frozenset(t for _, t, _ in rows),
            managed_team_ids=frozenset(
                t for _, t, r in rows if r in (Membership.Role.OWNER, Membership.Role.MANAGER)
            ),
            owned_team_ids=frozenset(t for _, t, r in rows if r == Membership.Role.OWNER),
            membership_ids=frozenset(m for m, _, _ in rows),
            member_only_ids=frozenset(
                m for m, t, r in rows if r not in (Membership.Role.OWNER, Membership.Role.MANAGER)
            ),
        )
    if request is not None:
        request._interseller_scope = scope
    return scope


def scoped_queryset(request, model: type[Model]) -> QuerySet:
    """The rows of `model` this request's user may pick from in a form."""
    scope = scope_for(request)
    qs = model._default_manager.all()
    if model is Team:
        return qs.filter(scope.q(team="id"))
    if model is Membership:
        return qs.filter(scope.q(team="team", owners=("id",))).select_related("user", "team")
    if model is Sequence:
        return qs.filter(scope.q(team="team", owners=("owner",)))
    if model is Contact:
        return qs.filter(scope.q(team="team", owners=("owner",)))
    if model is Enrollment:
        return qs.filter(
            scope.q(team="sequence__team", owners=("sequence__owner", "contact__owner"))
        )
    return qs
