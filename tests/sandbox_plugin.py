"""Pytest fixtures that run the CATS sandbox over real HTTP on a free local port."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from cats_sync import sandbox, sandbox_seed


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


class SandboxHelper:
    def __init__(self, server: sandbox.SandboxServer) -> None:
        self.server = server
        self.url = server.url
        self.root = server.root_url
        self.http = requests.Session()

    @property
    def app(self) -> sandbox.SandboxApp:
        return self.server.app

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, f"{self.root}/_sandbox{path}", json=body, timeout=10)
        if response.status_code >= 400:
            raise AssertionError(f"sandbox control {method} {path}: {response.text}")
        return response.json() if response.content else None

    def reset(self) -> None:
        self._call("POST", "/reset")

    def create_site(self, seed: dict[str, Any] | None = None, **overrides: Any) -> SiteHandle:
        """A site from `seed` (default: the demo seed with a fresh subdomain and key).

        Keyword overrides go through sandbox_seed.make_seed (jobs=, workflows=,
        custom_fields=, candidates=, subdomain=, api_keys=, and per-site config).
        """
        if seed is None:
            seed = sandbox_seed.make_seed(**overrides)
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
    ) -> dict[str, Any]:
        """Make the next `count` requests matching method and route (a template such as
        "/candidates/{id}", or a literal path under /v3) misbehave; see sandbox.FAULT_ACTIONS."""
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
            },
        )

    def requests(self) -> dict[str, Any]:
        return self._call("GET", "/requests")

    def set_status_by_hand(self, site_id: int, pipeline_id: int, status_id: int) -> dict:
        return self._call(
            "POST", f"/sites/{site_id}/pipelines/{pipeline_id}/status", {"status_id": status_id}
        )

    def add_candidate_by_hand(self, site_id: int, **candidate: Any) -> int:
        return self._call("POST", f"/sites/{site_id}/candidates", candidate)["id"]

    def delete_custom_field(self, site_id: int, field_id: int) -> None:
        self._call("DELETE", f"/sites/{site_id}/custom_fields/{field_id}")

    def delete_job(self, site_id: int, job_id: int) -> None:
        self._call("DELETE", f"/sites/{site_id}/jobs/{job_id}")

    def rotate_key(self, site_id: int) -> str:
        return self._call("POST", f"/sites/{site_id}/keys", {"rotate": True})["api_key"]

    def revoke_key(self, site_id: int, key: str) -> None:
        self._call("DELETE", f"/sites/{site_id}/keys/{key}")


@pytest.fixture(scope="session")
def cats_sandbox_server() -> Iterator[sandbox.SandboxServer]:
    server = sandbox.serve("127.0.0.1", 0).start_in_thread()
    yield server
    server.stop()


@pytest.fixture
def cats_sandbox(cats_sandbox_server: sandbox.SandboxServer) -> Iterator[SandboxHelper]:
    helper = SandboxHelper(cats_sandbox_server)
    helper.reset()
    yield helper
    helper.http.close()
