"""CATS tells us of changes made in CATS: registering our webhook, receiving signed deliveries,
and processing them (a recruiter moving or deleting a candidate stops its outreach).

Registration happens after connecting (a worker), never inside the person's request; a failure
is recorded on the connection and retried by the sweeper. Each registration gets its own
secret (stored encrypted like the API key) and its own token in the receiver's URL, so a
delivery for a registration we no longer hold answers 410 and CATS deletes that webhook.

The receiver checks the signature as the API notes say (HMAC-SHA256, keyed with the secret,
over the raw body followed by the X-Request-Id header), refuses stale deliveries and takes each
request id once (a named unique constraint), stores the delivery and answers at once; a worker
processes it. Ids in the payload are only ever looked up in our own rows of that site.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from interseller.services.webhooks import signature

from .. import crypto, queue
from ..errors import CatsSyncError
from ..models import CatsAccount, WebhookDelivery
from .clients import cats_client_for
from .stops import observe_candidate_deleted, observe_pipeline_deleted, observe_pipeline_status

log = logging.getLogger(__name__)

EVENTS = ["pipeline.status_changed", "pipeline.deleted", "candidate.deleted", "candidate.updated"]
SIGNATURE_SCHEME = "HMAC-SHA256"
MAX_BODY_BYTES = 256 * 1024
# A delivery dated further ahead of our clock than this is refused too (clocks drift a little).
CLOCK_SKEW = timedelta(minutes=5)
# Request ids are kept far longer than a delivery stays fresh: a replay is refused either way.
DELIVERY_RETENTION = timedelta(days=7)
# A delivery still "processing" after this lost its worker.
PROCESS_LEASE = timedelta(minutes=5)
PROCESS_ATTEMPTS = 3
REGISTER_RETRY = timedelta(minutes=10)

MSG_NO_SITE_URL = (
    "SITE_URL is not set, so CATS cannot reach this app: changes made in CATS are caught by "
    "reconciliation only."
)
MSG_REGISTER_FAILED = "Could not register the CATS webhook: {detail}. Tried again every 10 minutes."
MSG_PROCESS_FAILED = (
    "Could not process this delivery: {detail}. Reconciliation will read the pipeline again."
)


def max_age() -> timedelta:
    return timedelta(seconds=float(getattr(settings, "CATS_WEBHOOK_MAX_AGE", 900)))


def receiver_url(token: str) -> str:
    return settings.SITE_URL.rstrip("/") + reverse("cats-webhook", args=[token])


MSG_WEBHOOK_ACTIVE = "CATS tells us of each move right away (webhook registered {at})."
MSG_WEBHOOK_PENDING = "Registering the CATS webhook…"
MSG_NOT_CONNECTED = "Not connected."
MSG_SAFETY_NET = " Reconciliation re-reads pipelines too, in case a delivery is lost."


def webhook_words(account: CatsAccount) -> str:
    """How this connection hears of changes made in CATS, in words (settings, health page)."""
    if not account.is_connected:
        return MSG_NOT_CONNECTED
    if account.webhook_id is not None:
        at = timezone.localtime(account.webhook_registered_at).strftime("%Y-%m-%d %H:%M")
        return MSG_WEBHOOK_ACTIVE.format(at=at) + MSG_SAFETY_NET
    if not settings.SITE_URL:
        return MSG_NO_SITE_URL
    return account.webhook_error or MSG_WEBHOOK_PENDING


# --- registering ----------------------------------------------------------------------------


def _claim_registration(account_id: int) -> bool:
    """One worker at a time registers an account's webhook (the claim lapses on its own)."""
    now = timezone.now()
    return bool(
        CatsAccount.objects.filter(
            pk=account_id, webhook_id__isnull=True, status=CatsAccount.Status.CONNECTED
        )
        .exclude(webhook_tried_at__gt=now - timedelta(seconds=30))
        .update(webhook_tried_at=now)
    )


def webhook_register(*, account_id: int) -> str:
    """Register the account's webhook if it has none. Never raises: a failure is recorded on
    the connection (shown on the health page) and tried again by the sweeper."""
    account = CatsAccount.objects.select_related("site").filter(pk=account_id).first()
    if account is None or not account.is_connected:
        return "not connected"
    if account.webhook_id is not None:
        return "registered already"
    if not settings.SITE_URL:
        CatsAccount.objects.filter(pk=account.pk).update(
            webhook_error=MSG_NO_SITE_URL, webhook_tried_at=timezone.now()
        )
        return "no SITE_URL"
    if not _claim_registration(account.pk):
        return "claimed elsewhere"
    # A new token and secret each attempt, saved before the request (a delivery may come
    # back before the answer does): a webhook CATS made from an attempt whose answer was
    # lost is never ours once the token is dropped, and answers 410 when it delivers.
    token = secrets.token_urlsafe(32)
    secret = secrets.token_urlsafe(32)
    CatsAccount.objects.filter(pk=account.pk).update(
        webhook_token=token, webhook_secret_encrypted=crypto.encrypt(secret)
    )
    try:
        client = cats_client_for(account)
        webhook_id = client.create_webhook(
            events=EVENTS, target_url=receiver_url(token), secret=secret
        )
    except Exception as exc:  # recorded on the connection, tried again by the sweeper
        detail = getattr(exc, "message", None) or str(exc)
        if not isinstance(exc, CatsSyncError):
            log.exception("Unexpected error registering the CATS webhook of %s", account)
        CatsAccount.objects.filter(pk=account.pk).update(
            webhook_token="",
            webhook_secret_encrypted="",
            webhook_error=MSG_REGISTER_FAILED.format(detail=detail)[:500],
            webhook_tried_at=timezone.now(),
        )
        log.warning("Could not register the CATS webhook of %s: %s", account, detail)
        return "failed"
    CatsAccount.objects.filter(pk=account.pk).update(
        webhook_id=webhook_id, webhook_registered_at=timezone.now(), webhook_error=""
    )
    return "registered"


