"""Incidents: what must reach people without their opening the admin. One email to the
connection's owner when an incident opens (a refused key, an unreadable key, a spike of
failures), none for every task it touches; it closes when its cause is gone."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone

from ..models import CatsAccount, CatsIncident, SyncTask

log = logging.getLogger(__name__)

Kind = CatsIncident.Kind

# Failed contacts of one connection within FAILURE_WINDOW that make an incident.
FAILURE_WINDOW = timedelta(minutes=15)
QUIET_TO_CLOSE = timedelta(hours=1)

MESSAGES = {
    Kind.KEY_REFUSED: "CATS refused the API key of {member}'s connection: syncing is paused. "
    "Reconnect CATS with a new key (Administration → API Keys in CATS).",
    Kind.KEY_UNREADABLE: "The stored CATS key of {member}'s connection cannot be decrypted "
    "with this server's CATS_ENCRYPTION_KEYS: syncing is paused. Restore the key it was "
    "encrypted with, or reconnect CATS.",
    Kind.FAILURES: "{count} contacts of {member}'s connection failed to sync to CATS in the "
    "last {minutes} minutes. The CATS sync health page lists the errors and their fixes.",
}


def failure_alert_count() -> int:
    return int(getattr(settings, "CATS_FAILURE_ALERT", 10))


def incident_open(*, account: CatsAccount, kind: str, **words) -> CatsIncident | None:
    """Open an incident of this kind for the account, unless one is open already."""
    member = account.membership.user.get_full_name() or account.membership.user.email
    message = MESSAGES[kind].format(member=member, **words)
    try:
        with transaction.atomic():
            return CatsIncident.objects.create(
                account=account, kind=kind, message=message[:500], opened_at=timezone.now()
            )
    except IntegrityError:
        return None  # one is open: its owner was (or will be) told once


def incident_close(*, account: CatsAccount, kinds: list[str]) -> int:
    return CatsIncident.objects.filter(
        account=account, kind__in=kinds, closed_at__isnull=True
    ).update(closed_at=timezone.now())


def incidents_review() -> None:
    """Run by the sweeper: open and close failure incidents, and send what is due."""
    now = timezone.now()
    spikes = (
        SyncTask.objects.filter(
            state=SyncTask.State.FAILED, updated_at__gt=now - FAILURE_WINDOW, account__isnull=False
        )
        .values("account_id")
        .annotate(n=Count("pk"))
        .filter(n__gte=failure_alert_count())
    )
    spiking = set()
    for row in spikes:
        spiking.add(row["account_id"])
        account = CatsAccount.objects.select_related("membership__user").get(pk=row["account_id"])
        incident_open(
            account=account,
            kind=Kind.FAILURES,
            count=row["n"],
            minutes=int(FAILURE_WINDOW.total_seconds() // 60),
        )
    recent = set(
        SyncTask.objects.filter(
            state=SyncTask.State.FAILED, updated_at__gt=now - QUIET_TO_CLOSE
        ).values_list("account_id", flat=True)
    )
    CatsIncident.objects.filter(kind=Kind.FAILURES, closed_at__isnull=True).exclude(
        account_id__in=spiking | recent
    ).update(closed_at=now)
    incidents_notify()


def incidents_notify() -> int:
    """Email the owner of each open incident nobody was told of yet. Returns how many."""
    sent = 0
    pending = CatsIncident.objects.filter(
        closed_at__isnull=True, notified_at__isnull=True
    ).select_related("account__membership__user", "account__membership__team")
    for incident in pending:
        user = incident.account.membership.user
        if not user.email:
            continue
        claimed = CatsIncident.objects.filter(pk=incident.pk, notified_at__isnull=True).update(
            notified_at=timezone.now()
        )
        if not claimed:
            continue  # another sweeper sent it
        link = settings.SITE_URL.rstrip("/") + reverse("admin:cats_sync_health")
        try:
            send_mail(
                subject=f"CATS sync: {incident.get_kind_display()}",
                message=f"{incident.message}\n\nCATS sync health: {link}\n",
                from_email=None,
                recipient_list=[user.email],
            )
        except Exception:
            log.exception("Could not email incident %s; trying again at the next sweep", incident)
            CatsIncident.objects.filter(pk=incident.pk).update(notified_at=None)
            continue
        sent += 1
    return sent
