"""Sequences, contacts, enrollments and email events: the outreach an integration extends
(see extensions.py)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.template.response import TemplateResponse

from .. import services
from ..extensions import sequence_choices
from ..forms import (
    MSG_ONE_TEAM,
    ContactForm,
    SequenceChoiceForm,
)
from ..models import (
    Contact,
    EmailEvent,
    Enrollment,
    Membership,
    Sequence,
)
from ..scoping import scoped_queryset
from .base import (
    EnrollmentColumns,
    OwnedByMeByDefault,
    ReadOnlyAdmin,
    TeamScopedAdmin,
    count_column,
)
from .extensions import ExtensibleAdmin
from .filters import (
    EnrollmentSequenceFilter,
    HasSequenceFilter,
    OwnerFilter,
    ScopedTeamFilter,
    SequenceFilter,
    SequenceTeamFilter,
    SourceFilter,
)
from .spreadsheets import ContactImportExportMixin

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
class SequenceAdmin(ExtensibleAdmin, OwnedByMeByDefault, TeamScopedAdmin):
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

    contact_count = count_column("_contacts", "contacts")

    reply_count = count_column("_replies", "replies")

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


@admin.register(Contact)
class ContactAdmin(ExtensibleAdmin, ContactImportExportMixin, OwnedByMeByDefault, TeamScopedAdmin):
    ordering = ["-created_at"]
    form = ContactForm
    scope_owner_paths = ("owner",)
    # Few and dense, so that what integrations add still fits a laptop's screen.
    list_display = ["email", "full_name", "company", "owner", "sequence_count"]
    list_filter = [ScopedTeamFilter, OwnerFilter, SequenceFilter, HasSequenceFilter, SourceFilter]
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

    # Counted for the rows of the page only: a count over the whole table (a GROUP BY of every
    # contact) is what made the list slow at 100,000 contacts.
    page_loader_methods = ("load_sequence_counts",)

    def load_sequence_counts(self, request, rows) -> None:
        counts = dict(
            Enrollment.objects.filter(contact__in=rows)
            .order_by()
            .values_list("contact_id")
            .annotate(n=Count("pk"))
        )
        for row in rows:
            row._sequences = counts.get(row.pk, 0)

    @admin.display(description="name", ordering="last_name")
    def full_name(self, obj):
        return obj.full_name

    @admin.display(description="sequences")
    def sequence_count(self, obj):
        return getattr(obj, "_sequences", "—")

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
        # Each choice names its owner and what integrations say of it, in one query.
        sequences = sequence_choices(sequences.select_related("owner__user").order_by("title"))
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
                # Many contacts at once are bulk work; one contact is a person's live add.
                many = queryset.count() > 1
                for contact in queryset:
                    result = services.contact_add_to_sequence(
                        contact=contact, sequence=sequence, added_by=added_by, bulk=many
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
class EnrollmentAdmin(ExtensibleAdmin, TeamScopedAdmin):
    scope_team_path = "sequence__team"
    scope_owner_paths = ("sequence__owner", "contact__owner")
    list_display = ["contact", "sequence", "state", "sentiment", "last_messaged_at"]
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
        # Set by whoever stopped it (an integration): why, in words, and when.
        "stopped_reason",
        "stopped_at",
    ]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["contact", "sequence"]
        return ["contact", "sequence", "state", *self.readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        fixed = ["contact", "sequence", *self.readonly_fields]
        if obj.state == Enrollment.State.STOPPED:
            fixed.append("state")  # final: see services.enrollment_state_set
        return fixed

    def save_model(self, request, obj, form, change):
        if change:
            # Only the state is editable here, and only through the service that tells the
            # engine (and the team's webhook) of a stop.
            if "state" in form.changed_data:
                who = request.user.get_full_name() or request.user.get_username()
                try:
                    services.enrollment_state_set(enrollment=obj, state=obj.state, by=who)
                except ValidationError as exc:  # stopped meanwhile, by CATS say
                    self.message_user(request, " ".join(exc.messages), messages.ERROR)
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
