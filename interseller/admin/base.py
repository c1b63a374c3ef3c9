"""The admin's team scoping, shared by every ModelAdmin of every app.

Scoping is enforced here on the server: querysets, object pages reached by typed URL,
autocomplete, foreign-key choices, and actions posted with hand-made ids. Another team's object
answers 404. Also the changelist that turns odd filter values into Django's "invalid filter"
redirect, and the small mixins the core's admins share.
"""

from __future__ import annotations

from datetime import MAXYEAR, MINYEAR
from typing import Any

from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Model, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404

from ..forms import TeamConsistentForm
from ..models import Membership, Sequence, Team
from ..scoping import Scope, scope_for, scoped_queryset


def team_id_of(obj: Model, path: str) -> int | None:
    """Follow a `a__b__team` path to the team's id without loading the team."""
    if path == "id":
        return obj.pk  # the object is a team (TeamAdmin's path)
    *hops, last = path.split("__")
    for hop in hops:
        obj = getattr(obj, hop, None)
        if obj is None:
            return None
    return getattr(obj, f"{last}_id", None)


class ChoiceListFilter(admin.SimpleListFilter):
    """A list filter that counts its value only when it is one of its own choices.

    The choices are already scoped to the user, so a hand-typed value (garbage, or the id of
    another team's row) is as if no choice were made: never a 500, never another team's data.
    """

    def value(self) -> str | None:
        value = super().value()
        choices = getattr(self, "lookup_choices", None)
        if value is None or choices is None:  # lookups() itself asking: no choices yet
            return value
        return value if str(value) in {str(key) for key, _ in choices} else None


# Drill-down parts Django can turn into a date and into the day, month or year after it.
_DATE_PARTS = {"year": (MINYEAR, MAXYEAR - 1), "month": (1, 12), "day": (1, 31)}


def _int_between(value: str, low: int, high: int) -> bool:
    try:
        return low <= int(value) <= high
    except ValueError:
        return False


class LenientChangeList(ChangeList):
    """Django's changelist, answering with its invalid-filter redirect ("?e=1") what its own
    checks let through to a 500: a date drill-down into year 9999 (the end of the period
    overflows) or past a C int, a NUL in a filter (PostgreSQL refuses it in any text), and an
    integer past 64 bits (SQLite refuses it when the query runs)."""

    def get_filters(self, request):
        params = self.get_filters_params()
        if any("\x00" in value for values in params.values() for value in values):
            raise IncorrectLookupParameters("A filter value holds a NUL character.")
        if self.date_hierarchy:
            for part, (low, high) in _DATE_PARTS.items():
                values = params.get(f"{self.date_hierarchy}__{part}")
                if values and not _int_between(values[-1], low, high):
                    raise IncorrectLookupParameters(f"No such {part}: {values[-1]!r}.")
        return super().get_filters(request)

    def get_results(self, request):
        try:
            super().get_results(request)
        except OverflowError as exc:
            raise IncorrectLookupParameters(exc) from exc


class FarPagePaginator(Paginator):
    """A page far down a list reads its rows' ids first, then those rows.

    An OFFSET over whole rows reads and drops every row before the page (the last page of
    100,000 contacts read 100,000 rows); the ids alone come from the list's index (each list
    index holds the id it orders ties by), and then only the page's rows are read.
    """

    far = 1000

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        rows = self.object_list
        if bottom >= self.far and isinstance(rows, QuerySet) and not rows.query.distinct:
            ids = list(rows.values_list("pk", flat=True)[bottom:top])
            return self._get_page(rows.filter(pk__in=ids), number, self)
        return self._get_page(rows[bottom:top], number, self)


def _initial_value(field, value: Any) -> Any:
    """A value from the add page's query string as its field holds it, or ValidationError.

    An unknown id renders as nothing, but "abc" for a foreign key fails when the widget
    queries, and any text fails the date-and-time widget.
    """
    if not field.is_relation:
        value = field.to_python(value)
        field.run_validators(value)
        return value
    for item in value if isinstance(value, list) else [value]:
        field.target_field.run_validators(field.target_field.to_python(item))
    return value


