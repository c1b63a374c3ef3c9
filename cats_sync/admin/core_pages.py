"""What CATS adds to the core's sequence, contact and enrollment pages, through the core's hook
(interseller/extensions.py): the "Syncing" section, CATS columns and filters, Resync and Retry,
and CATS columns in the contact export. Registered by CatsSyncConfig.ready()."""

from __future__ import annotations

from functools import partial

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme

from interseller.extensions import AdminExtension, extend, extend_index
from interseller.models import Contact, Enrollment, Sequence
from interseller.scoping import scoped_queryset

from .. import services
from ..models import EnrollmentSync
from .common import SequenceSyncInline, ids_of, push_selected, resync_selected
from .filters import ContactCatsErrorFilter, InCatsFilter, ResyncRunFilter, SyncStateFilter
from .health import index_summary


def _resync_action(field: str, noun: str):
    """The action "Resync to CATS…" of one page: the enrollments whose `field` is selected."""

    @admin.action(description="Resync to CATS…")
    def resync_to_cats(modeladmin, request, queryset):
        return resync_selected(modeladmin, request, queryset, field, noun)

    return resync_to_cats


def _push_action(field: str, noun: str):
    """The action "Push changes to CATS…" of one page: the enrollments whose `field` is
    selected (contacts already in CATS, updated on purpose; see services/push.py)."""

    @admin.action(description="Push changes to CATS…")
    def push_changes_to_cats(modeladmin, request, queryset):
        return push_selected(modeladmin, request, queryset, field, noun)

    return push_changes_to_cats


@admin.action(description="Retry failed CATS sync")
def retry_cats_sync(modeladmin, request, queryset):
    retried = services.sync_retry(enrollment_ids=ids_of(queryset))
    modeladmin.message_user(
        request, f"{retried} failed CATS task(s) queued again.", messages.SUCCESS
    )


# --- the CATS column: a page's states in a few queries ---

TONE_ORDER = {"failed": 0, "stopped": 1, "busy": 2, "ok": 3}


def _load_enrollment_states(request, rows) -> None:
    states = services.enrollment_states(rows)
    for row in rows:
        row._cats_state = states.get(row.pk)


def _load_contact_states(request, rows) -> None:
    enrollments = list(
        Enrollment.objects.filter(contact__in=rows).select_related("sequence", "contact")
    )
    states = services.enrollment_states(enrollments)
    by_contact: dict[int, list] = {}
    for enrollment in enrollments:
        by_contact.setdefault(enrollment.contact_id, []).append(states[enrollment.pk])
    for row in rows:
        row._cats_states = sorted(by_contact.get(row.pk, []), key=lambda s: TONE_ORDER[s.tone])


def _state_html(state) -> str:
    return format_html('<span class="cats-state cats-{}">{}</span>', state.tone, state.words)


@admin.display(description="CATS")
def contact_cats(obj):
    states = getattr(obj, "_cats_states", None)
    if not states:
        return "—"
    first = _state_html(states[0])
    if len(states) == 1:
        return first
    return format_html('{} <span class="help">(+{} more)</span>', first, len(states) - 1)


@admin.display(description="CATS")
def enrollment_cats(obj):
    state = getattr(obj, "_cats_state", None)
    return _state_html(state) if state else "—"


# --- the CATS panel on a contact's and an enrollment's page ---


def _panels_html(request, enrollments) -> str:
    panels = [services.enrollment_panel(e) for e in enrollments]
    if not panels:
        return ""
    return render_to_string(
        "admin/cats_sync/panel.html",
        {"panels": panels, "next": request.get_full_path()},
        request=request,
    )


def contact_panel(request, contact) -> str:
    enrollments = scoped_queryset(request, Enrollment).filter(contact=contact)
    return _panels_html(request, enrollments.select_related("sequence", "contact"))


def enrollment_panel(request, enrollment) -> str:
    return _panels_html(request, [enrollment])


def _enrollment_urls(modeladmin) -> list:
    def action(name: str, view):
        return path(
            f"<path:object_id>/cats/{name}/",
            modeladmin.admin_site.admin_view(partial(view, modeladmin)),
            name=f"interseller_enrollment_cats_{name}",
        )

    return [action("resync", _resync_one), action("retry", _retry_one)]


