"""Teams, memberships (adding teammates, roles) and groups."""

from __future__ import annotations

from django.contrib import admin
from django.db import transaction
from django.db.models import Count

from .. import services
from ..forms import (
    MembershipChangeForm,
    TeammateAddForm,
)
from ..models import (
    Contact,
    Group,
    Membership,
    Sequence,
    Team,
    TeamWebhookDelivery,
)
from ..scoping import scope_for
from .base import (
    TeamScopedAdmin,
    count_column,
    count_of,
)
from .filters import ScopedTeamFilter


@admin.register(Team)
class TeamAdmin(TeamScopedAdmin):
    # Meta.ordering is dropped by the GROUP BY of the count annotations.
    ordering = ["name"]
    scope_team_path = "id"
    managers_only_write = True
    list_display = ["name", "member_count", "sequence_count", "contact_count", "created_at"]
    search_fields = ["name"]
    readonly_fields = ["signing_secret", "webhook_failures", "created_at", "updated_at"]
    exclude = ["webhook_secret"]

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        # The engine's signing key: for the team's owners and managers only.
        if obj is None or not scope_for(request).manages(obj.pk):
            fields = [f for f in fields if f != "signing_secret"]
        return fields

    @admin.display(description="Webhook signing secret")
    def signing_secret(self, obj):
        return obj.webhook_secret or "Made when a webhook URL is saved."

    @admin.display(description="Webhook deliveries given up")
    def webhook_failures(self, obj):
        failed = obj.webhook_deliveries.filter(state=TeamWebhookDelivery.State.FAILED)
        latest = failed.order_by("-updated_at").first()
        if latest is None:
            return "None"
        return f"{failed.count()}; latest: {latest.last_error}"

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        services.team_webhook_secret_ensure(team=obj)

    def get_queryset(self, request):
        # Subqueries, not joins: three joined reverse relations would multiply rows.
        return (
            super()
            .get_queryset(request)
            .annotate(
                _members=count_of(Membership),
                _sequences=count_of(Sequence),
                _contacts=count_of(Contact),
            )
        )

    member_count = count_column("_members", "members")

    sequence_count = count_column("_sequences", "sequences")

    contact_count = count_column("_contacts", "contacts")

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(Membership)
class MembershipAdmin(TeamScopedAdmin):
    managers_only_write = True
    list_display = ["person", "email", "team", "role", "integration", "group_list", "created_at"]
    list_filter = [ScopedTeamFilter, "role", "integration"]
    list_select_related = ["user", "team"]
    search_fields = ["user__email", "user__first_name", "user__last_name"]
    autocomplete_fields = []
    readonly_fields = ["user", "team", "created_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description="name", ordering="user__last_name")
    def person(self, obj):
        return obj.user.get_full_name() or obj.user.username

    @admin.display(description="email", ordering="user__email")
    def email(self, obj):
        return obj.user.email

    @admin.display(description="groups")
    def group_list(self, obj):
        return ", ".join(g.name for g in obj.groups.all())

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = TeammateAddForm if obj is None else MembershipChangeForm
        form = super().get_form(request, obj, change=change, **kwargs)

        class WithRequest(form):
            def __init__(inner, *args, **kw):
                super().__init__(*args, request=request, **kw)

        return WithRequest

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["team", "email", "first_name", "last_name", "role", "password"]
        return ["user", "team", "role", "integration", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            services.membership_role_change(
                membership=obj,
                role=data["role"],
                integration=data.get("integration"),
                changed_by=request.user,
            )
            return
        membership = services.teammate_add(
            team=data["team"],
            email=data["email"],
            first_name=data["first_name"],
            last_name=data["last_name"],
            role=data["role"],
            password=data["password"] or None,
            added_by=request.user,
        )
        obj.__dict__.update(membership.__dict__)

    def has_delete_permission(self, request, obj=None) -> bool:
        if not super().has_delete_permission(request, obj):
            return False
        if obj is None:
            return True
        # Owners alone remove owners (the delete page and the bulk action ask this for every
        # membership they would delete); the last owner is refused in get_deleted_objects,
        # where the page can say why.
        if obj.role != Membership.Role.OWNER:
            return True
        scope = scope_for(request)
        return scope.is_superuser or obj.team_id in scope.owned_team_ids

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        # Each membership may go on its own, yet not all owners of a team at once.
        leaving: dict[int, list[Membership]] = {}
        for membership in objs:
            if membership.role == Membership.Role.OWNER:
                leaving.setdefault(membership.team_id, []).append(membership)
        for team_id, owners in leaving.items():
            total = Membership.objects.filter(team_id=team_id, role=Membership.Role.OWNER)
            if total.count() <= len(owners):
                protected = [
                    *protected,
                    services.MSG_LAST_OWNER.format(team=owners[0].team),
                ]
        return deleted, counts, perms_needed, protected

    def delete_model(self, request, obj):
        services.membership_remove(membership=obj, removed_by=request.user)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for membership in queryset.select_related("team"):
                services.membership_remove(membership=membership, removed_by=request.user)


@admin.register(Group)
class GroupAdmin(TeamScopedAdmin):
    # Meta.ordering is dropped by the GROUP BY of the count annotations.
    ordering = ["team__name", "name"]
    managers_only_write = True
    list_display = ["name", "team", "member_count", "created_at"]
    list_filter = [ScopedTeamFilter]
    list_select_related = ["team"]
    search_fields = ["name"]
    filter_horizontal = ["members"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_members=Count("members"))

    member_count = count_column("_members", "members")
