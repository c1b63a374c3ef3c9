"""A CATS client for a member's connection: its key, and a gate that passes every request
through the site's budget and outage back-off. Every service and the engine get their client
here (a module of its own, below connection, webhooks and metadata, which all need it)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError

from .. import crypto, messages, queue
from ..budget import budget_block, budget_refund, budget_take, site_answered, site_failed
from ..client import Answer, CatsClient, CatsUnavailable, RequestGate
from ..models import CatsAccount


class SiteGate(RequestGate):
    """Every request of the sync goes through its site's budget and outage back-off.

    `heartbeat` runs before each request (the engine refreshes its task's lease there).
    """

    def __init__(self, site_id: int, *, bulk: bool, heartbeat=None, purpose: str = "") -> None:
        self.site_id = site_id
        self.bulk = bulk
        self.purpose = purpose
        self.heartbeat = heartbeat
        self.request_id: int | None = None

    def before(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat()
        self.request_id = budget_take(site_id=self.site_id, bulk=self.bulk, purpose=self.purpose)

    def answered(self, answer: Answer) -> None:
        if answer.status == 429:
            # Nobody on this site sends anything until CATS said to come back.
            budget_block(site_id=self.site_id, seconds=answer.retry_after or 1)
        ended = site_answered(
            site_id=self.site_id,
            status=answer.status,
            limit=answer.limit,
            remaining=answer.remaining,
        )
        if ended:
            queue.site_wake(site_id=self.site_id)

    def failed(self, error: CatsUnavailable) -> None:
        if error.never_reached and self.request_id is not None:
            budget_refund(request_id=self.request_id)
        site_failed(site_id=self.site_id)


def cats_client_for(
    account: CatsAccount,
    *,
    bulk: bool = False,
    budget: bool = True,
    heartbeat=None,
    purpose: str = "",
) -> CatsClient:
    """A client on the account's key whose requests pass the site's gate (budget, outages).

    Raises crypto.KeyDecryptionError (a KeyUnreadable) when the stored key cannot be read.
    """
    api_key = crypto.decrypt(account.api_key_encrypted)
    gate = None
    if budget and account.site_id:
        gate = SiteGate(account.site_id, bulk=bulk, heartbeat=heartbeat, purpose=purpose)
    return CatsClient(
        api_key,
        timeout=(settings.CATS_CONNECT_TIMEOUT, settings.CATS_READ_TIMEOUT),
        gate=gate,
    )


def require_connected(account: CatsAccount) -> None:
    if not account.is_connected:
        raise ValidationError(messages.MSG_NOT_CONNECTED)
