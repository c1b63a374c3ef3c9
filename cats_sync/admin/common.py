"""What the CATS admin pages share: inlines that answer with their parent's permissions, the
resync confirmation step, and small lookups."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import Q, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.text import Truncator

from interseller.forms import MSG_ONE_TEAM
from interseller.models import Contact, Enrollment, Membership, Sequence, Team
from interseller.scoping import scope_for, scoped_queryset

from .. import services
from ..forms import (
    SYNCING_HELP,
    FieldMappingForm,
    SequenceSyncForm,
)
from ..models import (
    CatsAccount,
    CatsCustomField,
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


def mapping_suggestions(account: CatsAccount) -> list[dict]:
    """Initial rows for the unmapped values whose name a cached CATS custom field bears (any
    case), when that field can hold the value. Reads only our cache."""
    if not account.site_id:
        return []
    mapped = set(account.mappings.values_list("value", flat=True))
    fields: dict[str, CatsCustomField] = {}
    for field in CatsCustomField.objects.filter(site_id=account.site_id, exists=True):
        fields.setdefault(field.name.strip().lower(), field)
    suggested = []
    for value, label in FieldMapping.Value.choices:
        field = fields.get(label.lower())
        if value in mapped or field is None:
            continue
        if field.field_type in services.COMPATIBLE_TYPES[value]:
            suggested.append({"value": value, "field_id": field.cats_id})
    return suggested


class SuggestingInlineFormSet(BaseInlineFormSet):
    """An inline formset whose extra rows start out as `suggested`."""

    suggested: list[dict] = []

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("initial", self.suggested)
        super().__init__(*args, **kwargs)


class FieldMappingInline(ParentScopedInline, admin.TabularInline):
    model = FieldMapping
    form = FieldMappingForm
    formset = SuggestingInlineFormSet
    extra = 0
    max_num = len(FieldMapping.Value.choices)
    verbose_name = "custom field mapping"
    verbose_name_plural = "Custom field mapping"
    fields = ["value", "field_id"]

    def get_formset(self, request, obj=None, **kwargs):
        site_id = obj.site_id if obj else None
        kwargs["form"] = type("SiteFieldMappingForm", (self.form,), {"site_id": site_id})
        # Values CATS has a field of the same name for come as rows already filled in; they
        # are saved with the page, like any row the person fills.
        suggested = mapping_suggestions(obj) if obj else []
        kwargs["extra"] = len(suggested)
        formset = super().get_formset(request, obj, **kwargs)
        return type("SuggestingFormSet", (formset,), {"suggested": suggested})


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
    # One section, not a list of rows: no "Syncing: #1" title above it.
    template = "admin/cats_sync/sequencesync/stacked.html"

    def get_formset(self, request, obj=None, **kwargs):
        # A new sequence offers the job orders of the owner its page starts with (the form
        # refuses, on save, a job order that is not of the owner finally chosen).
        owner_id = obj.owner_id if obj else self._default_owner_id(request)
        site_id = site_of_membership(owner_id)
        kwargs["form"] = type("SiteSequenceSyncForm", (self.form,), {"site_id": site_id})
        return super().get_formset(request, obj, **kwargs)

    def _default_owner_id(self, request) -> int | None:
        owner = self._parent().get_changeform_initial_data(request).get("owner")
        try:
            owner_id = int(owner)
        except (TypeError, ValueError):
            return None
        # Typed into the URL, it could name anyone: only a membership the user may pick.
        visible = scoped_queryset(request, Membership).filter(pk=owner_id).exists()
        return owner_id if visible else None


def _one_team_selection(modeladmin, request, enrollments: QuerySet, nothing: str):
    """The selected enrollments the user may see, and their one team (None, with a message,
    when there are none or they span teams)."""
    enrollments = scoped_queryset(request, Enrollment).filter(
        pk__in=enrollments.values("pk").order_by()
    )
    team_ids = set(enrollments.order_by().values_list("sequence__team_id", flat=True).distinct())
    if not team_ids:
        modeladmin.message_user(request, nothing, messages.WARNING)
        return enrollments, None
    if len(team_ids) > 1:
        modeladmin.message_user(request, MSG_ONE_TEAM, messages.ERROR)
        return enrollments, None
    return enrollments, team_ids.pop()


def resync_action(modeladmin, request, enrollments: QuerySet, *, action: str, what: str):
    """Plan (no CATS request), confirm, start a run, show its progress."""
    enrollments, team_id = _one_team_selection(
        modeladmin, request, enrollments, MSG_NOTHING_TO_RESYNC
    )
    if team_id is None:
        return None
    if request.POST.get("confirm") == "yes":
        run = services.resync_start(
            enrollments=enrollments,
            started_by=request.user,
            team=Team.objects.get(pk=team_id),
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
    context = confirm_context(
        modeladmin,
        request,
        action,
        title="Resync to CATS",
        what=what,
        plan=plan,
        to_sync=plan.sync_count,
        blocked=sorted(plan.blocked.items()),
    )
    return TemplateResponse(request, "admin/cats_sync/resync_confirm.html", context)


def confirm_context(modeladmin, request, action: str, **extra) -> dict:
    """What an action's confirmation page needs to post the same selection back."""
    return {
        **modeladmin.admin_site.each_context(request),
        "opts": modeladmin.model._meta,
        "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across", "0"),
        "action": action,
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
        **extra,
    }


