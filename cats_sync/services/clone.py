"""Cloning one member's CATS settings to teammates (Owners and Managers, spec: "Cloning
integration settings to teammates")."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction

from interseller.models import Membership

from .. import messages
from ..models import CatsAccount, FieldMapping

CLONED_FIELDS = (
    "sync_mode",
    "deduplication",
    "activity_tracking",
    "status_sync",
    "fire_triggers",
    "stop_status",
)


@dataclass(frozen=True)
class CloneLine:
    membership: Membership
    will_update: bool
    reason: str = ""
    note: str = ""


def clone_plan(*, source: CatsAccount, targets: Iterable[Membership]) -> list[CloneLine]:
    """Who would take the settings, and why the others would not."""
    targets = list(targets)
    lines = []
    accounts = {
        a.membership_id: a
        for a in CatsAccount.objects.filter(membership__in=[t.pk for t in targets])
    }
    for m in targets:
        account = accounts.get(m.pk)
        if m.pk == source.membership_id:
            continue
        if m.integration != Membership.Integration.CATS:
            if m.integration == Membership.Integration.NONE:
                lines.append(CloneLine(m, False, messages.CLONE_SKIP_NONE))
            else:
                reason = messages.CLONE_SKIP_OTHER.format(name=m.get_integration_display())
                lines.append(CloneLine(m, False, reason))
            continue
        if account is None or account.status != CatsAccount.Status.CONNECTED:
            lines.append(CloneLine(m, False, messages.CLONE_SKIP_INVALID))
            continue
        note = "" if account.site_id == source.site_id else messages.CLONE_NOTE_OTHER_SITE
        lines.append(CloneLine(m, True, "", note))
    return lines


@transaction.atomic
def cats_settings_clone(*, source: CatsAccount, targets: Iterable[Membership]) -> list[CloneLine]:
    """Copy every CATS setting; site-specific ids only onto the same CATS site."""
    lines = clone_plan(source=source, targets=list(targets))
    mappings = list(source.mappings.all())
    for line in lines:
        if not line.will_update:
            continue
        account = CatsAccount.objects.select_for_update().get(membership=line.membership)
        for name in CLONED_FIELDS:
            setattr(account, name, getattr(source, name))
        if account.site_id == source.site_id:
            account.default_job_id = source.default_job_id
            account.mappings.all().delete()
            FieldMapping.objects.bulk_create(
                FieldMapping(
                    account=account,
                    value=m.value,
                    field_id=m.field_id,
                    field_name=m.field_name,
                    field_type=m.field_type,
                )
                for m in mappings
            )
        account.save()
    return lines