def webhook_register_on_commit(*, account: CatsAccount) -> None:
    transaction.on_commit(
        lambda: queue.enqueue_call("cats_sync.tasks.webhook_register", account.pk), robust=True
    )


def webhook_forget(account: CatsAccount) -> None:
    """Our side of the registration is gone: its deliveries answer 410 from now on."""
    fields = account.webhook_reset()
    CatsAccount.objects.filter(pk=account.pk).update(
        **{name: getattr(account, name) for name in fields}
    )


def webhook_unregister(*, account: CatsAccount) -> None:
    """Delete the account's webhook in CATS (while its key still works), then forget it. A
    failed delete is only logged: the webhook's next delivery answers 410, which deletes it."""
    if account.webhook_id is None:
        return
    try:
        cats_client_for(account).delete_webhook(account.webhook_id)
    except CatsSyncError as exc:
        log.warning("Could not delete the CATS webhook of %s: %s; 410 will", account, exc)
    webhook_forget(account)


def webhooks_ensure(limit: int = 50) -> int:
    """The sweeper's part: connected accounts without a webhook get one (each failed attempt
    waits REGISTER_RETRY)."""
    if not settings.SITE_URL:
        return 0
    due = CatsAccount.objects.filter(
        status=CatsAccount.Status.CONNECTED, site__isnull=False, webhook_id__isnull=True
    ).exclude(webhook_tried_at__gt=timezone.now() - REGISTER_RETRY)
    ids = list(due.values_list("pk", flat=True)[:limit])
    for account_id in ids:
        queue.enqueue_call("cats_sync.tasks.webhook_register", account_id)
    return len(ids)


# --- receiving ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    status: int
    message: str


def signature_valid(secret: str, body: bytes, request_id: str, header: str) -> bool:
    """`header` is "HMAC-SHA256 <hex>" (the notes); a bare hex digest is taken too."""
    value = (header or "").strip()
    scheme, _, digest = value.rpartition(" ")
    if scheme and scheme.strip().upper() != SIGNATURE_SCHEME:
        return False
    expected = signature(secret, body, request_id).rpartition(" ")[2]
    return hmac.compare_digest(expected.encode(), digest.strip().lower().encode())


def _parse_date(value) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=UTC)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def webhook_receive(*, token: str, body: bytes, request_id: str, signature: str) -> Received:
    """Check one delivery and store it; the worker processes it. What to answer CATS."""
    # A key CATS refused for now still owns its webhook (disconnecting forgets the token): a
    # 410 would make CATS delete it while the person is reconnecting.
    account = (
        CatsAccount.objects.filter(webhook_token=token)
        .exclude(webhook_token="")
        .exclude(status=CatsAccount.Status.DISCONNECTED)
        .first()
        if token
        else None
    )
    if account is None or not account.webhook_secret_encrypted:
        # Not (or no longer) a registration of ours: CATS deletes a webhook answered 410.
        return Received(410, "No such webhook.")
    request_id = (request_id or "").strip()
    if not request_id or len(request_id) > 100:
        return Received(400, "X-Request-Id is missing.")
    try:
        secret = crypto.decrypt(account.webhook_secret_encrypted)
    except crypto.KeyDecryptionError:
        log.error("The webhook secret of %s cannot be decrypted", account)
        return Received(503, "The webhook secret cannot be read.")
    if not signature_valid(secret, body, request_id, signature):
        return Received(401, "Bad signature.")
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return Received(400, "The body is not JSON.")
    if not isinstance(payload, dict) or not isinstance(payload.get("event"), str):
        return Received(400, "The body names no event.")
    sent_at = _parse_date(payload.get("date"))
    now = timezone.now()
    if sent_at is None:
        return Received(400, "The delivery has no readable date.")
    if sent_at < now - max_age() or sent_at > now + CLOCK_SKEW:
        return Received(400, "Stale delivery.")
    pipeline_id, candidate_id, status_id = delivery_subject(payload["event"], payload)
    try:
        with transaction.atomic():
            delivery = WebhookDelivery.objects.create(
                account=account,
                request_id=request_id,
                event=payload["event"][:40],
                payload=payload,
                sent_at=sent_at,
                pipeline_id=pipeline_id,
                candidate_id=candidate_id,
                status_id=status_id,
            )
    except IntegrityError:
        # Taken before: CATS retrying a delivery whose answer it lost, or a replay. Either
        # way nothing is done twice, and a 2xx stops CATS from retrying.
        return Received(200, "Already received.")
    transaction.on_commit(
        lambda: queue.enqueue_call("cats_sync.tasks.webhook_process", delivery.pk), robust=True
    )
    return Received(202, "Accepted.")


