"""List filters of the core admins, each offering only what the user may see."""

from __future__ import annotations

from django.db.models import Exists, OuterRef

from ..models import (
    Contact,
    Enrollment,
    Membership,
    Sequence,
    Team,
)
from ..scoping import scoped_queryset
from .base import (
    ChoiceListFilter,
)


class ScopedTeamFilter(ChoiceListFilter):
    """Team filter listing only the user's own teams (a plain filter would list every team)."""

    title = "team"
    parameter_name = "team"
    team_path = "team"

    def lookups(self, request, model_admin):
        teams = scoped_queryset(request, Team)
        if teams.count() < 2 and not request.user.is_superuser:
            return []
        return [(t.pk, t.name) for t in teams]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{f"{self.team_path}_id": self.value()})
        return queryset


class SequenceTeamFilter(ScopedTeamFilter):
    team_path = "sequence__team"


class OwnerFilter(ChoiceListFilter):
    title = "owner"
    parameter_name = "owner"

    def lookups(self, request, model_admin):
        members = scoped_queryset(request, Membership)
        return [(m.pk, str(m)) for m in members]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(owner_id=self.value())
        return queryset


class SequenceFilter(ChoiceListFilter):
    """Contacts in a sequence: EXISTS, not a join and DISTINCT (which made PostgreSQL read
    and sort every contact of the sequence to show one page of them)."""

    title = "sequence"
    parameter_name = "sequence"

    def lookups(self, request, model_admin):
        return [(s.pk, s.title) for s in scoped_queryset(request, Sequence).order_by("title")]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(
                Exists(Enrollment.objects.filter(contact=OuterRef("pk"), sequence_id=self.value()))
            )
        return queryset


class EnrollmentSequenceFilter(SequenceFilter):
    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(sequence_id=self.value())
        return queryset


class SourceFilter(ChoiceListFilter):
    """The sources of the user's contacts, read once per team from the (team, source) index,
    not by a DISTINCT over every contact the list shows."""

    title = "source"
    parameter_name = "source"

    def lookups(self, request, model_admin):
        sources = (
            scoped_queryset(request, Contact)
            .exclude(source="")
            .order_by("source")
            .values_list("source", flat=True)
            .distinct()[:100]
        )
        return [(s, s) for s in sources]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(source=self.value())
        return queryset


class HasSequenceFilter(ChoiceListFilter):
    title = "in a sequence"
    parameter_name = "enrolled"

    def lookups(self, request, model_admin):
        return [("yes", "In a sequence"), ("no", "In no sequence")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(Exists(Enrollment.objects.filter(contact=OuterRef("pk"))))
        if self.value() == "no":
            return queryset.exclude(Exists(Enrollment.objects.filter(contact=OuterRef("pk"))))
        return queryset
