"""The CATS sync health page, and its summary box on the admin index."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse

from interseller.scoping import scope_for

from .. import services


def _may_see(request) -> bool:
    scope = scope_for(request)
    return (
        request.user.is_active
        and request.user.is_staff
        and (scope.is_superuser or bool(scope.team_ids))
    )


def health_view(modeladmin, request):
    if not _may_see(request):
        raise PermissionDenied
    health = services.health_for(request)
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "CATS sync health",
        "opts": modeladmin.model._meta,
        "health": health,
        "refresh_seconds": 60,
    }
    return TemplateResponse(request, "admin/cats_sync/health.html", context)


def index_summary(request) -> str:
    """The admin index's box: healthy, or the problems in one line each, linking the page."""
    if not _may_see(request):
        return ""
    health = services.health_for(request, summary=True)
    return render_to_string(
        "admin/cats_sync/health_summary.html",
        {"health": health, "url": reverse("admin:cats_sync_health")},
        request=request,
    )
