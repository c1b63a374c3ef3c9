"""CATS REST API v3 client.

Written against docs/cats-api-v3.md. Where the notes mark CATS behaviour as a guess, the
client accepts every plausible answer instead of the guessed one only.

One module for one outside service, as the house style has it: the transport (errors, paging,
retries of what is safe to retry, the request gate) and one method per CATS call, each with
its reference. It is long because CATS is wide, not because it does several jobs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from urllib3.exceptions import NewConnectionError

from .errors import CatsSyncError, RateLimited

PER_PAGE = 100
# 25 emails -> 50 filter terms (primary and secondary address): a body of a few KB, and 4
# searches per 100 contacts.
EMAIL_CHUNK = 25
DEFAULT_RETRY_AFTER = 60
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})


class CatsError(CatsSyncError):
    """Any failure talking to CATS. `permanent` failures need a person; others can be retried."""

    permanent = True

    def __init__(self, message: str, *, status: int | None = None, body: Any = None) -> None:
        CatsSyncError.__init__(self, message)
        self.status = status
        self.body = body


class CatsAuthError(CatsError):
    permanent = True


class CatsNotFound(CatsError):
    permanent = True


class CatsRejected(CatsError):
    """CATS refused the request as invalid (400/409/422 and other 4xx); `message` is CATS'."""

    permanent = True


class CatsRateLimited(CatsError, RateLimited):
    """429: CATS' own rate limit. Also a Wait: nothing is wrong, come back at `until`."""

    permanent = False

    def __init__(self, message: str, *, retry_after: int, **kwargs: Any) -> None:
        CatsError.__init__(self, message, **kwargs)
        self.retry_after = retry_after
        self.until = datetime.now(UTC) + timedelta(seconds=max(retry_after, 1))


class CatsUnavailable(CatsError):
    """5xx, timeouts, connection failures. For a write, the change may or may not have landed.

    `never_reached`: the request provably did nothing (no connection, or 503), so it need not
    count against the request budget.
    """

    permanent = False

    def __init__(
        self,
        message: str,
        *,
        write_may_have_happened: bool = False,
        never_reached: bool = False,
        **kwargs: Any,
    ):
        super().__init__(message, **kwargs)
        self.write_may_have_happened = write_may_have_happened
        self.never_reached = never_reached


@dataclass(frozen=True)
class Answer:
    """What a request gate learns from an HTTP answer: its status and the rate-limit headers
    (Retry-After with a 429)."""

    status: int
    limit: int | None
    remaining: int | None
    retry_after: int | None = None


@dataclass(frozen=True)
class PipelineAdded:
    id: int
    # The pipeline as CATS holds it when it existed already (its status); None when new.
    existing: dict | None = None


class RequestGate:
    """Where the sync watches every request: `before` may raise a `Wait` to stop it (the
    request budget, an outage back-off); `answered` and `failed` report how it went.

    This default lets everything through; the sync passes one bound to a CATS site.
    """

    def before(self) -> None:
        pass

    def answered(self, answer: Answer) -> None:
        pass

    def failed(self, error: CatsUnavailable) -> None:
        pass


def _retry_after_seconds(value: str | None) -> int:
    if not value:
        return DEFAULT_RETRY_AFTER
    try:
        return max(0, int(value.strip()))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER
    return max(0, int((when - datetime.now(UTC)).total_seconds()))


def _int_header(response: requests.Response, name: str) -> int | None:
    try:
        return int(response.headers[name])
    except (KeyError, ValueError):
        return None


def _id_from_location(location: str | None) -> int | None:
    if not location:
        return None
    tail = urlsplit(location).path.rstrip("/").rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _rfc3339(value: datetime | str) -> str:
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        # Naive datetimes in this project are UTC; CATS needs an explicit offset.
        value = value.replace(tzinfo=UTC)
    return value.replace(microsecond=0).isoformat()