def resync_selected(modeladmin, request, queryset: QuerySet, field: str, noun: str):
    """Resync the enrollments whose `field` is one of the selected rows."""
    ids = selected_pks(queryset)
    return resync_action(
        modeladmin,
        request,
        Enrollment.objects.filter(**{f"{field}__in": ids}),
        action="resync_to_cats",
        what=resync_description(queryset.model, ids, noun=noun),
    )


MSG_NOTHING_TO_PUSH = "None of the selected rows has a contact in a sequence."
MSG_PUSH_STARTED = (
    "Push started: {total} contact(s) to update in CATS, {skipped} unchanged, {blocked} blocked."
)
MSG_PUSH_PLANNING = (
    "Push started: its {count:,} contacts are being queued in the background; "
    "this page shows how far it has got."
)
MSG_PUSH_OPTION_CHANGED = "The option changed since the preview: check the new counts, then push."


def push_action(modeladmin, request, enrollments: QuerySet, *, action: str, what: str):
    """Preview (no CATS request), confirm, start a push run, show its progress."""
    enrollments, team_id = _one_team_selection(
        modeladmin, request, enrollments, MSG_NOTHING_TO_PUSH
    )
    if team_id is None:
        return None
    remove_old = request.POST.get("remove_old") == "on"
    previewed = request.POST.get("previewed_remove_old")
    if request.POST.get("confirm") == "yes":
        if previewed != ("on" if remove_old else "off"):
            # The person ticked or unticked after the counts were shown: show them again.
            modeladmin.message_user(request, MSG_PUSH_OPTION_CHANGED, messages.WARNING)
        else:
            run = services.push_start(
                enrollments=enrollments,
                started_by=request.user,
                team=Team.objects.get(pk=team_id),
                description=what,
                remove_old=remove_old,
            )
            if run.state == run.State.PLANNING:
                message = MSG_PUSH_PLANNING.format(count=len(run.selection))
            else:
                message = MSG_PUSH_STARTED.format(
                    total=run.total, skipped=run.skipped, blocked=run.blocked
                )
            modeladmin.message_user(request, message, messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:cats_sync_resyncrun_change", args=[run.pk]))
    plan = services.push_plan(enrollments=enrollments, remove_old=remove_old)
    context = confirm_context(
        modeladmin,
        request,
        action,
        title="Push changes to CATS",
        what=what,
        plan=plan,
        finish_at=services.push_finish_at(plan),
        blocked=sorted(plan.blocked.items()),
        notes=sorted(plan.notes.items()),
        remove_old=remove_old,
    )
    return TemplateResponse(request, "admin/cats_sync/push_confirm.html", context)


def push_selected(modeladmin, request, queryset: QuerySet, field: str, noun: str):
    """Push changes of the enrollments whose `field` is one of the selected rows."""
    ids = selected_pks(queryset)
    return push_action(
        modeladmin,
        request,
        Enrollment.objects.filter(**{f"{field}__in": ids}),
        action="push_changes_to_cats",
        what=resync_description(queryset.model, ids, noun=noun, verb="Push changes"),
    )


# A run's description names what it resyncs, in at most the length its column holds.
DESCRIPTION_MAX = ResyncRun._meta.get_field("description").max_length
NAMES_LISTED = 30


def resync_description(
    model, ids: QuerySet | list[int], *, noun: str = "rows", verb: str = "Resync"
) -> str:
    """ "Resync of sequence “Backend engineers”", "Resync of 3 sequences: A, B, C", "Resync of
    120 contacts", "Resync of the sequences of Olivia Owens": what a person selected."""
    count = _count(ids)
    if model is Sequence:
        titles = _first(Sequence.objects.filter(pk__in=ids).order_by("title"), "title")
        if count == 1 and titles:
            return _fit(f"{verb} of sequence “{titles[0]}”")
        return _named(f"{verb} of {count:,} sequences", titles, count)
    if model is Contact:
        if count == 1:
            contact = Contact.objects.filter(pk__in=ids).first()
            if contact is not None:
                return _fit(f"{verb} of contact {contact}")
        return f"{verb} of {count:,} contacts"
    if model is Enrollment:
        enrollments = Enrollment.objects.filter(pk__in=ids)
        titles = _first(enrollments.order_by("sequence__title"), "sequence__title", distinct=True)
        if count == 1 and titles:
            email = enrollments.values_list("contact__email", flat=True).first()
            return _fit(f"{verb} of {email} in “{titles[0]}”")
        if len(titles) == 1:
            return _fit(f"{verb} of {count:,} contacts in “{titles[0]}”")
        sequences = enrollments.values("sequence_id").distinct().count()
        return f"{verb} of {count:,} contacts in {sequences:,} sequences"
    return f"{verb} of {count:,} {noun}"


def resync_description_of_members(members: list[Membership]) -> str:
    """The sequences of the members whose connections were selected."""
    names = sorted(m.user.get_full_name() or m.user.email for m in members)
    if len(names) == 1:
        return _fit(f"Resync of the sequences of {names[0]}")
    if len(names) == 2:
        return _fit(f"Resync of the sequences of {names[0]} and {names[1]}")
    return _named(f"Resync of the sequences of {len(names)} members", names, len(names))


def _first(queryset: QuerySet, field: str, *, distinct: bool = False) -> list[str]:
    values = queryset.values_list(field, flat=True)
    if distinct:
        values = values.distinct()
    return list(values[:NAMES_LISTED])


def _named(head: str, names: list[str], total: int) -> str:
    """`head: a, b, c`, with as many names as fit, and "and N more" for the rest."""
    text, shown = head, 0
    for name in names:
        more = total - shown - 1
        candidate = f"{text}{', ' if shown else ': '}{name}"
        if len(candidate) + len(f" and {more:,} more" if more else "") > DESCRIPTION_MAX:
            break
        text, shown = candidate, shown + 1
    if shown < total:
        text += f" and {total - shown:,} more" if shown else ""
    return _fit(text)


def _fit(text: str) -> str:
    return Truncator(text).chars(DESCRIPTION_MAX)


def ids_of(queryset: QuerySet) -> list[int]:
    # Plain ids: the changelist querysets carry GROUP BY annotations.
    return list(queryset.order_by().values_list("pk", flat=True))


def selected_pks(queryset: QuerySet) -> QuerySet | list[int]:
    """The selected rows' ids for a `pk__in`: a subquery, so that "select all 100,000" never
    travels as 100,000 parameters in every query of the action; a list when the changelist's
    queryset groups (count annotations), which only the short lists (sequences) do."""
    plain = queryset.order_by()
    if plain.query.group_by is not None or plain.query.distinct:
        return ids_of(plain)
    return plain.values("pk")


def _count(pks: QuerySet | list[int]) -> int:
    return len(pks) if isinstance(pks, list) else pks.count()