class TeamScopedAdmin(admin.ModelAdmin):
    """Base for every ModelAdmin. Subclasses say where the team and the owner live."""

    form = TeamConsistentForm
    paginator = FarPagePaginator
    scope_team_path: str = "team"
    # Paths to a Membership that makes a row a member's own; empty = team-level data.
    scope_owner_paths: tuple[str, ...] = ()
    # Team-level settings (team, memberships, groups): members may look, not touch.
    managers_only_write: bool = False
    # Secrets and the like: members may not even look.
    managers_only: bool = False

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        scope = scope_for(request)
        if scope.is_superuser:
            return qs
        if self.managers_only:
            return qs.filter(**{f"{self.scope_team_path}__in": scope.managed_team_ids})
        return qs.filter(scope.q(team=self.scope_team_path, owners=self.scope_owner_paths))

    # --- permissions: roles, not Django's per-model permissions ---------------------------
    def _scope(self, request) -> Scope:
        return scope_for(request)

    def _staff_in_a_team(self, request) -> bool:
        scope = self._scope(request)
        if scope.is_superuser:
            return True
        if not (request.user.is_active and request.user.is_staff and scope.team_ids):
            return False
        return not self.managers_only or scope.manages_any

    def _in_scope(self, request, obj) -> bool:
        return self.get_queryset(request).filter(pk=obj.pk).exists()

    def has_module_permission(self, request) -> bool:
        return self._staff_in_a_team(request)

    def has_view_permission(self, request, obj=None) -> bool:
        if not self._staff_in_a_team(request):
            return False
        return obj is None or self._scope(request).is_superuser or self._in_scope(request, obj)

    def _may_write(self, request, obj=None) -> bool:
        if not self.has_view_permission(request, obj):
            return False
        scope = self._scope(request)
        if not (self.managers_only_write or self.managers_only):
            return True
        if obj is None:
            return scope.manages_any
        return scope.manages(team_id_of(obj, self.scope_team_path))

    def has_add_permission(self, request) -> bool:
        return self._may_write(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._may_write(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._may_write(request, obj)

    # --- another team's object: 404, never a redirect or a 403 that confirms it exists -----
    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404(f"No {self.opts.verbose_name} matches the given query.")
        return obj

    def get_changelist(self, request, **kwargs):
        return LenientChangeList

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        for name, value in list(initial.items()):
            try:
                field = self.opts.get_field(name)
            except FieldDoesNotExist:
                continue
            if not field.concrete:
                continue
            try:
                initial[name] = _initial_value(field, value)
            except ValidationError:
                del initial[name]
        # A new row of a team-owned model starts in the user's team when they may pick only one.
        if "team" not in initial and self._has_team_field():
            teams = list(self.choice_queryset(request, self.opts.get_field("team"))[:2])
            if len(teams) == 1:
                initial["team"] = teams[0].pk
        return initial

    def _has_team_field(self) -> bool:
        try:
            return self.opts.get_field("team").remote_field.model is Team
        except (FieldDoesNotExist, AttributeError):
            return False

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        # Records the system writes (events, queue rows) live and die with their parent: who
        # may delete the parent deletes them too, though nobody but a superuser deletes them
        # on their own. Every other related object still needs its own delete permission.
        system_records = set()
        other_models = set()
        for model, model_admin in self.admin_site._registry.items():
            names = system_records if isinstance(model_admin, ReadOnlyAdmin) else other_models
            names.add(model._meta.verbose_name)
        return deleted, counts, perms_needed - (system_records - other_models), protected

    def response_action(self, request, queryset):
        selected = request.POST.getlist(ACTION_CHECKBOX_NAME)
        if selected and request.POST.get("select_across") != "1":
            try:
                visible = queryset.filter(pk__in=selected).count()
            except (ValueError, TypeError):
                raise Http404("Unknown selection.") from None
            if visible != len(set(selected)):
                raise Http404("Some selected objects do not exist.")
        return super().response_action(request, queryset)

    # --- choices ------------------------------------------------------------------------
    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "queryset" not in kwargs:
            kwargs["queryset"] = self.choice_queryset(request, db_field)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if "queryset" not in kwargs:
            kwargs["queryset"] = self.choice_queryset(request, db_field)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def choice_queryset(self, request, db_field) -> QuerySet:
        model = db_field.remote_field.model
        qs = scoped_queryset(request, model)
        scope = self._scope(request)
        if model is Team and (self.managers_only_write or self.managers_only):
            if not scope.is_superuser:
                qs = qs.filter(pk__in=scope.managed_team_ids)
        if model is Sequence:
            qs = qs.filter(archived=False)
        return qs


class ReadOnlyAdmin:
    """Records the system writes (events, runs, jobs, queue rows): people look, never edit;
    superusers may delete."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


def count_of(model) -> Subquery:
    rows = model.objects.filter(team=OuterRef("pk")).order_by().values("team")
    return Coalesce(Subquery(rows.annotate(n=Count("pk")).values("n")), 0)


class OwnedByMeByDefault:
    """A new sequence or contact starts out in the user's team, owned by them."""

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        own = scoped_queryset(request, Membership).filter(user=request.user)
        if own.count() == 1:
            initial.setdefault("team", own[0].team_id)
            initial.setdefault("owner", own[0].pk)
        return initial


class EnrollmentColumns:
    """Columns of rows that hang off an enrollment."""

    @admin.display(description="contact", ordering="enrollment__contact__email")
    def contact_email(self, obj):
        return obj.enrollment.contact.email

    @admin.display(description="sequence", ordering="enrollment__sequence__title")
    def sequence_title(self, obj):
        return obj.enrollment.sequence.title


def count_column(attribute: str, description: str):
    """A changelist column showing a count the queryset annotated as `attribute`."""

    @admin.display(description=description, ordering=attribute)
    def column(self, obj):
        return getattr(obj, attribute)

    return column
