"""Pytest fixtures that run the CATS sandbox over real HTTP on a free local port (a plugin the
root conftest loads), and helpers to drive it: its control surface, and raw API calls."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from cats_sandbox import SandboxApp, SandboxServer, make_seed, serve


@dataclass
class SiteHandle:
    id: int
    subdomain: str
    api_key: str
    # Title -> id maps from the seed: jobs, workflows (id, statuses, triggers), custom fields.
    jobs: dict[str, int] = field(default_factory=dict)
    workflows: dict[str, Any] = field(default_factory=dict)
    custom_fields: dict[str, int] = field(default_factory=dict)
    candidates: list[int] = field(default_factory=list)

    def status_id(self, title: str, workflow: str = "General") -> int:
        return self.workflows[workflow]["statuses"][title]

    def trigger_ids(self, status: str, workflow: str = "General") -> list[int]:
        return list(self.workflows[workflow]["triggers"].get(status, {}).values())


class Api:
    """Raw HTTP as one API key, so a test sees CATS' own status codes and bodies."""

    def __init__(self, base_url: str, key: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {key}"

    def __call__(self, method: str, path: str, body=None, **kwargs) -> requests.Response:
        return self.session.request(
            method, self.base_url + path, json=body, timeout=5, allow_redirects=False, **kwargs
        )

    def new_candidate(self, email: str = "ada@example.com", **fields) -> int:
        body = {"first_name": "Ada", "last_name": "Lovelace", "emails": [{"email": email}]}
        response = self("POST", "/candidates", {**body, **fields})
        assert response.status_code == 201, response.text
        return int(response.headers["Location"].rsplit("/", 1)[1])

    def new_pipeline(self, candidate_id: int, job_id: int) -> int:
        response = self("POST", "/pipelines", {"candidate_id": candidate_id, "job_id": job_id})
        assert response.status_code == 201, response.text
        return int(response.headers["Location"].rsplit("/", 1)[1])


class SandboxHelper:
    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.url = server.url
        self.root = server.root_url
        self.http = requests.Session()

    @property
    def app(self) -> SandboxApp:
        return self.server.app

    def _call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        response = self.http.request(
            method, f"{self.root}/_sandbox{path}", json=body, params=params, timeout=10
        )
        if response.status_code >= 400:
            raise AssertionError(f"sandbox control {method} {path}: {response.text}")
        return response.json() if response.content else None

    def reset(self) -> None:
        self._call("POST", "/reset")

    def create_site(self, seed: dict[str, Any] | None = None, **overrides: Any) -> SiteHandle:
        """A site from `seed` (default: the demo seed with a fresh subdomain and key).

        Keyword overrides go through cats_sandbox.make_seed (jobs=, workflows=,
        custom_fields=, candidates=, subdomain=, api_keys=, and per-site config).
        """
        if seed is None:
            seed = make_seed(**overrides)
        elif overrides:
            seed = {**seed, **overrides}
        made = self._call("POST", "/sites", seed)
        return SiteHandle(
            id=made["id"],
            subdomain=made["subdomain"],
            api_key=made["api_key"],
            jobs=made["jobs"],
            workflows=made["workflows"],
            custom_fields=made["custom_fields"],
            candidates=made["candidates"],
        )

    def snapshot(self, site_id: int) -> dict[str, Any]:
        return self._call("GET", f"/sites/{site_id}/snapshot")

    def configure(self, site_id: int, **config: Any) -> dict[str, Any]:
        return self._call("PATCH", f"/sites/{site_id}/config", config)

    def fault(
        self,
        action: str,
        *,
        method: str = "*",
        route: str = "*",
        count: int = 1,
        hang_seconds: float = 1.0,
        retry_after: int = 30,
        site_id: int | None = None,
        every: int = 1,
    ) -> dict[str, Any]:
        """Make the next `count` requests matching method and route (a template such as
        "/candidates/{id}", or a literal path under /v3) misbehave; with `every=n`, only each
        n-th of them. See cats_sandbox.FAULT_ACTIONS."""
        return self._call(
            "POST",
            "/faults",
            {
                "action": action,
                "method": method,
                "route": route,
                "count": count,
                "hang_seconds": hang_seconds,
                "retry_after": retry_after,
                "site_id": site_id,
                "every": every,
            },
        )

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def requests(self) -> dict[str, Any]:
        return self._call("GET", "/requests")

    def request_log(self, since: int = 0, **params: Any) -> dict[str, Any]:
        """API requests after sequence number `since`: {"entries", "next", "oldest"}."""
        return self._call("GET", "/requests/log", since=since, **params)

    def clear_requests(self) -> None:
        self._call("DELETE", "/requests")

    def set_status_by_hand(self, site_id: int, pipeline_id: int, status_id: int) -> dict:
        return self._call(
            "POST", f"/sites/{site_id}/pipelines/{pipeline_id}/status", {"status_id": status_id}
        )

    def add_candidate_by_hand(self, site_id: int, **candidate: Any) -> int:
        return self._call("POST", f"/sites/{site_id}/candidates", candidate)["id"]

    def delete_candidate_by_hand(self, site_id: int, candidate_id: int) -> None:
        self._call("DELETE", f"/sites/{site_id}/candidates/{candidate_id}")

    def delete_pipeline_by_hand(self, site_id: int, pipeline_id: int) -> None:
        self._call("DELETE", f"/sites/{site_id}/pipelines/{pipeline_id}")

    def delete_custom_field(self, site_id: int, field_id: int) -> None:
        self._call("DELETE", f"/sites/{site_id}/custom_fields/{field_id}")

    def delete_job(self, site_id: int, job_id: int) -> None:
        self._call("DELETE", f"/sites/{site_id}/jobs/{job_id}")

    def rotate_key(self, site_id: int) -> str:
        return self._call("POST", f"/sites/{site_id}/keys", {"rotate": True})["api_key"]

    def revoke_key(self, site_id: int, key: str) -> None:
        self._call("DELETE", f"/sites/{site_id}/keys/{key}")

    # Webhook deliveries (the sandbox sends them from a background thread).

    def deliveries(self) -> list[dict[str, Any]]:
        return self._call("GET", "/webhooks/deliveries")["deliveries"]

    def wait_for_deliveries(self, timeout: float = 10) -> list[dict[str, Any]]:
        """Every delivery attempt, once none is queued, waiting for a retry, or in flight."""
        deadline = time.monotonic() + timeout
        while True:
            answer = self._call("GET", "/webhooks/deliveries")
            if answer["pending"] == 0:
                return answer["deliveries"]
            if time.monotonic() > deadline:
                raise AssertionError(f"webhook deliveries still pending: {answer}")
            time.sleep(0.02)

    def webhook_settings(self, **settings: Any) -> dict[str, Any]:
        """E.g. retry_delays=[0.01, 0.01] (seconds before each retry), timeout=1."""
        return self._call("PATCH", "/webhooks/settings", settings)

    @contextmanager
    def deliveries_held(self, timeout: float = 10) -> Iterator[None]:
        """Nothing is delivered inside the block (deliveries queue up, and one already on its
        way has arrived before the block starts); they go out after it."""
        self.webhook_settings(paused=True)
        deadline = time.monotonic() + timeout
        try:
            while self._call("GET", "/webhooks/deliveries")["in_flight"]:
                if time.monotonic() > deadline:
                    raise AssertionError("a webhook delivery is still in flight")
                time.sleep(0.02)
            yield
        finally:
            self.webhook_settings(paused=False)

    def replay_delivery(self, n: int) -> dict[str, Any]:
        return self._call("POST", f"/webhooks/deliveries/{n}/replay")

    def drop_deliveries(self, count: int = 1) -> None:
        self._call("POST", "/webhooks/drop", {"count": count})


class Receiver:
    """A tiny HTTP server that records each POST and answers with the next scripted status
    (200 once the script runs out). `hold` keeps answers waiting until it is set."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.script: list[int] = []
        self.hold = threading.Event()
        self.hold.set()
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.arrived:
                    receiver.received.append({"headers": self.headers, "body": body})
                    receiver.arrived.notify_all()
                receiver.hold.wait(10)
                self.send_response(receiver.script.pop(0) if receiver.script else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/cats"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def wait_for(self, count: int) -> list[dict]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.received) >= count, 10), self.received
            return list(self.received)

    def payloads(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.received]


@pytest.fixture(scope="session")
def cats_sandbox_server() -> Iterator[SandboxServer]:
    server = serve("127.0.0.1", 0).start_in_thread()
    yield server
    server.stop()


@pytest.fixture
def cats_sandbox(cats_sandbox_server: SandboxServer) -> Iterator[SandboxHelper]:
    helper = SandboxHelper(cats_sandbox_server)
    helper.reset()
    yield helper
    helper.http.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on a free local port."""
    receiver = Receiver()
    yield receiver
    receiver.hold.set()
    receiver.server.shutdown()
    receiver.server.server_close()