# --- processing -----------------------------------------------------------------------------


def _claim_delivery(delivery_id: int) -> bool:
    now = timezone.now()
    fresh = WebhookDelivery.objects.filter(pk=delivery_id, state=WebhookDelivery.State.RECEIVED)
    stuck = WebhookDelivery.objects.filter(
        pk=delivery_id,
        state=WebhookDelivery.State.PROCESSING,
        claimed_at__lt=now - PROCESS_LEASE,
    )
    updates = {
        "state": WebhookDelivery.State.PROCESSING,
        "claimed_at": now,
        "attempts": F("attempts") + 1,
    }
    return bool(fresh.update(**updates) or stuck.update(**updates))


def webhook_delivery_process(*, delivery_id: int) -> str:
    """What the delivery means for our enrollments. Safe to run twice (claimed once); an
    error is recorded on the row and retried, and reconciliation re-reads the pipeline."""
    if not _claim_delivery(delivery_id):
        return "claimed elsewhere or done"
    delivery = WebhookDelivery.objects.select_related("account").get(pk=delivery_id)
    try:
        result = _process(delivery)
    except Exception as exc:  # recorded on the row, never lost
        log.exception("CATS webhook delivery %s failed", delivery_id)
        state = (
            WebhookDelivery.State.FAILED
            if delivery.attempts >= PROCESS_ATTEMPTS
            else WebhookDelivery.State.RECEIVED
        )
        WebhookDelivery.objects.filter(pk=delivery_id).update(
            state=state, result=MSG_PROCESS_FAILED.format(detail=exc)[:500]
        )
        return "failed"
    WebhookDelivery.objects.filter(pk=delivery_id).update(
        state=WebhookDelivery.State.DONE, result=result[:500]
    )
    return result


def _as_int(value) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def delivery_subject(event: str, payload: dict) -> tuple[int | None, int | None, int | None]:
    """The pipeline, candidate and status a delivery is about, where its payload says (the
    ids at the top, or in the embedded pipeline; a deleted candidate's own id)."""
    embedded = payload.get("_embedded") if isinstance(payload.get("_embedded"), dict) else {}
    pipeline = embedded.get("pipeline") if isinstance(embedded.get("pipeline"), dict) else {}
    pipeline_id = _as_int(payload.get("pipeline_id")) or _as_int(pipeline.get("id"))
    candidate_id = _as_int(payload.get("candidate_id")) or _as_int(pipeline.get("candidate_id"))
    if event == "candidate.deleted":
        candidate_id = candidate_id or _as_int(payload.get("id"))
    status_id = _as_int(payload.get("status_id")) or _as_int(pipeline.get("status_id"))
    return pipeline_id, candidate_id, status_id


def _process(delivery: WebhookDelivery) -> str:
    account = delivery.account
    site_id = account.site_id
    if site_id is None:
        return "the connection has no CATS site"
    pipeline_id, candidate_id, status_id = delivery_subject(delivery.event, delivery.payload)
    if delivery.event == "pipeline.status_changed":
        if pipeline_id is None:
            return "no pipeline id in the delivery"
        # The notes do not promise the new status in the payload (the sandbox sends it):
        # without it, reconciliation reads the pipeline next.
        return observe_pipeline_status(
            site_id=site_id, pipeline_id=pipeline_id, status_id=status_id, delivery=delivery
        )
    if delivery.event == "pipeline.deleted":
        if pipeline_id is None:
            return "no pipeline id in the delivery"
        return observe_pipeline_deleted(site_id=site_id, pipeline_id=pipeline_id, delivery=delivery)
    if delivery.event == "candidate.deleted":
        if candidate_id is None:
            return "no candidate id in the delivery"
        return observe_candidate_deleted(
            site_id=site_id, candidate_id=candidate_id, delivery=delivery
        )
    return "nothing to do"


def deliveries_sweep() -> int:
    """Deliveries whose processing message was lost are processed now; old ones forgotten."""
    now = timezone.now()
    ids = list(
        WebhookDelivery.objects.filter(
            state=WebhookDelivery.State.RECEIVED, received_at__lt=now - timedelta(seconds=30)
        ).values_list("pk", flat=True)[:200]
    )
    ids += list(
        WebhookDelivery.objects.filter(
            state=WebhookDelivery.State.PROCESSING, claimed_at__lt=now - PROCESS_LEASE
        ).values_list("pk", flat=True)[:200]
    )
    for delivery_id in ids:
        queue.enqueue_call("cats_sync.tasks.webhook_process", delivery_id)
    WebhookDelivery.objects.filter(received_at__lt=now - DELIVERY_RETENTION).delete()
    return len(ids)
