from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import transaction
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.template.response import TemplateResponse
from django.urls import reverse

from . import imports, services
from .admin_base import ChoiceListFilter, ReadOnlyAdmin, TeamScopedAdmin, scoped_queryset
from .admin_import import ContactImportExportMixin
from .forms import (
    MSG_ONE_TEAM,
    ContactForm,
    MembershipChangeForm,
    SequenceChoiceForm,
    TeammateAddForm,
)
from .models import (
    ApiToken,
    Contact,
    EmailEvent,
    Enrollment,
    Group,
    ImportJob,
    Membership,
    Sequence,
    Team,
)
from .scoping import scope_for

admin.site.site_header = "Interseller · CATS"
admin.site.site_title = "Interseller"
admin.site.index_title = "Outreach and CATS sync"


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


class ScopedTeamFilter(ChoiceListFilter):
    """Team filter listing only the user's own teams (a plain filter would list every team)."""

    title = "team"
    parameter_name = "team"
    team_path = "team"

    def lookups(self, request, model_admin):
        teams = scoped_queryset(request, Team)
        if teams.count() < 2 and not request.user.is_superuser:
            return []
        return [(t.pk, t.name) for t in teams]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{f"{self.team_path}_id": self.value()})
        return queryset


class SequenceTeamFilter(ScopedTeamFilter):
    team_path = "sequence__team"


class OwnerFilter(ChoiceListFilter):
    title = "owner"
    parameter_name = "owner"

    def lookups(self, request, model_admin):
        members = scoped_queryset(request, Membership)
        return [(m.pk, str(m)) for m in members]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(owner_id=self.value())
        return queryset


class SequenceFilter(ChoiceListFilter):
    title = "sequence"
    parameter_name = "sequence"
    path = "enrollments__sequence"

    def lookups(self, request, model_admin):
        return [(s.pk, s.title) for s in scoped_queryset(request, Sequence).order_by("title")]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{f"{self.path}_id": self.value()}).distinct()
        return queryset


class EnrollmentSequenceFilter(SequenceFilter):
    path = "sequence"


# --- Team, memberships, groups -----------------------------------------------------------------


@admin.register(Team)
class TeamAdmin(TeamScopedAdmin):
    # Meta.ordering is dropped by the GROUP BY of the count annotations.
    ordering = ["name"]
    scope_team_path = "id"
    managers_only_write = True
    list_display = ["name", "member_count", "sequence_count", "contact_count", "created_at"]
    search_fields = ["name"]
    readonly_fields = ["created_at", "updated_at"]

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

    @admin.display(description="members", ordering="_members")
    def member_count(self, obj):
        return obj._members

    @admin.display(description="sequences", ordering="_sequences")
    def sequence_count(self, obj):
        return obj._sequences

    @admin.display(description="contacts", ordering="_contacts")
    def contact_count(self, obj):
        return obj._contacts

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

    @admin.display(description="members", ordering="_members")
    def member_count(self, obj):
        return obj._members


# --- Sequences, contacts, enrollments, events --------------------------------------------------


ENROLLMENT_COLUMNS = [
    "contact",
    "sequence",
    "state",
    "sentiment",
    "first_messaged_at",
    "last_messaged_at",
    "responded_at",
    "added_at",
]


class EnrollmentInline(admin.TabularInline):
    model = Enrollment
    extra = 0
    fields = ENROLLMENT_COLUMNS
    readonly_fields = fields
    show_change_link = True
    can_delete = False
    max_num = 0
    # An inline cannot page; the enrollments changelist (linked) shows all of them.
    classes = ["collapse"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("contact", "sequence")

    def has_add_permission(self, request, obj=None):
        return False


class SequenceEnrollmentInline(EnrollmentInline):
    verbose_name_plural = "contacts in this sequence (newest 200; see Enrollments for all)"

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs.filter(pk__in=qs.order_by("-added_at").values("pk")[:200])


@admin.register(Sequence)
class SequenceAdmin(OwnedByMeByDefault, TeamScopedAdmin):
    # Meta.ordering is dropped by the GROUP BY of the count annotations.
    ordering = ["-created_at"]
    scope_owner_paths = ("owner",)
    list_display = [
        "title",
        "team",
        "owner",
        "archived",
        "contact_count",
        "reply_count",
        "created_at",
    ]
    list_filter = [ScopedTeamFilter, "archived", OwnerFilter]
    list_select_related = ["team", "owner__user", "owner__team"]
    search_fields = ["title"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [SequenceEnrollmentInline]
    show_full_result_count = False

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                _contacts=Count("enrollments"),
                _replies=Count("enrollments", filter=Q(enrollments__responded_at__isnull=False)),
            )
        )

    @admin.display(description="contacts", ordering="_contacts")
    def contact_count(self, obj):
        return obj._contacts

    @admin.display(description="replies", ordering="_replies")
    def reply_count(self, obj):
        return obj._replies

    def save_model(self, request, obj, form, change):
        services.sequence_save(sequence=obj)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # After the inlines: what integrations do about a new owner must not be undone by
        # their sections saving the values the page was opened with.
        previous = form.initial.get("owner") if change else None
        for notice in services.sequence_owner_announce(
            sequence=form.instance, previous_owner_id=previous
        ):
            self.message_user(request, notice, messages.WARNING)


