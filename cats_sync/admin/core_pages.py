"""What CATS adds to the core's sequence, contact and enrollment pages, through the core's hook
(interseller/extensions.py): the "Syncing" section, CATS columns and filters, Resync and Retry,
and CATS columns in the contact export. Registered by CatsSyncConfig.ready()."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Exists, OuterRef, Subquery

from interseller.extensions import AdminExtension, extend
from interseller.models import Contact, Enrollment, Sequence

from .. import services
from ..models import EnrollmentSync
from .common import SequenceSyncInline, ids_of, resync_selected, sync_of
from .filters import ContactCatsErrorFilter, InCatsFilter, ResyncRunFilter, SyncStateFilter


def _resync_action(field: str, noun: str):
    """The action "Resync to CATS…" of one page: the enrollments whose `field` is selected."""

    @admin.action(description="Resync to CATS…")
    def resync_to_cats(modeladmin, request, queryset):
        return resync_selected(modeladmin, request, queryset, field, noun)

    return resync_to_cats


@admin.action(description="Retry failed CATS sync")
def retry_cats_sync(modeladmin, request, queryset):
    retried = services.sync_retry(enrollment_ids=ids_of(queryset))
    modeladmin.message_user(
        request, f"{retried} failed CATS task(s) queued again.", messages.SUCCESS
    )


# --- contacts ------------------------------------------------------------------------------------


def _contact_annotate(request, queryset):
    syncs = EnrollmentSync.objects.filter(enrollment__contact=OuterRef("pk"))
    first_error = syncs.exclude(error_code="").order_by("-error_at", "-pk")
    return queryset.annotate(
        _in_cats=Exists(syncs.filter(exists_in_cats=True)),
        _cats_error=Subquery(first_error.values("error_message")[:1]),
    )


@admin.display(description="exists in CATS", boolean=True, ordering="_in_cats")
def exists_in_cats(obj):
    return obj._in_cats


@admin.display(description="CATS error")
def cats_error(obj):
    return obj._cats_error or ""


def _contact_syncs(contact: Contact) -> list[EnrollmentSync]:
    return [s for s in (sync_of(e) for e in contact.enrollments.all()) if s is not None]


def export_exists_in_cats(contact: Contact) -> str:
    return "yes" if any(s.exists_in_cats for s in _contact_syncs(contact)) else "no"


def export_cats_error(contact: Contact) -> str:
    return next((s.error_message for s in _contact_syncs(contact) if s.error_code), "")


# --- enrollments ---------------------------------------------------------------------------------


@admin.display(description="CATS candidate", ordering="cats_sync__candidate_id")
def cats_candidate(obj):
    sync = sync_of(obj)
    return sync.candidate_id if sync and sync.candidate_id else "—"


@admin.display(description="CATS pipeline", ordering="cats_sync__pipeline_id")
def cats_pipeline(obj):
    sync = sync_of(obj)
    return sync.pipeline_id if sync and sync.pipeline_id else "—"


@admin.display(description="synced to CATS", ordering="cats_sync__synced_at")
def cats_synced_at(obj):
    sync = sync_of(obj)
    return sync.synced_at if sync and sync.synced_at else "—"


@admin.display(description="CATS error")
def enrollment_cats_error(obj):
    sync = sync_of(obj)
    return sync.error_message if sync and sync.error_code else ""


def register() -> None:
    extend(
        Sequence,
        AdminExtension(
            inlines=(SequenceSyncInline,),
            actions=(_resync_action("sequence_id", "sequence(s)"),),
        ),
    )
    extend(
        Contact,
        AdminExtension(
            columns=(exists_in_cats, cats_error),
            annotate=_contact_annotate,
            list_filters=(InCatsFilter, ContactCatsErrorFilter),
            actions=(_resync_action("contact_id", "contact(s)"),),
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
            columns=(cats_candidate, cats_pipeline, cats_synced_at, enrollment_cats_error),
            list_select_related=("cats_sync",),
            list_filters=(SyncStateFilter, ResyncRunFilter),
            actions=(_resync_action("pk", "contact(s) in sequences"), retry_cats_sync),
        ),
    )
