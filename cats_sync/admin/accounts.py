"""CATS connections and settings: connecting, the mapping, the settings check, refresh,
disconnect, resync of a member's sequences, and cloning settings to teammates."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, OuterRef, Q, Subquery
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html

from interseller.admin.base import (
    TeamScopedAdmin,
    count_column,
)
from interseller.models import Enrollment, Membership
from interseller.scoping import scope_for, scoped_queryset

from .. import crypto, queue, services
from .. import messages as cats_messages
from ..errors import CatsSyncError
from ..forms import (
    SYNC_SETTINGS,
    CatsAccountForm,
    CloneTargetsForm,
)
from ..models import (
    CatsAccount,
    CatsJob,
    SyncTask,
)
from .common import (
    FieldMappingInline,
    confirm_context,
    resync_action,
    resync_description_of_members,
)
from .health import health_view

MSG_CLONE_ONE_SOURCE = "Select exactly one CATS connection to clone its settings from."
MSG_CLONE_MANAGERS_ONLY = "Only owners and managers can clone CATS settings to teammates."
MSG_KEY_UNREADABLE = "cannot be decrypted"
MSG_READING_METADATA = "Reading job orders and custom fields from CATS… reload in a few seconds."
MSG_METADATA_MISSING = (
    "Job orders and custom fields could not be read from CATS yet: run the action “Refresh job "
    "orders and custom fields from CATS” on the connections list (it says what CATS answered)."
)
METADATA_GRACE = timedelta(minutes=2)


def _job_title_of_default() -> Subquery:
    jobs = CatsJob.objects.filter(site_id=OuterRef("site_id"), cats_id=OuterRef("default_job_id"))
    return Subquery(jobs.values("title")[:1])


@admin.register(CatsAccount)
class CatsAccountAdmin(TeamScopedAdmin):
    form = CatsAccountForm
    scope_team_path = "membership__team"
    scope_owner_paths = ("membership",)
    ordering = ["membership__team__name", "membership__user__email"]
    list_display = [
        "member",
        "subdomain",
        "connection",
        "masked_key",
        "sync_mode",
        "deduplication",
        "default_job",
        "pending_count",
        "paused_count",
        "failed_count",
        "connected_at",
    ]
    list_filter = ["status", "sync_mode"]
    list_select_related = ["membership__user", "membership__team"]
    search_fields = ["subdomain", "membership__user__email", "membership__user__last_name"]
    inlines = [FieldMappingInline]
    actions = [
        "check_settings",
        "refresh_from_cats",
        "disconnect",
        "resync_to_cats",
        "clone_settings",
    ]
    change_form_template = "admin/cats_sync/catsaccount/change_form.html"

    def get_queryset(self, request):
        tasks = SyncTask.State
        return (
            super()
            .get_queryset(request)
            .annotate(
                _job_title=_job_title_of_default(),
                _pending=Count("tasks", filter=Q(tasks__state=tasks.PENDING)),
                _paused=Count("tasks", filter=Q(tasks__state=tasks.PAUSED)),
                _failed=Count("tasks", filter=Q(tasks__state=tasks.FAILED)),
            )
        )

    # --- columns ---------------------------------------------------------------------------
    @admin.display(description="member", ordering="membership__user__email")
    def member(self, obj):
        return str(obj.membership)

    @admin.display(description="status", ordering="status")
    def connection(self, obj):
        if obj.status == CatsAccount.Status.INVALID:
            return format_html('<strong style="color:#ba2121">{}</strong>', "invalid: reconnect")
        return obj.get_status_display()

    @admin.display(description="API key")
    def masked_key(self, obj):
        if not obj.api_key_encrypted:
            return crypto.mask(None)
        try:
            return crypto.mask(crypto.decrypt(obj.api_key_encrypted))
        except crypto.KeyDecryptionError:
            return MSG_KEY_UNREADABLE

    @admin.display(description="default job order", ordering="default_job_id")
    def default_job(self, obj):
        if not obj.default_job_id:
            return "—"
        title = getattr(obj, "_job_title", None)
        return f"#{obj.default_job_id} {title}" if title else f"#{obj.default_job_id}"

    pending_count = count_column("_pending", "pending")

    paused_count = count_column("_paused", "paused")

    failed_count = count_column("_failed", "failed")

    @admin.display(description="connection")
    def connection_hint(self, obj):
        if obj is None or obj.pk is None:
            return "Enter the subdomain and API key and save to connect."
        lines = [obj.get_status_display()]
        if obj.status_message:
            lines.append(obj.status_message)
        if obj.status == CatsAccount.Status.INVALID:
            lines.append("Reconnect: enter a new API key below and save.")
        elif not obj.is_connected:
            lines.append("Connect: enter the subdomain and API key below and save.")
        elif obj.site_id:
            lines.append(f"Site: {obj.site}")
            if obj.site.jobs_refreshed_at is None:
                # The worker reads them within seconds of connecting; long after, it failed.
                recent = obj.connected_at and timezone.now() - obj.connected_at < METADATA_GRACE
                lines.append(MSG_READING_METADATA if recent else MSG_METADATA_MISSING)
        return format_html("<br>".join(["{}"] * len(lines)), *lines)

    # --- pages -----------------------------------------------------------------------------
    def get_fieldsets(self, request, obj=None):
        connection = ["membership", "subdomain", "api_key"]
        if obj is not None:
            connection = ["membership", "connection_hint", "masked_key", "subdomain", "api_key"]
        stops = ["stop_status"]
        if obj is not None:
            stops.append("webhook_hint")
        return [
            ("Connection", {"fields": connection}),
            ("Sync settings", {"fields": list(SYNC_SETTINGS)}),
            ("When CATS moves a candidate", {"fields": stops}),
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["membership", "connection_hint", "masked_key", "webhook_hint"]

    @admin.display(description="How we hear of it")
    def webhook_hint(self, obj):
        return services.webhook_words(obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "membership":
            kwargs["queryset"] = self.choice_queryset(request, db_field).filter(
                cats_account__isnull=True
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        own = scoped_queryset(request, Membership).filter(
            user=request.user, cats_account__isnull=True
        )
        if own.count() == 1:
            initial.setdefault("membership", own[0].pk)
        return initial

    def save_model(self, request, obj, form, change):
        if form.checked is None:
            obj.save()
            return
        connected = services.cats_connect(
            membership=obj.membership, checked=form.checked, account=obj
        )
        obj.pk = connected.account.pk
        # Job orders and custom fields are read by a worker, never inside this request.
        account_id = obj.pk
        transaction.on_commit(
            lambda: queue.enqueue_call("cats_sync.tasks.metadata_refresh", account_id),
            robust=True,
        )
        self.message_user(
            request, f"Connected to CATS site {obj.site}. {MSG_READING_METADATA}", messages.SUCCESS
        )
        if connected.notice:
            self.message_user(request, connected.notice, messages.WARNING)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        account = form.instance
        if account.is_connected:
            # Judged against what we know of CATS (no request inside the save); the button
            # "Check CATS settings" reads CATS afresh. It warns, it never blocks the save.
            for finding in services.cats_settings_lint(account=account):
                if not finding.ok:
                    self.message_user(request, f"{finding.message} {finding.fix}", messages.WARNING)

    def _findings(self, request, account) -> list[services.Finding]:
        return services.cats_settings_check(account=account)

    def get_urls(self):
        from django.urls import path

        return [
            path(
                "health/",
                self.admin_site.admin_view(partial(health_view, self)),
                name="cats_sync_health",
            ),
            path(
                "<path:object_id>/check/",
                self.admin_site.admin_view(self.check_view),
                name="cats_sync_catsaccount_check",
            ),
            *super().get_urls(),
        ]

    def check_view(self, request, object_id):
        account = self.get_object(request, object_id)  # 404 outside the user's scope
        if not self.has_view_permission(request, account):
            raise PermissionDenied
        return self._render_check(request, [(account, self._findings(request, account))])

    def _render_check(self, request, results):
        context = {
            **self.admin_site.each_context(request),
            "title": "Check CATS settings",
            "opts": self.model._meta,
            "results": [
                {"account": a, "findings": f, "problems": sum(not x.ok for x in f)}
                for a, f in results
            ],
        }
        return TemplateResponse(request, "admin/cats_sync/settings_check.html", context)

    @admin.action(description="Check CATS settings")
    def check_settings(self, request, queryset):
        accounts = queryset.select_related("site", "membership__user", "membership__team")
        return self._render_check(request, [(a, self._findings(request, a)) for a in accounts])

    def has_delete_permission(self, request, obj=None):
        # Deleting drops queued work and mappings; "Disconnect CATS" keeps them.
        return request.user.is_superuser

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not scope_for(request).manages_any:
            actions.pop("clone_settings", None)
        return actions

    def response_action(self, request, queryset):
        if request.POST.get("action") == "clone_settings" and not scope_for(request).manages_any:
            raise PermissionDenied(MSG_CLONE_MANAGERS_ONLY)
        return super().response_action(request, queryset)

    # --- actions ---------------------------------------------------------------------------
    @admin.action(description="Refresh job orders and custom fields from CATS")
    def refresh_from_cats(self, request, queryset):
        for account in queryset.select_related("site", "membership__user", "membership__team"):
            try:
                services.require_connected(account)
                counts = services.metadata_refresh(account=account)
            except ValidationError as exc:
                self.message_user(request, f"{account}: {' '.join(exc.messages)}", messages.ERROR)
                continue
            except CatsSyncError as exc:
                self.message_user(
                    request,
                    f"{account}: CATS could not be read ({exc}). Try again in a minute.",
                    messages.ERROR,
                )
                continue
            self.message_user(
                request,
                f"{account}: {counts['jobs']} job order(s), {counts['fields']} custom field(s) "
                f"and {counts['statuses']} workflow status(es) refreshed from CATS.",
                messages.SUCCESS,
            )

    @admin.action(description="Disconnect CATS…")
    def disconnect(self, request, queryset):
        accounts = list(queryset.select_related("site", "membership__user", "membership__team"))
        if request.POST.get("confirm") == "yes":
            waiting = sum(services.cats_disconnect(account=account) for account in accounts)
            self.message_user(
                request,
                f"Disconnected {len(accounts)} CATS connection(s); {waiting} queued task(s) wait "
                "until CATS is reconnected.",
                messages.SUCCESS,
            )
            return None
        # What cats_disconnect will pause: the work not yet done.
        queued = dict(
            SyncTask.objects.filter(
                account__in=accounts, state__in=[SyncTask.State.PENDING, SyncTask.State.RUNNING]
            )
            .order_by()
            .values_list("account_id")
            .annotate(n=Count("pk"))
        )
        rows = [(account, queued.get(account.pk, 0)) for account in accounts]
        context = confirm_context(
            self,
            request,
            "disconnect",
            title="Disconnect CATS",
            rows=rows,
            waiting=sum(n for _, n in rows),
        )
        return TemplateResponse(request, "admin/cats_sync/disconnect_confirm.html", context)

    @admin.action(description="Resync not-yet-synced contacts…")
    def resync_to_cats(self, request, queryset):
        members = [a.membership for a in queryset.select_related("membership__user")]
        enrollments = Enrollment.objects.filter(sequence__owner__in=members)
        return resync_action(
            self,
            request,
            enrollments,
            action="resync_to_cats",
            what=resync_description_of_members(members),
        )

    @admin.action(description="Clone settings to teammates…")
    def clone_settings(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, MSG_CLONE_ONE_SOURCE, messages.ERROR)
            return None
        source = queryset.select_related("membership__team", "membership__user").get()
        team = source.membership.team
        if not scope_for(request).manages(team.pk):
            raise PermissionDenied(MSG_CLONE_MANAGERS_ONLY)
        teammates = (
            Membership.objects.filter(team=team)
            .exclude(pk=source.membership_id)
            .select_related("user", "team")
            .prefetch_related("groups")
            .order_by("user__email")
        )
        step = request.POST.get("clone_step", "")
        form = CloneTargetsForm(request.POST if step else None, teammates=teammates)
        lines = None
        if step and form.is_valid():
            targets = list(form.cleaned_data["targets"])
            if step == "confirm":
                done = services.cats_settings_clone(source=source, targets=targets)
                updated = sum(line.will_update for line in done)
                other_site = sum(bool(line.note) for line in done if line.will_update)
                msg = (
                    f"Cloned the CATS settings of {source.membership} to {updated} teammate(s); "
                    f"{len(done) - updated} skipped."
                )
                if other_site:
                    msg += f" {other_site} on another CATS site got no job order or mapping."
                self.message_user(request, msg, messages.SUCCESS)
                return None
            lines = services.clone_plan(source=source, targets=targets)
        groups = {}
        for m in teammates:
            for g in m.groups.all():
                groups.setdefault(g.name, []).append(m.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Clone CATS settings of {source.membership}",
            "opts": self.model._meta,
            "source": source,
            "form": form,
            "lines": lines,
            "groups": sorted(groups.items()),
            "will_update": sum(line.will_update for line in lines or []),
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "note_other_site": cats_messages.CLONE_NOTE_OTHER_SITE,
        }
        return TemplateResponse(request, "admin/cats_sync/clone.html", context)
