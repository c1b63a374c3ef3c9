"""Telling a team's outreach engine, by a signed POST to the URL the team set, that an
enrollment was stopped (by an integration, through `enrollment_stop`).

The delivery is written in the transaction of the stop and sent by a worker; it is retried with
a growing back-off until answered with a 2xx, and given up on after MAX_ATTEMPTS with the
reason kept. Signed like CATS signs its own: `X-Signature: HMAC-SHA256 <hex>`, the HMAC of the
raw body followed by the `X-Request-Id` header, keyed with the team's webhook secret. The body
and the request id stay the same on every retry.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from ..models import Enrollment, Team, TeamWebhookDelivery

log = logging.getLogger(__name__)

EVENT_STOPPED = "enrollment.stopped"
MAX_ATTEMPTS = 8
TIMEOUT_SECONDS = 5
# A claimed delivery is the claimant's for this long (longer than one POST can take).
LEASE = timedelta(seconds=60)


def team_webhook_secret_ensure(*, team: Team) -> str:
    """A team with a webhook URL has a signing secret (made once, kept when the URL changes)."""
    if team.webhook_url and not team.webhook_secret:
        team.webhook_secret = secrets.token_hex(32)
        Team.objects.filter(pk=team.pk, webhook_secret="").update(
            webhook_secret=team.webhook_secret
        )
    return team.webhook_secret


def signature(secret: str, body: bytes, request_id: str) -> str:
    digest = hmac.new(secret.encode(), body + request_id.encode(), hashlib.sha256).hexdigest()
    return f"HMAC-SHA256 {digest}"


def team_webhook_stopped_queue(*, enrollment_id: int) -> TeamWebhookDelivery | None:
    """Queue "enrollment.stopped" for the enrollment's team, if it set a URL (call inside the
    stop's transaction)."""
    enrollment = (
        Enrollment.objects.select_related("contact", "sequence__team")
        .filter(pk=enrollment_id)
        .first()
    )
    if enrollment is None:
        return None
    team = enrollment.sequence.team
    if not team.webhook_url:
        return None
    team_webhook_secret_ensure(team=team)
    body = json.dumps(
        {
            "event": EVENT_STOPPED,
            "date": timezone.now(),
            "enrollment": {
                "id": enrollment.pk,
                "sequence_id": enrollment.sequence_id,
                "contact_email": enrollment.contact.email,
                "state": enrollment.state,
                "stopped_at": enrollment.stopped_at,
                "stopped_reason": enrollment.stopped_reason,
            },
        },
        cls=DjangoJSONEncoder,
    )
    try:
        with transaction.atomic():
            delivery = TeamWebhookDelivery.objects.create(
                team=team,
                enrollment=enrollment,
                event=EVENT_STOPPED,
                request_id=uuid.uuid4().hex,
                body=body,
                not_before=timezone.now(),
            )
    except IntegrityError:
        return None  # told once already
    transaction.on_commit(lambda: _enqueue(delivery.pk), robust=True)
    return delivery


def _enqueue(delivery_id: int) -> None:
    from django_q.tasks import async_task

    try:
        async_task("interseller.tasks.team_webhook_deliver", delivery_id, group="webhooks")
    except Exception:
        log.warning("Could not enqueue team webhook delivery %s; the sweeper will", delivery_id)


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


def team_webhook_deliver(*, delivery_id: int) -> str:
    """One attempt, if the delivery is due and nobody else holds it. Safe to run twice."""
    now = timezone.now()
    claimed = TeamWebhookDelivery.objects.filter(
        pk=delivery_id, state=TeamWebhookDelivery.State.PENDING, not_before__lte=now
    ).update(not_before=now + LEASE, attempts=F("attempts") + 1)
    if not claimed:
        return "not due"
    delivery = TeamWebhookDelivery.objects.select_related("team").get(pk=delivery_id)
    team = delivery.team
    if not team.webhook_url:
        TeamWebhookDelivery.objects.filter(pk=delivery_id).update(
            state=TeamWebhookDelivery.State.FAILED, last_error="The team removed its webhook URL."
        )
        return "no URL"
    body = delivery.body.encode()
    headers = {
        "Content-Type": "application/json",
        "X-Request-Id": delivery.request_id,
        "X-Signature": signature(team_webhook_secret_ensure(team=team), body, delivery.request_id),
    }
    refused = _address_refused(team.webhook_url)
    if refused:
        TeamWebhookDelivery.objects.filter(pk=delivery_id).update(
            state=TeamWebhookDelivery.State.FAILED, last_error=refused[:500]
        )
        return "refused"
    try:
        answer = requests.post(
            team.webhook_url,
            data=body,
            headers=headers,
            timeout=TIMEOUT_SECONDS,
            allow_redirects=False,
        )
        error = "" if 200 <= answer.status_code < 300 else f"answered {answer.status_code}"
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # recorded like any failure: retried, then given up with why
        log.exception("Team webhook delivery %s failed unexpectedly", delivery_id)
        error = f"{type(exc).__name__}: {exc}"
    if not error:
        TeamWebhookDelivery.objects.filter(pk=delivery_id).update(
            state=TeamWebhookDelivery.State.DONE, last_error=""
        )
        return "delivered"
    if delivery.attempts >= MAX_ATTEMPTS:
        TeamWebhookDelivery.objects.filter(pk=delivery_id).update(
            state=TeamWebhookDelivery.State.FAILED,
            last_error=f"Given up after {delivery.attempts} attempts: {error}"[:500],
        )
        return "given up"
    TeamWebhookDelivery.objects.filter(pk=delivery_id).update(
        not_before=timezone.now() + _backoff(delivery.attempts), last_error=error[:500]
    )
    return "will retry"


MSG_PRIVATE_ADDRESS = (
    "The webhook URL points to a private or local address ({host}); set a public URL on the "
    "team's page."
)


def _address_refused(url: str) -> str:
    """Why a POST to `url` is refused: a worker must never be pointed at the machines around
    it (loopback, private, link-local, e.g. a cloud's metadata address). Empty: allowed.
    TEAM_WEBHOOK_ALLOW_PRIVATE lifts this for a URL on one's own network."""
    if settings.TEAM_WEBHOOK_ALLOW_PRIVATE:
        return ""
    host = urlsplit(url).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (socket.gaierror, UnicodeError):
        return ""  # the POST fails and says why, retried like any failure
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved:
            return MSG_PRIVATE_ADDRESS.format(host=host)
    return ""


def team_webhooks_sweep(limit: int = 200) -> int:
    """Scheduled every minute: send what is due (first tries whose message was lost, and
    retries)."""
    ids = list(
        TeamWebhookDelivery.objects.filter(
            state=TeamWebhookDelivery.State.PENDING, not_before__lte=timezone.now()
        ).values_list("pk", flat=True)[:limit]
    )
    for delivery_id in ids:
        _enqueue(delivery_id)
    return len(ids)
