"""Connecting a member to CATS, disconnecting, and the CATS client every other part uses.

`cats_connect_check` only reads (the form calls it to show errors); `cats_connect` writes, and
runs only once the whole admin page is valid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from interseller.models import Membership

from .. import crypto, messages, queue
from ..client import CatsAuthError, CatsClient, CatsError
from ..models import (
    CatsAccount,
    CatsIncident,
    CatsSite,
    FieldMapping,
    SequenceSync,
    SyncIssue,
    SyncTask,
)
from .incidents import incident_close, incident_open
from .issues import issues_clear_for_account

SUBDOMAIN_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


# --- connecting ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckedKey:
    """What CATS said about a subdomain and key (GET /site): enough to connect without asking
    again."""

    subdomain: str
    api_key: str
    site_cats_id: int
    rate_limit: int | None


def normalize_subdomain(subdomain: str) -> str:
    subdomain = (subdomain or "").strip().lower()
    if subdomain.endswith(".catsone.com"):
        subdomain = subdomain[: -len(".catsone.com")]
    return subdomain


def cats_connect_check(*, subdomain: str, api_key: str) -> CheckedKey:
    """Ask CATS whether the key opens this subdomain. Reads only; raises ValidationError."""
    subdomain = normalize_subdomain(subdomain)
    if not SUBDOMAIN_RE.match(subdomain):
        raise ValidationError({"subdomain": messages.MSG_SUBDOMAIN_INVALID})
    api_key = (api_key or "").strip()
    if not api_key:
        raise ValidationError({"api_key": messages.MSG_KEY_REQUIRED})
    client = CatsClient(
        api_key, timeout=(settings.CATS_CONNECT_TIMEOUT, settings.CATS_READ_TIMEOUT)
    )
    try:
        site_data = client.get_site()
    except CatsAuthError:
        raise ValidationError({"api_key": messages.MSG_KEY_REJECTED}) from None
    except CatsError as exc:
        raise ValidationError(messages.MSG_UNREACHABLE.format(detail=exc.message)) from None
    actual = str((site_data or {}).get("subdomain") or "").lower()
    if actual != subdomain:
        raise ValidationError(
            {"subdomain": messages.MSG_SUBDOMAIN_MISMATCH.format(actual=actual, entered=subdomain)}
        )
    try:
        site_cats_id = int(site_data["id"])
    except (KeyError, TypeError, ValueError):
        raise ValidationError(
            messages.MSG_UNREACHABLE.format(detail="CATS named no site id")
        ) from None
    return CheckedKey(actual, api_key, site_cats_id, client.rate_limit_limit)


@dataclass(frozen=True)
class Connected:
    account: CatsAccount
    # Set when the member moved to another CATS site and site-specific settings were cleared.
    notice: str = ""


@transaction.atomic
def cats_connect(
    *,
    membership: Membership,
    subdomain: str = "",
    api_key: str = "",
    checked: CheckedKey | None = None,
    account: CatsAccount | None = None,
) -> Connected:
    """Connect (or reconnect) a member with a key CATS accepted; resumes their paused work.

    `checked` is what `cats_connect_check` answered (the form already asked CATS); without it
    CATS is asked here. `account` carries settings from the same page to save with it.
    Job orders and custom fields of another CATS site never carry over: moving the member
    to another site clears them, and the notice says so.
    """
    if checked is None:
        checked = cats_connect_check(subdomain=subdomain, api_key=api_key)
    site, _ = CatsSite.objects.get_or_create(
        cats_id=checked.site_cats_id, defaults={"subdomain": checked.subdomain}
    )
    site_updates = {}
    if site.subdomain != checked.subdomain:
        site_updates["subdomain"] = checked.subdomain
    if checked.rate_limit:
        site_updates["rate_limit"] = checked.rate_limit
    if site_updates:
        CatsSite.objects.filter(pk=site.pk).update(**site_updates)
    existing = CatsAccount.objects.select_for_update().filter(membership=membership).first()
    if account is None:
        account = existing or CatsAccount(membership=membership)
    elif existing is not None:
        account.pk = existing.pk
        account.created_at = existing.created_at
        for name in CatsAccount.WEBHOOK_REGISTRATION:
            setattr(account, name, getattr(existing, name))
    previous_site_id = existing.site_id if existing is not None else None
    account.membership = membership
    account.subdomain = checked.subdomain
    account.api_key_encrypted = crypto.encrypt(checked.api_key)
    account.site = site
    account.status = CatsAccount.Status.CONNECTED
    account.status_message = ""
    account.connected_at = timezone.now()
    notice = ""
    if previous_site_id is not None and previous_site_id != site.pk:
        notice = _forget_other_site(account, site)
        # The webhook lives on the old site: its deliveries answer 410 from now on.
        account.webhook_reset()
    account.save()
    Membership.objects.filter(pk=membership.pk).update(integration=Membership.Integration.CATS)
    membership.integration = Membership.Integration.CATS
    queue.tasks_resume(account=account)
    issues_clear_for_account(account_id=account.pk, step=SyncIssue.Step.CONNECTION)
    incident_close(
        account=account,
        kinds=[CatsIncident.Kind.KEY_REFUSED, CatsIncident.Kind.KEY_UNREADABLE],
    )
    if account.webhook_id is None:
        # A worker registers it once this commits; a failure is recorded, never raised here.
        from .webhooks import webhook_register_on_commit

        webhook_register_on_commit(account=account)
    return Connected(account, notice)


def _forget_other_site(account: CatsAccount, site: CatsSite) -> str:
    """The member now syncs to another CATS site: ids of the old one mean nothing there."""
    account.default_job_id = None
    if account.pk:
        FieldMapping.objects.filter(account_id=account.pk).delete()
    sequences = SequenceSync.objects.filter(
        sequence__owner_id=account.membership_id, job_id__isnull=False
    ).update(job_id=None)
    return messages.MSG_OTHER_SITE_CLEARED.format(site=site, sequences=sequences)


def cats_disconnect(*, account: CatsAccount) -> int:
    """Stop syncing; queued work is paused, not dropped. Returns how many tasks wait.

    The webhook is deleted in CATS first, while the key still works (a failure only logged:
    its next delivery answers 410, which deletes it), outside the transaction: no row stays
    locked while CATS answers."""
    from .webhooks import webhook_unregister

    webhook_unregister(account=account)
    return _disconnect_rows(account)


@transaction.atomic
def _disconnect_rows(account: CatsAccount) -> int:
    account.status = CatsAccount.Status.DISCONNECTED
    account.status_message = messages.MSG_DISCONNECTED
    account.api_key_encrypted = ""
    account.save(update_fields=["status", "status_message", "api_key_encrypted", "updated_at"])
    Membership.objects.filter(pk=account.membership_id).update(
        integration=Membership.Integration.NONE
    )
    return SyncTask.objects.filter(
        account=account, state__in=[SyncTask.State.PENDING, SyncTask.State.RUNNING]
    ).update(state=SyncTask.State.PAUSED)


def cats_account_mark_invalid(*, account: CatsAccount) -> None:
    """CATS answered 401: pause the member's work until they reconnect."""
    with transaction.atomic():
        CatsAccount.objects.filter(pk=account.pk).update(
            status=CatsAccount.Status.INVALID,
            status_message=messages.ERR_AUTH,
        )
        SyncTask.objects.filter(account=account, state=SyncTask.State.PENDING).update(
            state=SyncTask.State.PAUSED
        )
        incident_open(account=account, kind=CatsIncident.Kind.KEY_REFUSED)
