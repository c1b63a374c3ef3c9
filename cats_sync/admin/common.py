"""What the CATS admin pages share: inlines that answer with their parent's permissions, the
resync confirmation step, and small lookups."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import Q, QuerySet
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from interseller.forms import MSG_ONE_TEAM
from interseller.models import Enrollment, Team
from interseller.scoping import scope_for, scoped_queryset

from .. import services
from ..forms import (
    SYNCING_HELP,
    FieldMappingForm,
    SequenceSyncForm,
)
from ..models import (
    CatsAccount,
    EnrollmentSync,
    FieldMapping,
    ResyncRun,
    SequenceSync,
)

MSG_NOTHING_TO_RESYNC = "None of the selected rows has a contact in a sequence."
MSG_RESYNC_STARTED = (
    "Resync started: {total} contact(s) queued, {skipped} already synced, {blocked} blocked."
)
MSG_RESYNC_PLANNING = (
    "Resync started: its {count:,} contacts are being queued in the background; "
    "this page shows how far it has got."
)


def sync_of(enrollment: Enrollment) -> EnrollmentSync | None:
    try:
        return enrollment.cats_sync
    except EnrollmentSync.DoesNotExist:
        return None


def site_of_membership(membership_id: int | None) -> int | None:
    if membership_id is None:
        return None
    return (
        CatsAccount.objects.filter(membership_id=membership_id)
        .values_list("site_id", flat=True)
        .first()
    )


def runs_visible_to(request) -> QuerySet:
    """The resync runs whose rows `ResyncRunAdmin` lists to this user: a run has no owning
    member, so members see the runs they started, owners and managers their teams' runs."""
    scope = scope_for(request)
    runs = ResyncRun.objects.all()
    if scope.is_superuser:
        return runs
    return runs.filter(
        Q(team_id__in=scope.managed_team_ids)
        | Q(team_id__in=scope.team_ids, started_by=request.user)
    )


class ParentScopedInline:
    """Inlines answer with the parent admin's (role-based) permissions, not Django's."""

    def _parent(self):
        return self.admin_site._registry[self.parent_model]

    def has_view_permission(self, request, obj=None) -> bool:
        return self._parent().has_view_permission(request, obj)

    def has_add_permission(self, request, obj=None) -> bool:
        parent = self._parent()
        if obj is None:
            return parent.has_add_permission(request)
        return parent.has_change_permission(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return self.has_add_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.has_add_permission(request, obj)


class FieldMappingInline(ParentScopedInline, admin.TabularInline):
    model = FieldMapping
    form = FieldMappingForm
    extra = 0
    max_num = len(FieldMapping.Value.choices)
    verbose_name = "custom field mapping"
    verbose_name_plural = "Custom field mapping"
    fields = ["value", "field_id"]

    def get_formset(self, request, obj=None, **kwargs):
        site_id = obj.site_id if obj else None
        kwargs["form"] = type("SiteFieldMappingForm", (self.form,), {"site_id": site_id})
        return super().get_formset(request, obj, **kwargs)


class SequenceSyncInline(ParentScopedInline, admin.StackedInline):
    model = SequenceSync
    form = SequenceSyncForm
    extra = 1
    max_num = 1
    can_delete = False
    verbose_name = "Syncing"
    verbose_name_plural = "Syncing"
    fieldsets = [(None, {"fields": ["notice", "enabled", "job_id"], "description": SYNCING_HELP})]
    readonly_fields = ["notice"]

    def get_formset(self, request, obj=None, **kwargs):
        site_id = site_of_membership(obj.owner_id) if obj else None
        kwargs["form"] = type("SiteSequenceSyncForm", (self.form,), {"site_id": site_id})
        return super().get_formset(request, obj, **kwargs)


def resync_action(modeladmin, request, enrollments: QuerySet, *, action: str, what: str):
    """Plan (no CATS request), confirm, start a run, show its progress."""
    enrollments = scoped_queryset(request, Enrollment).filter(
        pk__in=enrollments.values("pk").order_by()
    )
    team_ids = set(enrollments.order_by().values_list("sequence__team_id", flat=True).distinct())
    if not team_ids:
        modeladmin.message_user(request, MSG_NOTHING_TO_RESYNC, messages.WARNING)
        return None
    if len(team_ids) > 1:
        modeladmin.message_user(request, MSG_ONE_TEAM, messages.ERROR)
        return None
    if request.POST.get("confirm") == "yes":
        run = services.resync_start(
            enrollments=enrollments,
            started_by=request.user,
            team=Team.objects.get(pk=next(iter(team_ids))),
            description=what,
        )
        if run.state == run.State.PLANNING:
            message = MSG_RESYNC_PLANNING.format(count=len(run.selection))
        else:
            message = MSG_RESYNC_STARTED.format(
                total=run.total, skipped=run.skipped, blocked=run.blocked
            )
        modeladmin.message_user(request, message, messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:cats_sync_resyncrun_change", args=[run.pk]))
    plan = services.resync_counts(enrollments=enrollments)
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Resync to CATS",
        "opts": modeladmin.model._meta,
        "what": what,
        "plan": plan,
        "to_sync": plan.sync_count,
        "blocked": sorted(plan.blocked.items()),
        "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across", "0"),
        "action": action,
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/cats_sync/resync_confirm.html", context)


def resync_selected(modeladmin, request, queryset: QuerySet, field: str, noun: str):
    """Resync the enrollments whose `field` is one of the selected rows."""
    ids = ids_of(queryset)
    return resync_action(
        modeladmin,
        request,
        Enrollment.objects.filter(**{f"{field}__in": ids}),
        action="resync_to_cats",
        what=f"Resync of {len(ids)} {noun}",
    )


def ids_of(queryset: QuerySet) -> list[int]:
    # Plain ids: the changelist querysets carry GROUP BY annotations.
    return list(queryset.order_by().values_list("pk", flat=True))
