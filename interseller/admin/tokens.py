"""API tokens for the outreach engine: shown once, stored hashed, revocable."""

from __future__ import annotations

from django.contrib import admin, messages

from .. import services
from ..formats import date_text
from ..models import (
    ApiToken,
)
from .base import (
    TeamScopedAdmin,
)
from .filters import ScopedTeamFilter


@admin.register(ApiToken)
class ApiTokenAdmin(TeamScopedAdmin):
    managers_only = True
    list_display = ["name", "team", "prefix", "created_at", "last_used_at", "status"]
    list_filter = [ScopedTeamFilter]
    list_select_related = ["team"]
    search_fields = ["name", "prefix"]
    fields = ["team", "name"]
    actions = ["revoke"]

    @admin.display(description="status", boolean=False)
    def status(self, obj):
        return "active" if obj.is_active else f"revoked {date_text(obj.revoked_at)}"

    def get_readonly_fields(self, request, obj=None):
        return ["team", "name", "prefix", "created_at", "last_used_at", "revoked_at"] if obj else []

    def get_fields(self, request, obj=None):
        return self.get_readonly_fields(request, obj) if obj else ["team", "name"]

    def save_model(self, request, obj, form, change):
        if change:
            return
        token, raw = services.api_token_create(
            team=form.cleaned_data["team"],
            name=form.cleaned_data["name"],
            created_by=request.user,
        )
        obj.pk = token.pk
        obj.__dict__.update(token.__dict__)
        self.message_user(
            request,
            f"Token created. Copy it now, it will not be shown again: {raw}",
            messages.WARNING,
        )

    def has_change_permission(self, request, obj=None):
        # Tokens are immutable; the change page is read-only.
        return False if obj is not None else super().has_change_permission(request, obj)

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        revoked = sum(services.api_token_revoke(token=t) for t in queryset)
        self.message_user(request, f"Revoked {revoked} token(s).", messages.SUCCESS)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not self._may_write(request):
            actions.pop("revoke", None)
        return actions