class CatsClient:
    """One client per CATS connection (API key)."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        timeout: float | tuple[float, float] = (3.05, 10),
        max_retries: int = 2,
        session: requests.Session | None = None,
        retry_backoff: float = 0.25,
        gate: RequestGate | None = None,
    ) -> None:
        """`gate` sees every HTTP request before it is sent and how it ended (see RequestGate)."""
        if base_url is None:
            from django.conf import settings

            base_url = settings.CATS_API_URL
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self.session = session or requests.Session()
        self.session.headers.update(
            {
                "Authorization": f"Token {api_key}",
                "Accept": "application/json",
                "Content-Type": "application/json",
            }
        )
        self.rate_limit_limit: int | None = None
        self.rate_limit_remaining: int | None = None
        self.requests_made = 0
        self.gate = gate or RequestGate()
        self._workflow_statuses_cache: dict[int, list[dict]] = {}

    # ------------------------------------------------------------------ transport

    def _url(self, path_or_href: str) -> str:
        if path_or_href.startswith(("http://", "https://")):
            return path_or_href
        base_path = urlsplit(self.base_url).path.rstrip("/")
        if base_path and path_or_href.startswith(base_path + "/"):
            # A relative href that already carries the API prefix (e.g. "/v3/candidates?...").
            return urljoin(self.base_url + "/", path_or_href)
        return self.base_url + "/" + path_or_href.lstrip("/")

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
    ) -> requests.Response:
        """Send one logical request; retries transient failures only when it is safe."""
        method = method.upper()
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        url = self._url(path)
        attempt = 0
        while True:
            try:
                return self._send_once(method, url, params=params, json=json)
            except CatsUnavailable:
                if not idempotent or attempt >= self.max_retries:
                    raise
            attempt += 1
            # Brief, bounded backoff: long waits belong to the task queue, not to a call.
            time.sleep(min(self.retry_backoff * (2 ** (attempt - 1)), 2.0))

    def _send_once(
        self, method: str, url: str, *, params: dict[str, Any] | None, json: Any
    ) -> requests.Response:
        is_write = method not in {"GET", "HEAD"}
        self.gate.before()
        self.requests_made += 1
        try:
            response = self.session.request(
                method, url, params=params, json=json, timeout=self.timeout
            )
        except requests.exceptions.ConnectTimeout as exc:
            error = CatsUnavailable(f"CATS connect timeout: {exc}", never_reached=True)
            self.gate.failed(error)
            raise error from exc
        except requests.exceptions.Timeout as exc:
            error = CatsUnavailable(
                "CATS did not answer in time.", write_may_have_happened=is_write
            )
            self.gate.failed(error)
            raise error from exc
        except requests.exceptions.ConnectionError as exc:
            never_connected = _is_connect_failure(exc)
            error = CatsUnavailable(
                f"Connection to CATS failed: {exc}",
                write_may_have_happened=is_write and not never_connected,
                never_reached=never_connected,
            )
            self.gate.failed(error)
            raise error from exc
        self._note_rate_limit(response)
        error = None if response.status_code < 400 else self._error_for(response, is_write=is_write)
        if isinstance(error, CatsUnavailable):
            self.gate.failed(error)
        else:
            self.gate.answered(
                Answer(
                    response.status_code,
                    self.rate_limit_limit,
                    self.rate_limit_remaining,
                    getattr(error, "retry_after", None),
                )
            )
        if error is not None:
            raise error
        return response

    def _note_rate_limit(self, response: requests.Response) -> None:
        limit = _int_header(response, "X-Rate-Limit-Limit")
        remaining = _int_header(response, "X-Rate-Limit-Remaining")
        if limit is not None:
            self.rate_limit_limit = limit
        if remaining is not None:
            self.rate_limit_remaining = remaining

    @staticmethod
    def _error_for(response: requests.Response, *, is_write: bool) -> CatsError:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = response.text
        message = body.get("message") if isinstance(body, dict) else None
        message = str(message or body or response.reason or f"HTTP {status}")
        kwargs = {"status": status, "body": body}
        if status in (401, 403):
            return CatsAuthError(message, **kwargs)
        if status == 404:
            return CatsNotFound(message, **kwargs)
        if status == 429:
            retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
            return CatsRateLimited(message, retry_after=retry_after, **kwargs)
        if status >= 500:
            # 503 means CATS turned the request away before handling it.
            return CatsUnavailable(
                message,
                write_may_have_happened=is_write and status != 503,
                never_reached=status == 503,
                **kwargs,
            )
        return CatsRejected(message, **kwargs)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise CatsUnavailable(
                f"CATS answered {response.status_code} with a body that is not JSON.",
                status=response.status_code,
            ) from exc

    def _created_id(self, response: requests.Response) -> int | None:
        created = _id_from_location(response.headers.get("Location"))
        if created is None and response.content:
            try:
                body = response.json()
            except ValueError:
                body = None
            if isinstance(body, dict) and isinstance(body.get("id"), int):
                created = body["id"]
        return created

    def iter_list(
        self,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        method: str = "GET",
        json: Any = None,
        idempotent: bool | None = None,
        embedded: str | None = None,
    ) -> Iterator[dict]:
        """Rows of a HAL list, following `_links.next` (absolute or relative hrefs).

        Paging relies on the next link only: `total` may be a number, a string or null.
        A POST search is re-sent with the same body to each next page.
        """
        first_params = {"per_page": PER_PAGE, **(params or {})}
        target: str | None = path
        call_params: dict[str, Any] | None = first_params
        seen: set[str] = set()
        while target is not None:
            body = self._json(method, target, params=call_params, json=json, idempotent=idempotent)
            if isinstance(body, list):
                yield from body
                return
            if not isinstance(body, dict):
                return
            rows = _embedded_rows(body, embedded)
            yield from rows
            next_link = (body.get("_links") or {}).get("next")
            href = next_link.get("href") if isinstance(next_link, dict) else next_link
            if not href or not rows:
                return
            url = self._url(href)
            if url in seen:
                return
            seen.add(url)
            # The href carries page and per_page; keep per_page if CATS left it out.
            target = url
            call_params = None if "per_page=" in url else {"per_page": PER_PAGE}

    # ------------------------------------------------------------------ site

    # Reference: https://docs.catsone.com/api/v3/#site
    def get_site(self) -> dict:
        """Check the key: answers {"id", "subdomain", ...} or raises CatsAuthError."""
        return self._json("GET", "/site")

    # ------------------------------------------------------------------ candidates

    # Reference: https://docs.catsone.com/api/v3/#candidates-search-candidates
    def find_candidates_by_emails(
        self, emails: list[str], *, how: str = "filter"
    ) -> dict[str, list[dict]]:
        """Candidates whose primary or secondary email equals one of `emails`, ignoring case.

        Keys are the lower-cased emails asked for, each present even with no match; rows are
        compared here, case-insensitively, whatever CATS matched. How CATS compares case is
        undocumented (docs/cats-api-v3.md), hence two ways:

        - "filter": one `POST /candidates/search` per EMAIL_CHUNK emails, a `contains` term on
          each address field (CATS' `contains`, unlike `exactly` on some accounts, finds any
          case);
        - "text": one free-text `GET /candidates/search?query=` per email, for an account
          whose filters compare case (see `probe_email_search`).
        """
        keys: list[str] = []
        for email in emails:
            key = (email or "").strip().lower()
            if key and key not in keys:
                keys.append(key)
        found: dict[str, list[dict]] = {key: [] for key in keys}

        def collect(rows) -> None:
            for row in rows:
                for address in _candidate_emails(row):
                    key = address.lower()
                    if key in found and all(c.get("id") != row.get("id") for c in found[key]):
                        found[key].append(row)

        if how == "text":
            for key in keys:
                collect(
                    self.iter_list(
                        "/candidates/search", params={"query": key}, embedded="candidates"
                    )
                )
            return found
        for start in range(0, len(keys), EMAIL_CHUNK):
            chunk = keys[start : start + EMAIL_CHUNK]
            terms = [
                {"field": field, "filter": "contains", "value": key}
                for key in chunk
                for field in ("emails.primary", "emails.secondary")
            ]
            collect(
                self.iter_list(
                    "/candidates/search",
                    method="POST",
                    json={"or": terms},
                    idempotent=True,  # a search changes nothing, so retrying it is safe
                    embedded="candidates",
                )
            )
        return found

    def find_candidates_by_email(self, email: str, *, how: str = "filter") -> list[dict]:
        return self.find_candidates_by_emails([email], how=how).get(
            (email or "").strip().lower(), []
        )

    def probe_email_search(self) -> str | None:
        """Find out how this account's search compares case: "filter" when a `contains`
        filter finds an existing candidate's email written in other case, "text" when it
        does not, None when no candidate on the first page has an email with letters (ask
        again later). Two requests at most.
        """
        body = self._json("GET", "/candidates", params={"per_page": 25})
        rows = _embedded_rows(body, "candidates") if isinstance(body, dict) else []
        for row in rows:
            emails = row.get("emails") if isinstance(row.get("emails"), dict) else {}
            for field in ("primary", "secondary"):
                address = emails.get(field)
                if not isinstance(address, str) or address.swapcase() == address:
                    continue
                term = {
                    "field": f"emails.{field}",
                    "filter": "contains",
                    "value": address.swapcase(),
                }
                answer = self._json(
                    "POST",
                    "/candidates/search",
                    json=term,
                    params={"per_page": 100},
                    idempotent=True,
                )
                hits = _embedded_rows(answer, "candidates") if isinstance(answer, dict) else []
                return "filter" if any(r.get("id") == row.get("id") for r in hits) else "text"
        return None

    # Reference: https://docs.catsone.com/api/v3/#candidates-create-a-candidate
    def create_candidate(
        self,
        *,
        first_name: str,
        last_name: str,
        email: str,
        phone: str | None = None,
        phone_type: str = "work",
        title: str | None = None,
        current_employer: str | None = None,
        source: str | None = None,
        custom_fields: list[dict] | None = None,
        check_duplicate: bool = False,
    ) -> int:
        """Create and return the new id. Never retried: a lost answer raises CatsUnavailable
        with write_may_have_happened, and the caller must look the email up before retrying."""
        body: dict[str, Any] = {
            "first_name": first_name,
            "last_name": last_name,
            "emails": [{"email": email, "is_primary": True}],
        }
        if phone:
            body["phones"] = [{"number": phone, "type": phone_type}]
        for name, value in (
            ("title", title),
            ("current_employer", current_employer),
            ("source", source),
        ):
            if value is not None:
                body[name] = value
        if custom_fields:
            body["custom_fields"] = custom_fields
        response = self.request(
            "POST",
            "/candidates",
            params={"check_duplicate": "true" if check_duplicate else "false"},
            json=body,
        )
        created = self._created_id(response)
        if created is None:
            raise CatsError(
                "CATS created a candidate but named no id.", status=response.status_code
            )
        return created

    # Reference: https://docs.catsone.com/api/v3/#candidates-get-a-candidate
    def get_candidate(self, candidate_id: int) -> dict:
        return self._json("GET", f"/candidates/{candidate_id}")

    # Reference: https://docs.catsone.com/api/v3/#candidates-update-a-candidate
    def update_candidate(self, candidate_id: int, **fields: Any) -> None:
        """PUT in CATS' write shape. `email=`/`phone=` are accepted as on create.

        CATS wants first_name and last_name on every PUT, so missing ones cost one GET.
        """
        body = dict(fields)
        if "email" in body:
            body["emails"] = [{"email": body.pop("email"), "is_primary": True}]
        if "phone" in body:
            phone = body.pop("phone")
            body["phones"] = [{"number": phone, "type": body.pop("phone_type", "work")}]
        if not body.get("first_name") or not body.get("last_name"):
            current = self.get_candidate(candidate_id)
            body.setdefault("first_name", current.get("first_name"))
            body.setdefault("last_name", current.get("last_name"))
        self.request("PUT", f"/candidates/{candidate_id}", json=body)

    # ------------------------------------------------------------------ custom fields

    # Reference: https://docs.catsone.com/api/v3/#candidates-custom-fields-list-all-custom-fields
    def list_candidate_custom_fields(self) -> list[dict]:
        return list(self.iter_list("/candidates/custom_fields", embedded="custom_fields"))

    # Reference: https://docs.catsone.com/api/v3/#candidates-custom-fields-list-all-custom-fields-for-a-candidate
    def get_candidate_custom_field_values(self, candidate_id: int) -> list[dict]:
        return list(
            self.iter_list(f"/candidates/{candidate_id}/custom_fields", embedded="custom_fields")
        )

    # Reference: https://docs.catsone.com/api/v3/#candidates-custom-fields-update-a-custom-field-for-a-candidate
    def set_candidate_custom_field(self, candidate_id: int, field_id: int, value: Any) -> None:
        self.request(
            "PUT", f"/candidates/{candidate_id}/custom_fields/{field_id}", json={"value": value}
        )

    # ------------------------------------------------------------------ pipelines

    # Reference: https://docs.catsone.com/api/v3/#candidates-list-candidate-pipelines
    def list_candidate_pipelines(self, candidate_id: int) -> list[dict]:
        return list(self.iter_list(f"/candidates/{candidate_id}/pipelines", embedded="pipelines"))

    # Reference: https://docs.catsone.com/api/v3/#pipelines-get-a-pipeline
    def get_pipeline(self, pipeline_id: int) -> dict:
        return self._json("GET", f"/pipelines/{pipeline_id}")

    # Reference: https://docs.catsone.com/api/v3/#pipelines-create-a-pipeline
    def add_candidate_to_job(
        self, candidate_id: int, job_id: int, *, rating: int | None = None
    ) -> int:
        """Put a candidate on a job's pipeline and return the pipeline id, existing or new."""
        return self.pipeline_add(candidate_id, job_id, rating=rating).id

    def pipeline_add(
        self, candidate_id: int, job_id: int, *, rating: int | None = None
    ) -> PipelineAdded:
        """Put a candidate on a job's pipeline; says whether it was there already (and then
        its row, with its status).

        What CATS answers to a second add is undocumented (409, 400/422 or the existing row
        with 200 are all plausible), so any refusal or lost answer is settled by listing the
        candidate's pipelines; it raises only when no pipeline for the job exists.
        """
        body: dict[str, Any] = {"candidate_id": candidate_id, "job_id": job_id}
        if rating is not None:
            body["rating"] = rating
        try:
            response = self.request(
                "POST", "/pipelines", params={"create_activity": "false"}, json=body
            )
        except CatsRejected as exc:
            if exc.status not in (400, 409, 422):
                raise
            existing = self._existing_pipeline(candidate_id, job_id)
            if existing is None:
                raise
            return PipelineAdded(_as_int(existing.get("id")), existing)
        except CatsUnavailable as exc:
            if not exc.write_may_have_happened:
                raise
            try:
                existing = self._existing_pipeline(candidate_id, job_id)
            except CatsError:
                raise exc from None
            if existing is None:
                raise
            return PipelineAdded(_as_int(existing.get("id")), existing)
        created = self._created_id(response)
        row = None
        if response.status_code != 201 and response.content:
            # The existing pipeline, answered instead of a refusal.
            try:
                body_row = response.json()
            except ValueError:
                body_row = None
            row = body_row if isinstance(body_row, dict) else {}
        if created is None:
            existing = self._existing_pipeline(candidate_id, job_id)
            created = _as_int(existing.get("id")) if existing else None
            row = existing
        if created is None:
            raise CatsError("CATS accepted the pipeline but named no id.")
        return PipelineAdded(created, row)

    # Reference: https://docs.catsone.com/api/v3/#pipelines-delete-a-pipeline
    def delete_pipeline(self, pipeline_id: int) -> bool:
        """Take a candidate off a job order. False when the pipeline was already gone."""
        try:
            self.request("DELETE", f"/pipelines/{pipeline_id}")
        except CatsNotFound:
            return False
        return True

    def _existing_pipeline(self, candidate_id: int, job_id: int) -> dict | None:
        for pipeline in self.list_candidate_pipelines(candidate_id):
            if _as_int(pipeline.get("job_id")) == job_id:
                return pipeline
        return None

    # Reference: https://docs.catsone.com/api/v3/#pipelines-change-a-pipeline-s-status
    def change_pipeline_status(
        self,
        pipeline_id: int,
        status_id: int,
        *,
        fire_triggers: bool = False,
        trigger_ids: list[int] | None = None,
        create_activity: bool = False,
    ) -> None:
        """Move a pipeline to a status. Triggers can e-mail people, so by default every
        trigger of the status is named with fire=false (CATS wants all of them named).

        Pass `trigger_ids` from cached workflow statuses to save two requests; without them
        the client looks the status up (pipeline -> workflow -> statuses, cached per client).
        Any 2xx is success (204 guessed; 200 and 201 tolerated).
        """
        body: dict[str, Any] = {"status_id": status_id}
        if not fire_triggers:
            if trigger_ids is None:
                trigger_ids = self._status_trigger_ids(pipeline_id, status_id)
            if trigger_ids:
                body["triggers"] = [{"id": tid, "fire": False} for tid in trigger_ids]
        self.request(
            "POST",
            f"/pipelines/{pipeline_id}/status",
            params={"create_activity": "true" if create_activity else "false"},
            json=body,
        )

    def _status_trigger_ids(self, pipeline_id: int, status_id: int) -> list[int]:
        workflow_id = _as_int(self.get_pipeline(pipeline_id).get("workflow_id"))
        if workflow_id is None:
            return []
        if workflow_id not in self._workflow_statuses_cache:
            self._workflow_statuses_cache[workflow_id] = self.list_workflow_statuses(workflow_id)
        for status in self._workflow_statuses_cache[workflow_id]:
            if _as_int(status.get("id")) == status_id:
                return [_as_int(t["id"]) for t in status.get("triggers") or [] if "id" in t]
        # Not in the workflow: let CATS refuse it with its own message.
        return []

    # Reference: https://docs.catsone.com/api/v3/#pipelines-workflows-list-all-workflows
    def list_workflows(self) -> list[dict]:
        return list(self.iter_list("/pipelines/workflows", embedded="workflows"))

    # Reference: https://docs.catsone.com/api/v3/#pipelines-workflows-list-all-statuses-for-a-workflow
    def list_workflow_statuses(self, workflow_id: int) -> list[dict]:
        """Statuses in CATS' workflow order."""
        return list(
            self.iter_list(f"/pipelines/workflows/{workflow_id}/statuses", embedded="statuses")
        )

    # ------------------------------------------------------------------ webhooks

    # Reference: https://docs.catsone.com/api/v3/#webhooks-create-a-webhook
    def create_webhook(self, *, events: list[str], target_url: str, secret: str) -> int:
        """Register a webhook; returns its id (from Location, or the body's `id`)."""
        response = self.request(
            "POST",
            "/webhooks",
            json={"events": events, "target_url": target_url, "secret": secret},
            idempotent=False,
        )
        created = self._created_id(response)
        if created is None:
            raise CatsError("CATS accepted the webhook but named no id.")
        return created

    # Reference: https://docs.catsone.com/api/v3/#webhooks-delete-a-webhook
    def delete_webhook(self, webhook_id: int) -> None:
        """Delete a webhook; one CATS no longer has is deleted already."""
        try:
            self.request("DELETE", f"/webhooks/{webhook_id}")
        except CatsNotFound:
            return

    # ------------------------------------------------------------------ jobs

    # Reference: https://docs.catsone.com/api/v3/#jobs-list-all-jobs
    def list_jobs(self) -> list[dict]:
        return list(self.iter_list("/jobs", embedded="jobs"))

    # Reference: https://docs.catsone.com/api/v3/#jobs-get-a-job
    def get_job(self, job_id: int) -> dict:
        return self._json("GET", f"/jobs/{job_id}")

    # Reference: https://docs.catsone.com/api/v3/#jobs-statuses-list-all-job-statuses
    def list_job_statuses(self) -> list[dict]:
        return list(self.iter_list("/jobs/statuses", embedded="statuses"))

    # ------------------------------------------------------------------ activities

    # Reference: https://docs.catsone.com/api/v3/#candidates-activities-create-an-activity
    def create_activity(
        self,
        candidate_id: int,
        *,
        type: str = "email",
        regarding_id: int | None = None,
        notes: str,
        date: datetime | str,
    ) -> int:
        """Log an activity on a candidate; never retried (no idempotency keys in CATS)."""
        response = self.request(
            "POST",
            f"/candidates/{candidate_id}/activities",
            json={
                "type": type,
                "regarding_id": regarding_id,
                "notes": notes,
                "date": _rfc3339(date),
            },
        )
        created = self._created_id(response)
        if created is None:
            raise CatsError(
                "CATS created an activity but named no id.", status=response.status_code
            )
        return created

    # Reference: https://docs.catsone.com/api/v3/#candidates-activities-list-all-activities
    def list_candidate_activities(self, candidate_id: int) -> list[dict]:
        return list(self.iter_list(f"/candidates/{candidate_id}/activities", embedded="activities"))


def _embedded_rows(body: dict, name: str | None) -> list[dict]:
    embedded = body.get("_embedded") or {}
    if not isinstance(embedded, dict):
        return []
    if name and isinstance(embedded.get(name), list):
        return embedded[name]
    # Tolerate a different collection name: take the only list there is.
    lists = [value for value in embedded.values() if isinstance(value, list)]
    return lists[0] if len(lists) == 1 else []


def _candidate_emails(row: dict) -> list[str]:
    emails = row.get("emails")
    if isinstance(emails, dict):
        values = emails.values()
    elif isinstance(emails, list):
        # The write shape, in case a read ever answers with it.
        values = [e.get("email") if isinstance(e, dict) else e for e in emails]
    else:
        values = []
    return [v for v in values if isinstance(v, str) and v]


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _is_connect_failure(exc: requests.exceptions.ConnectionError) -> bool:
    """True when no connection was made, so nothing can have reached CATS."""
    reason: Any = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return isinstance(reason, NewConnectionError) or "Connection refused" in str(exc)
