"""List filters for CATS state on contacts and enrollments."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q

from interseller.admin.base import (
    ChoiceListFilter,
)

from ..models import (
    EnrollmentSync,
    SyncIssue,
    SyncTask,
)
from .common import runs_visible_to


class InCatsFilter(ChoiceListFilter):
    title = "exists in CATS"
    parameter_name = "in_cats"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        in_cats = Exists(
            EnrollmentSync.objects.filter(enrollment__contact=OuterRef("pk"), exists_in_cats=True)
        )
        if self.value() == "yes":
            return queryset.filter(in_cats)
        if self.value() == "no":
            return queryset.exclude(in_cats)
        return queryset


ERROR_CHOICES = [(code, label) for code, label in EnrollmentSync.Error.choices if code]


class ContactCatsErrorFilter(ChoiceListFilter):
    title = "CATS error"
    parameter_name = "cats_error"

    def lookups(self, request, model_admin):
        return [("any", "Any error"), *ERROR_CHOICES]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        # Every open issue counts, not only the headline: "Exists in CATS" lists every
        # contact it marks, whatever else went wrong with it.
        issues = SyncIssue.objects.filter(enrollment_sync__enrollment__contact=OuterRef("pk"))
        if value != "any":
            issues = issues.filter(code=value)
        return queryset.filter(Exists(issues))


class SyncStateFilter(ChoiceListFilter):
    title = "CATS sync"
    parameter_name = "cats_state"

    def lookups(self, request, model_admin):
        return [
            ("synced", "Synced"),
            ("not_synced", "Not synced"),
            ("error", "Has an error"),
            *ERROR_CHOICES,
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "synced":
            return queryset.filter(cats_sync__synced_at__isnull=False)
        if value == "not_synced":
            return queryset.filter(Q(cats_sync__isnull=True) | Q(cats_sync__synced_at__isnull=True))
        if value == "error":
            return queryset.filter(cats_sync__isnull=False).exclude(cats_sync__error_code="")
        if value:
            return queryset.filter(cats_sync__error_code=value)
        return queryset


class ResyncRunFilter(ChoiceListFilter):
    title = "resync run"
    parameter_name = "cats_run"

    def lookups(self, request, model_admin):
        runs = runs_visible_to(request)
        choices = [(str(r.pk), str(r)) for r in runs[:10]]
        # An older run reached by its link ("failed rows of this run") is offered too.
        value = self.used_parameters.get(self.parameter_name)
        if value and value.isdigit() and all(pk != value for pk, _ in choices):
            run = runs.filter(pk=value).first()
            if run:
                choices.append((value, str(run)))
        return choices

    def queryset(self, request, queryset):
        value = self.value()
        if value:
            tasks = SyncTask.objects.filter(run_id=value)
            return queryset.filter(pk__in=tasks.values("enrollment_id"))
        return queryset
