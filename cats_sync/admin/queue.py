"""The sync queue: every task, its attempts, what it waits for, and Retry."""

from __future__ import annotations

from django.contrib import admin, messages

from interseller.admin.base import (
    EnrollmentColumns,
    ReadOnlyAdmin,
    TeamScopedAdmin,
)

from .. import services
from ..models import (
    SyncTask,
    WebhookDelivery,
)


@admin.register(SyncTask)
class SyncTaskAdmin(ReadOnlyAdmin, EnrollmentColumns, TeamScopedAdmin):
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


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin, TeamScopedAdmin):
    """What CATS told us, and what it did: a delivery that could not be processed says why
    (reconciliation reads the pipeline again whatever happened)."""

    scope_team_path = "account__membership__team"
    scope_owner_paths = ("account__membership",)
    ordering = ["-received_at"]
    list_display = ["event", "account", "received_at", "sent_at", "state", "attempts", "result"]
    list_filter = ["state", "event"]
    list_select_related = ["account__membership__user", "account__membership__team"]
    search_fields = ["request_id", "result"]
    show_full_result_count = False
    fields = [
        "account",
        "event",
        "request_id",
        "sent_at",
        "received_at",
        "state",
        "attempts",
        "result",
        "payload",
    ]
    readonly_fields = fields
