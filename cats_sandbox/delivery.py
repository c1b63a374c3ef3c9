"""Webhook deliveries: signed POSTs sent from one background thread, with retries.

Handlers queue a delivery while they hold the app's lock; the thread sends it later without
that lock, so a slow or dead receiver never holds up the API. Each attempt is logged for the
control surface (`GET /_sandbox/webhooks/deliveries`), with its bytes kept for a replay.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import http.client
import itertools
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from .state import now

DEFAULT_SETTINGS: dict[str, Any] = {
    # Seconds to wait before each retry; one attempt plus one per entry.
    "retry_delays": [0.5, 1.0, 2.0],
    # Seconds a receiver gets to answer.
    "timeout": 5.0,
    # Hold every delivery back (queued, not sent) until set to false again: a test makes sure
    # nothing arrives while it works in the receiver's database.
    "paused": False,
}
DELIVERY_LOG_SIZE = 10_000


def signature(secret: str, body: bytes, request_id: str) -> str:
    """The `X-Signature` value: HMAC-SHA256 over the raw body followed by the request id."""
    digest = hmac.new(secret.encode(), body + request_id.encode(), hashlib.sha256).hexdigest()
    return f"HMAC-SHA256 {digest}"


@dataclass(frozen=True)
class Delivery:
    site_id: int
    webhook_id: int
    event: str
    target_url: str
    body: bytes
    headers: dict[str, str]
    generation: int
    attempt: int = 1
    replay_of: int | None = None


class WebhookDeliverer:
    """`registered(site_id, webhook_id)` says whether a webhook still exists (checked before
    each fresh attempt); `gone(site_id, webhook_id)` deletes one whose receiver answered 410.
    Both take the app's lock, so this class never calls them while holding its own."""

    def __init__(
        self,
        *,
        registered: Callable[[int, int], bool],
        gone: Callable[[int, int], None],
    ) -> None:
        self._registered = registered
        self._gone = gone
        self._cond = threading.Condition()
        self._queue: list[tuple[float, int, Delivery]] = []  # heap on due time
        self._order = itertools.count()
        self._numbers = itertools.count(1)
        self._log: deque[dict[str, Any]] = deque(maxlen=DELIVERY_LOG_SIZE)
        self._in_flight = 0
        self._generation = 0
        self._drop = 0
        self._closed = False
        self._thread: threading.Thread | None = None
        self.settings = _default_settings()

    # ---------------------------------------------------------------- called by handlers

    def enqueue(self, site_id: int, hook: dict[str, Any], event: str, body: bytes) -> None:
        request_id = uuid.uuid4().hex
        headers = {
            "Content-Type": "application/json",
            "X-Request-Id": request_id,
            "X-Signature": signature(hook["secret"], body, request_id),
        }
        with self._cond:
            delivery = Delivery(
                site_id, hook["id"], event, hook["target_url"], body, headers, self._generation
            )
            self._push(delivery, 0.0)

    def replay(self, n: int) -> dict[str, Any] | None:
        """Send attempt `n` again, same bytes and headers, once; None if `n` is not logged."""
        with self._cond:
            entry = next((e for e in self._log if e["n"] == n), None)
            if entry is None:
                return None
            original: Delivery = entry["_delivery"]
            self._push(replace(original, attempt=1, replay_of=n, generation=self._generation), 0)
            return self._public(entry)

    def drop_next(self, count: int) -> int:
        with self._cond:
            self._drop += count
            return self._drop

    def configure(self, **settings: Any) -> dict[str, Any]:
        with self._cond:
            self.settings.update(settings)
            self._cond.notify_all()  # a resumed queue is due at once
            return dict(self.settings)

    def deliveries(self, since: int = 0) -> dict[str, Any]:
        with self._cond:
            return {
                "deliveries": [self._public(e) for e in self._log if e["n"] > since],
                "pending": len(self._queue) + self._in_flight,
                "in_flight": self._in_flight,
                "drop_next": self._drop,
            }

    def reset(self) -> None:
        """Forget every queued delivery and the log; an attempt in flight is not recorded."""
        with self._cond:
            self._generation += 1
            self._queue.clear()
            self._log.clear()
            self._drop = 0
            self.settings = _default_settings()
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)

    # ---------------------------------------------------------------- the thread

    def _push(self, delivery: Delivery, delay: float) -> None:
        if self._closed:
            return
        heapq.heappush(self._queue, (time.monotonic() + delay, next(self._order), delivery))
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._run, name="cats-sandbox-webhooks", daemon=True
            )
            self._thread.start()
        self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and not self._due():
                    paused = self.settings.get("paused")
                    wait = (
                        self._queue[0][0] - time.monotonic() if self._queue and not paused else None
                    )
                    self._cond.wait(wait)
                if self._closed:
                    return
                delivery = heapq.heappop(self._queue)[2]
                if delivery.generation != self._generation:
                    continue
                fresh = delivery.replay_of is None
                drop = fresh and delivery.attempt == 1 and self._drop > 0
                if drop:
                    self._drop -= 1
                self._in_flight += 1
            try:
                if fresh and not self._registered(delivery.site_id, delivery.webhook_id):
                    continue  # deleted since the event: nothing to send
                status, error = (None, "dropped") if drop else self._send(delivery)
                self._record(delivery, status, error)
                if status == 410:
                    self._gone(delivery.site_id, delivery.webhook_id)
            finally:
                with self._cond:
                    self._in_flight -= 1

    def _due(self) -> bool:
        if self.settings.get("paused"):
            return False
        return bool(self._queue) and self._queue[0][0] <= time.monotonic()

    def _send(self, delivery: Delivery) -> tuple[int | None, str | None]:
        """One POST: the answer's status, or the error that stopped it. Plain http.client, so
        no proxy, no redirect followed (a 3xx is a failure) and header names as written."""
        url = urlsplit(delivery.target_url)
        kind = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        connection = kind(url.hostname, url.port, timeout=float(self.settings["timeout"]))
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        try:
            connection.request("POST", path, body=delivery.body, headers=delivery.headers)
            answer = connection.getresponse()
            answer.read()
            return answer.status, None
        except (OSError, http.client.HTTPException) as exc:
            return None, f"{type(exc).__name__}: {exc}"
        finally:
            connection.close()

    def _record(self, delivery: Delivery, status: int | None, error: str | None) -> None:
        with self._cond:
            if delivery.generation != self._generation:
                return  # sent across a reset: forget it
            self._log.append(
                {
                    "n": next(self._numbers),
                    "webhook_id": delivery.webhook_id,
                    "site_id": delivery.site_id,
                    "event": delivery.event,
                    "request_id": delivery.headers["X-Request-Id"],
                    "target_url": delivery.target_url,
                    "attempt": delivery.attempt,
                    "replay_of": delivery.replay_of,
                    "status": status,
                    "error": error,
                    "time": now(),
                    "_delivery": delivery,
                }
            )
            delays = self.settings["retry_delays"]
            failed = status is None or not 200 <= status < 300
            if (
                failed
                and error != "dropped"
                and status != 410
                and delivery.replay_of is None
                and delivery.attempt <= len(delays)
            ):
                retry = replace(delivery, attempt=delivery.attempt + 1)
                self._push(retry, float(delays[delivery.attempt - 1]))

    @staticmethod
    def _public(entry: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in entry.items() if not k.startswith("_")}


def _default_settings() -> dict[str, Any]:
    return {k: list(v) if isinstance(v, list) else v for k, v in DEFAULT_SETTINGS.items()}