class HasSequenceFilter(ChoiceListFilter):
    title = "in a sequence"
    parameter_name = "enrolled"

    def lookups(self, request, model_admin):
        return [("yes", "In a sequence"), ("no", "In no sequence")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(_sequences__gt=0)
        if self.value() == "no":
            return queryset.filter(_sequences=0)
        return queryset


@admin.register(Contact)
class ContactAdmin(ContactImportExportMixin, OwnedByMeByDefault, TeamScopedAdmin):
    # Meta.ordering is dropped by the GROUP BY of the count annotations.
    ordering = ["-created_at"]
    form = ContactForm
    scope_owner_paths = ("owner",)
    list_display = [
        "email",
        "full_name",
        "company",
        "title",
        "owner",
        "sequence_count",
        "created_at",
    ]
    list_filter = [ScopedTeamFilter, OwnerFilter, SequenceFilter, HasSequenceFilter, "source"]
    list_select_related = ["owner__user", "owner__team"]
    search_fields = ["email", "first_name", "last_name", "company", "title"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [EnrollmentInline]
    actions = ["add_to_sequence", "remove_from_sequence"]
    show_full_result_count = False
    fieldsets = [
        (None, {"fields": ["team", "owner", "email", ("first_name", "last_name")]}),
        ("Work", {"fields": ["company", "title", "phone", "linkedin_url", "location", "source"]}),
        ("History", {"fields": ["created_at", "updated_at"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_sequences=Count("enrollments"))

    @admin.display(description="name", ordering="last_name")
    def full_name(self, obj):
        return obj.full_name

    @admin.display(description="sequences", ordering="_sequences")
    def sequence_count(self, obj):
        return obj._sequences

    def _sequence_action(self, request, queryset, *, remove: bool):
        team_ids = set(queryset.values_list("team_id", flat=True))
        if len(team_ids) != 1:
            self.message_user(request, MSG_ONE_TEAM, messages.ERROR)
            return None
        sequences = scoped_queryset(request, Sequence).filter(team_id__in=team_ids)
        if remove:
            sequences = sequences.filter(enrollments__contact__in=queryset).distinct()
        else:
            sequences = sequences.filter(archived=False)
        if "apply" in request.POST:
            form = SequenceChoiceForm(request.POST, sequences=sequences)
            if form.is_valid():
                sequence = form.cleaned_data["sequence"]
                if remove:
                    removed = sum(
                        services.contact_remove_from_sequence(contact=c, sequence=sequence)
                        for c in queryset
                    )
                    self.message_user(
                        request,
                        f"Removed {removed} contact(s) from “{sequence.title}”; "
                        f"{queryset.count() - removed} were not in it.",
                        messages.SUCCESS,
                    )
                    return None
                added_by = Membership.objects.filter(
                    team_id=sequence.team_id, user=request.user
                ).first()
                added = already = 0
                for contact in queryset:
                    result = services.contact_add_to_sequence(
                        contact=contact, sequence=sequence, added_by=added_by
                    )
                    added += result.created
                    already += not result.created
                self.message_user(
                    request,
                    f"Added {added} contact(s) to “{sequence.title}”; {already} already there.",
                    messages.SUCCESS,
                )
                return None
        else:
            form = SequenceChoiceForm(sequences=sequences)
        context = {
            **self.admin_site.each_context(request),
            "title": "Remove from sequence" if remove else "Add to sequence",
            "opts": self.model._meta,
            "form": form,
            "contacts": queryset,
            "count": queryset.count(),
            "action": "remove_from_sequence" if remove else "add_to_sequence",
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "remove": remove,
            "no_sequences": not sequences.exists(),
        }
        return TemplateResponse(request, "admin/interseller/contact/sequence_action.html", context)

    @admin.action(description="Add to sequence…")
    def add_to_sequence(self, request, queryset):
        return self._sequence_action(request, queryset, remove=False)

    @admin.action(description="Remove from sequence…")
    def remove_from_sequence(self, request, queryset):
        return self._sequence_action(request, queryset, remove=True)


@admin.register(Enrollment)
class EnrollmentAdmin(TeamScopedAdmin):
    scope_team_path = "sequence__team"
    scope_owner_paths = ("sequence__owner", "contact__owner")
    list_display = ENROLLMENT_COLUMNS
    list_filter = [SequenceTeamFilter, "state", "sentiment", EnrollmentSequenceFilter]
    list_select_related = ["contact", "sequence"]
    search_fields = [
        "contact__email",
        "contact__first_name",
        "contact__last_name",
        "sequence__title",
    ]
    autocomplete_fields = ["contact", "sequence"]
    date_hierarchy = "added_at"
    show_full_result_count = False
    readonly_fields = [
        "added_by",
        "added_at",
        "first_messaged_at",
        "last_messaged_at",
        "responded_at",
        "sentiment",
    ]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["contact", "sequence"]
        return ["contact", "sequence", "state", *self.readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["contact", "sequence", *self.readonly_fields]

    def save_model(self, request, obj, form, change):
        if change:
            obj.save()
            return
        added_by = Membership.objects.filter(
            team_id=obj.sequence.team_id, user=request.user
        ).first()
        result = services.contact_add_to_sequence(
            contact=obj.contact, sequence=obj.sequence, added_by=added_by
        )
        form.instance = obj = result.enrollment
        if not result.created:
            self.message_user(request, result.message, messages.WARNING)


@admin.register(EmailEvent)
class EmailEventAdmin(ReadOnlyAdmin, EnrollmentColumns, TeamScopedAdmin):
    """Events are the outreach engine's record: they arrive through the API, never by hand."""

    scope_owner_paths = ("enrollment__sequence__owner", "enrollment__contact__owner")
    list_display = [
        "occurred_at",
        "kind",
        "contact_email",
        "sequence_title",
        "subject",
        "sentiment",
    ]
    list_filter = ["kind", "sentiment", ScopedTeamFilter]
    list_select_related = ["enrollment__contact", "enrollment__sequence"]
    search_fields = [
        "external_id",
        "enrollment__contact__email",
        "subject",
        "enrollment__sequence__title",
    ]
    date_hierarchy = "occurred_at"
    show_full_result_count = False


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
        return "active" if obj.is_active else f"revoked {obj.revoked_at:%Y-%m-%d}"

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


@admin.register(ImportJob)
class ImportJobAdmin(ReadOnlyAdmin, TeamScopedAdmin):
    """Contact imports run by a worker: read-only, with live progress on the object page."""

    scope_owner_paths = ("owner",)
    ordering = ["-created_at"]
    list_display = ["file_name", "team", "state", "progress", "created_by", "created_at"]
    list_filter = [ScopedTeamFilter, "state"]
    list_select_related = ["team", "created_by"]
    search_fields = ["file_name"]
    fields = [
        "file_name",
        "team",
        "sequence_title",
        "created_by",
        "state",
        "total_rows",
        "created_at",
        "started_at",
        "finished_at",
    ]
    readonly_fields = fields
    change_form_template = "admin/interseller/importjob/change_form.html"
    refresh_seconds = 3

    def get_queryset(self, request):
        # The uploaded file can be megabytes: never load it to list or show jobs.
        return super().get_queryset(request).defer("data")

    @admin.display(description="progress")
    def progress(self, obj):
        return f"{imports.import_job_progress(obj)} of {obj.total_rows} rows"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self.get_object(request, object_id)
        processed = imports.import_job_progress(job)
        extra = {
            "processed": processed,
            "percent": int(100 * processed / job.total_rows) if job.total_rows else 100,
            "running": job.state in (ImportJob.State.QUEUED, ImportJob.State.RUNNING),
            "refresh_seconds": self.refresh_seconds,
            "result_message": imports.import_result_message(job, job.sequence_title),
            "contacts_url": reverse("admin:interseller_contact_changelist"),
            "import_url": reverse("admin:interseller_contact_import"),
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra_context=extra)