def _enrollment_for_button(modeladmin, request, object_id):
    if request.method != "POST":
        raise PermissionDenied
    enrollment = modeladmin.get_object(request, object_id)  # 404 outside the user's scope
    if not modeladmin.has_change_permission(request, enrollment):
        raise PermissionDenied
    return enrollment


def _back(request, enrollment) -> HttpResponseRedirect:
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = reverse("admin:interseller_enrollment_change", args=[enrollment.pk])
    return HttpResponseRedirect(target)


def _resync_one(modeladmin, request, object_id):
    """The panel's "Resync to CATS": the same service as the list action, for one contact."""
    enrollment = _enrollment_for_button(modeladmin, request, object_id)
    run = services.resync_start(
        enrollments=Enrollment.objects.filter(pk=enrollment.pk),
        started_by=request.user,
        team=enrollment.sequence.team,
        description=f"Resync of {enrollment.contact.email} in “{enrollment.sequence}”",
    )
    if run.total:
        modeladmin.message_user(request, MSG_RESYNC_ONE, messages.SUCCESS)
    else:
        reason = ", ".join(run_blocked_reasons(enrollment)) or "already synced"
        modeladmin.message_user(request, MSG_RESYNC_BLOCKED.format(why=reason), messages.WARNING)
    return _back(request, enrollment)


def run_blocked_reasons(enrollment) -> list[str]:
    plan = services.resync_plan(enrollments=Enrollment.objects.filter(pk=enrollment.pk))
    return list(plan.blocked)


def _retry_one(modeladmin, request, object_id):
    """The panel's "Retry": the same service as the list action, for one contact."""
    enrollment = _enrollment_for_button(modeladmin, request, object_id)
    retried = services.sync_retry(enrollment_ids=[enrollment.pk])
    modeladmin.message_user(
        request,
        MSG_RETRIED.format(n=retried) if retried else MSG_NOTHING_TO_RETRY,
        messages.SUCCESS if retried else messages.WARNING,
    )
    return _back(request, enrollment)


MSG_RESYNC_ONE = "Queued for CATS: the panel shows when it is synced."
MSG_RESYNC_BLOCKED = "Not queued: {why}."
MSG_RETRIED = "Queued again: {n} step(s) that needed a person run once more."
MSG_NOTHING_TO_RETRY = "Nothing failed here: nothing to retry."


# --- the contact export ---


def _contact_syncs(contact: Contact) -> list[EnrollmentSync]:
    return [s for s in (EnrollmentSync.of(e) for e in contact.enrollments.all()) if s is not None]


def export_exists_in_cats(contact: Contact) -> str:
    return "yes" if any(s.exists_in_cats for s in _contact_syncs(contact)) else "no"


def export_cats_error(contact: Contact) -> str:
    return next((s.error_message for s in _contact_syncs(contact) if s.error_code), "")


def register() -> None:
    extend_index(index_summary)
    extend(
        Sequence,
        AdminExtension(
            inlines=(SequenceSyncInline,),
            actions=(
                _resync_action("sequence_id", "sequence(s)"),
                _push_action("sequence_id", "sequence(s)"),
            ),
        ),
    )
    extend(
        Contact,
        AdminExtension(
            columns=(contact_cats,),
            page_loaders=(_load_contact_states,),
            list_filters=(InCatsFilter, ContactCatsErrorFilter),
            actions=(
                _resync_action("contact_id", "contact(s)"),
                _push_action("contact_id", "contact(s)"),
            ),
            panels=(contact_panel,),
            export_columns=(
                ("Exists in CATS", export_exists_in_cats),
                ("CATS error", export_cats_error),
            ),
            export_prefetch=("enrollments__cats_sync",),
        ),
    )
    extend(
        Enrollment,
        AdminExtension(
            columns=(enrollment_cats,),
            page_loaders=(_load_enrollment_states,),
            list_filters=(SyncStateFilter, ResyncRunFilter),
            actions=(
                _resync_action("pk", "contact(s) in sequences"),
                _push_action("pk", "contact(s) in sequences"),
                retry_cats_sync,
            ),
            panels=(enrollment_panel,),
            urls=_enrollment_urls,
        ),
    )
