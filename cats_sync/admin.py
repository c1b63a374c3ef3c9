"""The CATS integration in the admin: connections and settings, the sequence "Syncing" section,
resync and clone, the sync queue, and CATS columns on contacts and enrollments.

Thin on purpose: every write goes through `services`, and everything is team-scoped through
`TeamScopedAdmin` like the core admin.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from interseller import admin as core_admin
from interseller.admin_base import (
    ChoiceListFilter,
    ReadOnlyAdmin,
    TeamScopedAdmin,
    scoped_queryset,
)
from interseller.forms import MSG_ONE_TEAM
from interseller.models import Contact, Enrollment, Membership, Sequence, Team
from interseller.resources import ContactExportResource
from interseller.scoping import scope_for

from . import crypto, services
from . import messages as cats_messages
from .errors import CatsSyncError
from .forms import (
    SYNCING_HELP,
    CatsAccountForm,
    CloneTargetsForm,
    FieldMappingForm,
    SequenceSyncForm,
)
from .models import (
    CatsAccount,
    CatsJob,
    CatsSite,
    EnrollmentSync,
    FieldMapping,
    ResyncRun,
    SequenceSync,
    SyncTask,
)

MSG_CLONE_ONE_SOURCE = "Select exactly one CATS connection to clone its settings from."
MSG_CLONE_MANAGERS_ONLY = "Only owners and managers can clone CATS settings to teammates."
MSG_NOTHING_TO_RESYNC = "None of the selected rows has a contact in a sequence."
MSG_KEY_UNREADABLE = "cannot be decrypted"


def _sync_of(enrollment: Enrollment) -> EnrollmentSync | None:
    try:
        return enrollment.cats_sync
    except EnrollmentSync.DoesNotExist:
        return None


def _site_of_membership(membership_id: int | None) -> int | None:
    if membership_id is None:
        return None
    return (
        CatsAccount.objects.filter(membership_id=membership_id)
        .values_list("site_id", flat=True)
        .first()
    )


# --- inlines: permissions follow the parent object ---------------------------------------------


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
        site_id = _site_of_membership(obj.owner_id) if obj else None
        kwargs["form"] = type("SiteSequenceSyncForm", (self.form,), {"site_id": site_id})
        return super().get_formset(request, obj, **kwargs)


# --- resync: shared confirmation step ----------------------------------------------------------


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
        modeladmin.message_user(
            request,
            f"Resync started: {run.total} contact(s) queued, {run.skipped} already synced, "
            f"{run.blocked} blocked.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:cats_sync_resyncrun_change", args=[run.pk]))
    plan = services.resync_plan(enrollments=enrollments)
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Resync to CATS",
        "opts": modeladmin.model._meta,
        "what": what,
        "plan": plan,
        "to_sync": len(plan.to_sync),
        "blocked": sorted(plan.blocked.items()),
        "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across", "0"),
        "action": action,
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/cats_sync/resync_confirm.html", context)


def _resync_selected(modeladmin, request, queryset: QuerySet, field: str, noun: str):
    """Resync the enrollments whose `field` is one of the selected rows."""
    ids = _ids(queryset)
    return resync_action(
        modeladmin,
        request,
        Enrollment.objects.filter(**{f"{field}__in": ids}),
        action="resync_to_cats",
        what=f"Resync of {len(ids)} {noun}",
    )


def _ids(queryset: QuerySet) -> list[int]:
    # Plain ids: the changelist querysets carry GROUP BY annotations.
    return list(queryset.order_by().values_list("pk", flat=True))


# --- CATS connections and settings -------------------------------------------------------------


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

    @admin.display(description="pending", ordering="_pending")
    def pending_count(self, obj):
        return obj._pending

    @admin.display(description="paused", ordering="_paused")
    def paused_count(self, obj):
        return obj._paused

    @admin.display(description="failed", ordering="_failed")
    def failed_count(self, obj):
        return obj._failed

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
        return format_html("<br>".join(["{}"] * len(lines)), *lines)

    # --- pages -----------------------------------------------------------------------------
    def get_fieldsets(self, request, obj=None):
        connection = ["membership", "subdomain", "api_key"]
        if obj is not None:
            connection = ["membership", "connection_hint", "masked_key", "subdomain", "api_key"]
        settings = [
            "sync_mode",
            "deduplication",
            "default_job_id",
            "activity_tracking",
            "status_sync",
            "fire_triggers",
        ]
        return [("Connection", {"fields": connection}), ("Sync settings", {"fields": settings})]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["membership", "connection_hint", "masked_key"]

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
        self.message_user(request, f"Connected to CATS site {obj.site}.", messages.SUCCESS)
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

    @admin.action(description="Disconnect CATS")
    def disconnect(self, request, queryset):
        accounts = waiting = 0
        for account in queryset:
            waiting += services.cats_disconnect(account=account)
            accounts += 1
        self.message_user(
            request,
            f"Disconnected {accounts} CATS connection(s); {waiting} queued task(s) wait until "
            "CATS is reconnected.",
            messages.SUCCESS,
        )

    @admin.action(description="Resync not-yet-synced contacts…")
    def resync_to_cats(self, request, queryset):
        members = list(queryset.order_by().values_list("membership_id", flat=True))
        enrollments = Enrollment.objects.filter(sequence__owner_id__in=members)
        return resync_action(
            self,
            request,
            enrollments,
            action="resync_to_cats",
            what=f"Resync of the sequences of {len(members)} member(s)",
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


# --- Sequences: the "Syncing" section ----------------------------------------------------------


admin.site.unregister(Sequence)


@admin.register(Sequence)
class CatsSequenceAdmin(core_admin.SequenceAdmin):
    inlines = [*core_admin.SequenceAdmin.inlines, SequenceSyncInline]
    actions = [*(core_admin.SequenceAdmin.actions or []), "resync_to_cats"]

    @admin.action(description="Resync to CATS…")
    def resync_to_cats(self, request, queryset):
        return _resync_selected(self, request, queryset, "sequence_id", "sequence(s)")


# --- Contacts: "Exists in CATS", errors, resync -----------------------------------------------


def _contact_syncs(contact: Contact) -> list[EnrollmentSync]:
    return [s for s in (_sync_of(e) for e in contact.enrollments.all()) if s is not None]


def export_exists_in_cats(contact: Contact) -> str:
    return "yes" if any(s.exists_in_cats for s in _contact_syncs(contact)) else "no"


def export_cats_error(contact: Contact) -> str:
    return next((s.error_message for s in _contact_syncs(contact) if s.error_code), "")


if not any(header == "exists_in_cats" for header, _ in ContactExportResource.extra_columns):
    ContactExportResource.extra_columns.append(("exists_in_cats", export_exists_in_cats))
    ContactExportResource.extra_columns.append(("cats_error", export_cats_error))


class InCatsFilter(ChoiceListFilter):
    title = "in CATS already"
    parameter_name = "in_cats"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(_in_cats=True)
        if self.value() == "no":
            return queryset.filter(_in_cats=False)
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
        syncs = EnrollmentSync.objects.filter(enrollment__contact=OuterRef("pk"))
        syncs = syncs.exclude(error_code="") if value == "any" else syncs.filter(error_code=value)
        return queryset.filter(Exists(syncs))


admin.site.unregister(Contact)


@admin.register(Contact)
class CatsContactAdmin(core_admin.ContactAdmin):
    list_display = [*core_admin.ContactAdmin.list_display, "exists_in_cats", "cats_error"]
    list_filter = [*core_admin.ContactAdmin.list_filter, InCatsFilter, ContactCatsErrorFilter]
    actions = [*core_admin.ContactAdmin.actions, "resync_to_cats"]

    def get_queryset(self, request):
        syncs = EnrollmentSync.objects.filter(enrollment__contact=OuterRef("pk"))
        first_error = syncs.exclude(error_code="").order_by("-error_at", "-pk")
        return (
            super()
            .get_queryset(request)
            .annotate(
                _in_cats=Exists(syncs.filter(exists_in_cats=True)),
                _cats_error=Subquery(first_error.values("error_message")[:1]),
            )
        )

    def get_export_queryset(self, request):
        # The export columns read each enrollment's sync state: one query, not one a row.
        return super().get_export_queryset(request).prefetch_related("enrollments__cats_sync")

    @admin.display(description="exists in CATS", boolean=True, ordering="_in_cats")
    def exists_in_cats(self, obj):
        return obj._in_cats

    @admin.display(description="CATS error")
    def cats_error(self, obj):
        return obj._cats_error or ""

    @admin.action(description="Resync to CATS…")
    def resync_to_cats(self, request, queryset):
        return _resync_selected(self, request, queryset, "contact_id", "contact(s)")


# --- Enrollments: CATS state, resync, retry ----------------------------------------------------


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


def _runs_visible_to(request) -> QuerySet:
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


class ResyncRunFilter(ChoiceListFilter):
    title = "resync run"
    parameter_name = "cats_run"

    def lookups(self, request, model_admin):
        runs = _runs_visible_to(request)
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


admin.site.unregister(Enrollment)


@admin.register(Enrollment)
class CatsEnrollmentAdmin(core_admin.EnrollmentAdmin):
    list_display = [
        *core_admin.EnrollmentAdmin.list_display,
        "cats_candidate",
        "cats_pipeline",
        "cats_synced_at",
        "cats_error",
    ]
    list_filter = [*core_admin.EnrollmentAdmin.list_filter, SyncStateFilter, ResyncRunFilter]
    list_select_related = [*core_admin.EnrollmentAdmin.list_select_related, "cats_sync"]
    actions = [*(core_admin.EnrollmentAdmin.actions or []), "resync_to_cats", "retry_cats_sync"]

    @admin.display(description="CATS candidate", ordering="cats_sync__candidate_id")
    def cats_candidate(self, obj):
        sync = _sync_of(obj)
        return sync.candidate_id if sync and sync.candidate_id else "—"

    @admin.display(description="CATS pipeline", ordering="cats_sync__pipeline_id")
    def cats_pipeline(self, obj):
        sync = _sync_of(obj)
        return sync.pipeline_id if sync and sync.pipeline_id else "—"

    @admin.display(description="synced to CATS", ordering="cats_sync__synced_at")
    def cats_synced_at(self, obj):
        sync = _sync_of(obj)
        return sync.synced_at if sync and sync.synced_at else "—"

    @admin.display(description="CATS error")
    def cats_error(self, obj):
        sync = _sync_of(obj)
        return sync.error_message if sync and sync.error_code else ""

    @admin.action(description="Resync to CATS…")
    def resync_to_cats(self, request, queryset):
        return _resync_selected(self, request, queryset, "pk", "contact(s) in sequences")

    @admin.action(description="Retry failed CATS sync")
    def retry_cats_sync(self, request, queryset):
        retried = services.sync_retry(enrollment_ids=_ids(queryset))
        self.message_user(request, f"{retried} failed CATS task(s) queued again.", messages.SUCCESS)


# --- Resync runs -------------------------------------------------------------------------------


@admin.register(ResyncRun)
class ResyncRunAdmin(ReadOnlyAdmin, TeamScopedAdmin):
    ordering = ["-created_at"]
    list_display = ["description", "state", "total", "progress", "created_at"]
    list_filter = ["state"]
    list_select_related = ["team"]
    search_fields = ["description"]
    fields = ["description", "team", "state", "total", "skipped", "blocked", "created_at"]
    readonly_fields = fields
    change_form_template = "admin/cats_sync/resyncrun/change_form.html"

    def get_queryset(self, request):
        state = SyncTask.State
        qs = super().get_queryset(request)
        scope = scope_for(request)
        if not scope.is_superuser:
            # A run has no owning member: members see the runs they started.
            qs = qs.filter(Q(team__in=scope.managed_team_ids) | Q(started_by=request.user))
        return qs.annotate(
            _done=Count("tasks", filter=Q(tasks__state=state.DONE)),
            _failed=Count("tasks", filter=Q(tasks__state=state.FAILED)),
        )

    @admin.display(description="progress")
    def progress(self, obj):
        return f"{obj._done} done, {obj._failed} failed of {obj.total}"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, object_id)
        progress = services.resync_progress(run=run)
        failed_url = (
            reverse("admin:interseller_enrollment_changelist")
            + f"?cats_run={run.pk}&cats_state=error"
        )
        extra = {
            "progress": progress,
            "running": run.state == ResyncRun.State.RUNNING,
            "percent": int(100 * progress.done / progress.total) if progress.total else 100,
            "failed_url": failed_url,
            "retry_bound": services.retry_bound_text(),
            "now": timezone.now(),
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra_context=extra)


# --- The sync queue ----------------------------------------------------------------------------


@admin.register(SyncTask)
class SyncTaskAdmin(ReadOnlyAdmin, core_admin.EnrollmentColumns, TeamScopedAdmin):
    scope_team_path = "enrollment__sequence__team"
    scope_owner_paths = ("enrollment__sequence__owner",)
    ordering = ["-created_at"]
    list_display = [
        "kind",
        "contact_email",
        "sequence_title",
        "state",
        "priority",
        "attempts",
        "not_before",
        "last_error",
    ]
    list_filter = ["state", "kind", "priority"]
    list_select_related = ["enrollment__contact", "enrollment__sequence"]
    search_fields = ["enrollment__contact__email", "enrollment__sequence__title", "last_error"]
    show_full_result_count = False
    actions = ["retry"]
    fields = [
        "kind",
        "enrollment",
        "event",
        "account",
        "run",
        "state",
        "priority",
        "attempts",
        "not_before",
        "claimed_at",
        "last_error",
        "outcome",
        "created_at",
        "updated_at",
    ]
    readonly_fields = fields

    @admin.action(description="Retry")
    def retry(self, request, queryset):
        enrollment_ids = set(
            queryset.filter(state=SyncTask.State.FAILED).values_list("enrollment_id", flat=True)
        )
        retried = services.sync_retry(enrollment_ids=enrollment_ids)
        self.message_user(request, f"{retried} failed task(s) queued again.", messages.SUCCESS)


# --- CATS metadata: superusers only ------------------------------------------------------------


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
