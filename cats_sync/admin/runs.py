"""Resync runs: progress, refreshed while a run has work left."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone

from interseller.admin.base import (
    ReadOnlyAdmin,
    TeamScopedAdmin,
)
from interseller.scoping import scope_for

from .. import services
from ..models import (
    ResyncRun,
    SyncTask,
)
from .common import runs_visible_to

MSG_RUN_CANCELLED = (
    "Resync cancelled: {left} contact(s) were left out; a later resync picks them up."
)
MSG_RUN_NOT_RUNNING = "This resync has already ended."


@admin.register(ResyncRun)
class ResyncRunAdmin(ReadOnlyAdmin, TeamScopedAdmin):
    ordering = ["-created_at"]
    list_display = ["description", "kind", "state", "total", "progress", "created_at"]
    list_filter = ["kind", "state"]
    list_select_related = ["team"]
    search_fields = ["description"]
    fields = ["description", "kind", "team", "state", "total", "skipped", "blocked", "created_at"]
    readonly_fields = fields
    change_form_template = "admin/cats_sync/resyncrun/change_form.html"

    def get_queryset(self, request):
        state = SyncTask.State
        # One rule for the list and its filters: see runs_visible_to.
        qs = super().get_queryset(request).filter(pk__in=runs_visible_to(request).values("pk"))
        # The selection of a big run can be long: only its page reads it (its length).
        return qs.defer("selection").annotate(
            _done=Count("tasks", filter=Q(tasks__state=state.DONE)),
            _failed=Count("tasks", filter=Q(tasks__state=state.FAILED)),
        )

    @admin.display(description="progress")
    def progress(self, obj):
        return f"{obj._done} done, {obj._failed} failed of {obj.total}"

    def get_urls(self):
        from django.urls import path

        return [
            path(
                "<path:object_id>/cancel/",
                self.admin_site.admin_view(self.cancel_view),
                name="cats_sync_resyncrun_cancel",
            ),
            *super().get_urls(),
        ]

    def may_cancel(self, request, run: ResyncRun) -> bool:
        """Who started the run, or an owner or manager of its team."""
        scope = scope_for(request)
        return scope.manages(run.team_id) or run.started_by_id == request.user.pk

    def cancel_view(self, request, object_id):
        run = self.get_object(request, object_id)  # 404 outside the user's scope
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.may_cancel(request, run):
            raise PermissionDenied
        if run.state not in (ResyncRun.State.RUNNING, ResyncRun.State.PLANNING):
            self.message_user(request, MSG_RUN_NOT_RUNNING, messages.WARNING)
        else:
            left = services.resync_cancel(run=run)
            self.message_user(request, MSG_RUN_CANCELLED.format(left=left), messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:cats_sync_resyncrun_change", args=[run.pk]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, object_id)
        progress = services.resync_progress(run=run)
        failed_url = (
            reverse("admin:interseller_enrollment_changelist")
            + f"?cats_run={run.pk}&cats_state=error"
        )
        extra = {
            "progress": progress,
            "running": run.state in (ResyncRun.State.RUNNING, ResyncRun.State.PLANNING),
            "planning": run.state == ResyncRun.State.PLANNING,
            "to_plan": len(run.selection or []),
            "percent": int(100 * progress.done / progress.total) if progress.total else 100,
            "failed_url": failed_url,
            "retry_bound": services.retry_bound_text(),
            "may_cancel": run.state in (ResyncRun.State.RUNNING, ResyncRun.State.PLANNING)
            and self.may_cancel(request, run),
            "cancel_url": reverse("admin:cats_sync_resyncrun_cancel", args=[run.pk]),
            "now": timezone.now(),
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra_context=extra)
