"""Our cached copy of CATS (sites, job orders): superusers look, nobody edits."""

from __future__ import annotations

from django.contrib import admin

from interseller.admin.base import (
    ReadOnlyAdmin,
)

from ..models import (
    CatsJob,
    CatsSite,
)


class SuperuserReadOnlyAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    """CATS metadata we cache: for support staff to look at, never to edit."""

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(CatsSite)
class CatsSiteAdmin(SuperuserReadOnlyAdmin):
    list_display = ["subdomain", "cats_id", "rate_limit", "blocked_until", "jobs_refreshed_at"]
    search_fields = ["subdomain"]


@admin.register(CatsJob)
class CatsJobAdmin(SuperuserReadOnlyAdmin):
    list_display = ["cats_id", "title", "site", "status_title", "is_open", "exists"]
    list_filter = ["is_open", "exists"]
    list_select_related = ["site"]
    search_fields = ["title"]
